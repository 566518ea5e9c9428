"""sum64 / sum256 / sum1024: CTSketch's budget, a validation split of held-out MNIST training images,
and one Fold program shared by the fold method and the sampling methods."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import blackprop as bp
from blackprop.tasks import get_task
from blackprop.tasks.mnist_r import mnist_pool
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
    with pytest.raises(ValueError, match="split must be 'train', 'valid' or 'test', got 'dev'"):
        task.data("dev", 10)


def test_fold_layer_predicts_the_sum_of_perfect_digits():
    task = get_task("sum64")
    data = task.data("valid", 4)
    probs = torch.nn.functional.one_hot(data.symbols, 10).double() * 0.98 + 0.002
    layer = bp.BlackBox(task.make_program(), bp.ExactFold(min_mass=1e-12))
    assert layer.predict(*probs.unbind(1)) == data.labels
    distribution = layer(*probs.unbind(1))
    assert distribution.argmax(1).tolist() == data.labels
