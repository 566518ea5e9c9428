"""sum64 / sum256 / sum1024: CTSketch's budget, a validation split of held-out MNIST training images,
and one Fold program shared by the fold method and the sampling methods."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import blackprop as bp
from blackprop.data.mnist import mnist_pool
from blackprop.tasks import get_task
from blackprop.tasks.sum_scale import HOLDOUT, holdout_mask


@pytest.mark.parametrize("n", [64, 256, 1024])
def test_registry_gives_the_fold_tasks_with_ctsketch_budget(n):
    task = get_task(f"sum{n}")
    program = task.make_program()
    assert isinstance(program, bp.Fold) and program.length == n and program.output.size == 9 * n + 1
    assert (task.defaults.train_size, task.defaults.batch_size, task.defaults.lr) == (6000, 16, 1e-3)
    assert task.family == "sum-scale"


def test_validation_images_never_appear_in_training_sums():
    task = get_task("sum64")
    train, valid, test = task.data("train", 600), task.data("valid", 100), task.data("test", 100)
    mask = holdout_mask()
    assert int(mask.sum()) == HOLDOUT
    assert not mask[train.index.numpy()].any()
    assert mask[valid.index.numpy()].all()
    assert test.pool.shape[0] == 10000  # test sums come from the MNIST test set
    for data in (train, valid, test):
        assert data.labels == data.symbols.sum(1).tolist()
    _, train_labels = mnist_pool("train")
    _, test_labels = mnist_pool("test")
    assert torch.equal(train_labels[train.index], train.symbols)  # each image shows its digit
    assert torch.equal(train_labels[valid.index], valid.symbols)
    assert torch.equal(test_labels[test.index], test.symbols)
    assert np.array_equal(task.data("train", 600).index.numpy(), train.index.numpy())  # fixed by the task seed
    with pytest.raises(ValueError, match=r"expected one of train, valid, test, got 'dev'"):
        task.data("dev", 10)


def test_fold_layer_predicts_the_sum_of_perfect_digits():
    task = get_task("sum64")
    data = task.data("valid", 4)
    probs = torch.nn.functional.one_hot(data.symbols, 10).double() * 0.98 + 0.002
    layer = bp.BlackBox(task.make_program(), bp.ExactFold(min_mass=1e-12))
    assert layer.predict(*probs.unbind(1)) == data.labels
    distribution = layer(*probs.unbind(1))
    assert distribution.argmax(1).tolist() == data.labels


@pytest.mark.slow
def test_fold_learns_digits_from_sums_of_eight():
    """Real MNIST, labels = sums of 8 digits only: 3,000 sums, 4 epochs of the exact fold, LeNet (measured:
    per-digit accuracy 26.6%, 55.5%, 94.3%, 97.2% after epochs 1-4; about 14 s of CPU)."""
    from blackprop.models import DigitsModel, LeNet
    from blackprop.tasks.sum_scale import scale_data

    torch.manual_seed(0)
    train, test = scale_data(8, "train", 3000, seed=1), scale_data(8, "test", 200, seed=2)
    model = DigitsModel(LeNet())
    layer = bp.BlackBox(bp.Fold(lambda s, x: s + x, 0, element=bp.Discrete(range(10)), length=8,
                                output=bp.Discrete(range(73))), bp.ExactFold())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.Generator().manual_seed(3)
    for _ in range(4):
        for rows in torch.randperm(len(train), generator=order).split(16):
            optimizer.zero_grad()
            layer.loss(*model(train.images(rows)), target=train.label_values(rows)).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        rows = torch.arange(len(test))
        digits = model.symbols(test.images(rows))
        predicted = layer.predict(*model(test.images(rows)))
    symbol_accuracy = float((digits == test.symbols).float().mean())
    task_accuracy = sum(p == y for p, y in zip(predicted, test.labels, strict=True)) / len(test)
    assert symbol_accuracy > 0.9, symbol_accuracy
    assert task_accuracy > 0.5, task_accuracy
