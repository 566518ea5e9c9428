"""The validation split: disjoint from train and test, and the training examples unchanged by it."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pytest
import torch

from blackprop.data.symbols import find_symbols_archive
from blackprop.tasks import MNIST_R, get_task
from blackprop.tasks._base import carve


def checksum(data) -> str:
    """Of the examples' image indices and labels (the pool is the whole MNIST split for digit tasks)."""
    digest = hashlib.sha256(data.index.numpy().tobytes())
    digest.update(repr(data.labels).encode())
    return digest.hexdigest()[:16]


def image_keys(data) -> set[bytes]:
    """The bytes of every image an example uses."""
    used = data.index.numpy().ravel()
    return {data.pool[i].numpy().tobytes() for i in np.unique(used[used >= 0])}


def symbols_available() -> bool:
    try:
        find_symbols_archive(download_missing=False)  # test_hwf downloads it when it can
    except Exception:
        return False
    return True


# Computed with the code before the validation split existed (commit e7c07c0): the paper's training
# sets must stay exactly the same.
TRAIN_CHECKSUMS = {("sum2", 5000): "8f16461c2df385dc", ("sum2", 100): "05f7504d1eab8d08",
                   ("count-3-4", 5000): "5e31887c6fdbf2a5", ("sum16", 3750): "fee75aa2334ba4a1"}


@pytest.mark.parametrize(("name", "size"), list(TRAIN_CHECKSUMS))
def test_training_examples_are_unchanged(name, size):
    assert checksum(get_task(name).data("train", size)) == TRAIN_CHECKSUMS[name, size]


@pytest.mark.skipif(not symbols_available(), reason="needs mdas_symbols_v1.zip (BLACKPROP_SYMBOLS)")
def test_hwf_training_formulas_are_unchanged():
    assert checksum(get_task("hwf").data("train", 10_000)) == "8aadd7858c766620"


def test_sudoku_training_boards_are_unchanged():
    """The boards and solutions are those from before the validation split; their images changed once
    (session 27), when 6,000 MNIST training images were held out for the validation boards."""
    data = get_task("sudoku").data("train", 200)
    digest = hashlib.sha256(data.symbols.numpy().tobytes())
    digest.update(repr(data.labels).encode())
    assert digest.hexdigest()[:16] == "d655c4363703ebe9"  # the same before and after
    assert checksum(data) == "ee6c663bd9b1691b"  # was 6db68b2db7916b7b (images from all 60,000)


@pytest.mark.parametrize("train_size", [None, 20_000])
def test_mnist_valid_images_are_training_images_the_training_examples_do_not_use(train_size):
    task = get_task("sum2")
    train = task.data("train", train_size or task.defaults.train_size)
    valid = task.data("valid", task.defaults.valid_size, train_size=train_size)
    assert len(valid) == 2000 == task.defaults.valid_size  # MNIST-R recipe: 2,000 validation examples
    assert valid.pool is train.pool  # both draw from MNIST's training images
    assert not set(valid.index.ravel().tolist()) & set(train.index.ravel().tolist())
    # labels follow the true digits, and the draw is fixed by the task's seed
    assert valid.labels == [a + b for a, b in valid.symbols.tolist()]
    assert torch.equal(task.data("valid", 2000, train_size=train_size).index, valid.index)
    assert valid.source.startswith("MNIST (")


def test_mnist_valid_differs_from_test_split():
    task = get_task("mult2")
    valid, test = task.data("valid", 300), task.data("test", 300)
    assert not image_keys(valid) & image_keys(test)


def test_every_task_has_a_valid_size():
    for name in [*MNIST_R, "sum8", "hwf", "leaf-dt", "scene", "sudoku"]:
        assert get_task(name).defaults.valid_size > 0
    assert (get_task("sum3").defaults.valid_size, get_task("sum3").defaults.test_size) == (2000, 5000)


@pytest.mark.skipif(not symbols_available(), reason="needs mdas_symbols_v1.zip (BLACKPROP_SYMBOLS)")
def test_hwf_valid_is_disjoint_from_train_and_test():
    task = get_task("hwf")
    train, valid, test = task.data("train", 2000), task.data("valid", 300, train_size=2000), task.data("test", 300)
    assert len(valid) == 300
    # the archive itself holds byte-identical "-" images in several of its splits: the only shared images
    from blackprop.tasks.hwf import operator_pool

    def keys(split):
        return {image.numpy().tobytes() for image in operator_pool(split)[0]}

    archive_duplicates = keys("valid") & (keys("train") | keys("test"))
    assert 0 < len(archive_duplicates) <= 13
    assert not (image_keys(valid) & image_keys(train)) - archive_duplicates
    assert not (image_keys(valid) & image_keys(test)) - archive_duplicates
    assert "operators: mdas_symbols_v1.zip" in valid.source


def test_sudoku_valid_boards_and_images_are_disjoint_from_train():
    task = get_task("sudoku-partial")
    train, valid = task.data("train", 200), task.data("valid", 50, train_size=200)
    assert len(valid) == 50
    assert not set(valid.index.ravel().tolist()) - {-1} & set(train.index.ravel().tolist())
    assert not {tuple(b) for b in valid.symbols.tolist()} & {tuple(b) for b in train.symbols.tolist()}


def test_sudoku_valid_images_are_many_and_held_out_from_every_training_board():
    """With the default 9,000 training boards (about 324,000 cells) almost every MNIST training image of
    the digits 1-9 is used; the validation boards draw from 6,000 held-out images instead (once they drew
    from the 148 images of digits 1-9 that no training board used, each shown about 120 times)."""
    from blackprop.tasks.sudoku.task import image_holdout

    task = get_task("sudoku-partial")
    train, valid = task.data("train", 9000), task.data("valid", 500)
    held = image_holdout()
    used_valid = valid.index[valid.index >= 0].unique().numpy()
    used_train = train.index[train.index >= 0].unique().numpy()
    assert held.sum() == 6000 and held[used_valid].all() and not held[used_train].any()
    assert len(used_valid) > 4000  # of about 5,400 held-out images of the digits 1-9


@pytest.mark.parametrize("name", ["leaf-dt", "scene"])
def test_rendered_valid_split_is_new_images(name):
    task = get_task(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the font fallback is checked in test_leaf_scene
        train, valid = task.data("train", 40), task.data("valid", 20, train_size=40)
    assert len(valid) == 20
    assert not image_keys(valid) & image_keys(train)
    assert "stand-ins" in valid.source


def test_carve_takes_the_end_of_the_training_order():
    train = carve("train", 30, seed=5, available=50, train_size=30, train_seed=5, what="photos")
    valid = carve("valid", 20, seed=9, available=50, train_size=30, train_seed=5, what="photos")
    assert not set(train.tolist()) & set(valid.tolist())
    assert sorted([*train.tolist(), *valid.tolist()]) == list(range(50))
    with pytest.raises(ValueError, match="need 51 but there are 50 photos; lower the valid or train size"):
        carve("valid", 21, seed=9, available=50, train_size=30, train_seed=5, what="photos")


def test_unknown_split_and_bad_size_are_refused():
    task = get_task("sum2")
    with pytest.raises(ValueError, match=r"sum2.data\(split=...\): expected one of train, valid, test, got 'val'"):
        task.data("val", 10)
    with pytest.raises(ValueError, match=r"sum2.data\(size=...\): expected an int >= 0, got -1"):
        task.data("train", -1)



def test_scene_font_fallback_is_printed_and_recorded(monkeypatch):
    from blackprop.data import scenes

    monkeypatch.delenv("BLACKPROP_SCENE_GLYPHS", raising=False)
    monkeypatch.delenv("BLACKPROP_SCENE_DATA", raising=False)
    monkeypatch.setattr(scenes, "emoji_font_path", lambda: None)
    with pytest.warns(RuntimeWarning, match="no colour emoji font found"):
        data = get_task("scene").data("test", 5)
    assert data.source == ("rendered scene stand-ins (not photographs); glyphs: font fallback: random pictograms "
                           "(no colour emoji font found)")
    monkeypatch.setenv("BLACKPROP_SCENE_GLYPHS", "shapes")
    assert get_task("scene").data("test", 5).source.endswith("random pictograms (BLACKPROP_SCENE_GLYPHS=shapes)")
