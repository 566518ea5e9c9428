"""sum64, sum256, sum1024: sums of many MNIST digits, with CTSketch's data budget (issue 21).

The program is ``bp.Fold(add, 0, element=digit, length=n)``: the sum as a fold of a black-box
``add(state, digit)``, so the ``fold`` method (exact propagation, ``bp.ExactFold``) and the sampling
methods (ISED, REINFORCE, IndeCateR+, which run the fold as one black box on sampled tuples) share one
program. The label is the sum only; per-digit (symbol) accuracy is reported beside task accuracy.

Budget (CTSketch, Choi et al. 2025, from its public code): 6,000 training sums for every n (MNIST
images repeated), batch 16, Adam lr 1e-3. Perception network: LeNet by default (smaller than the
MNIST-R network), or ``lenet-wide`` / ``mnistnet`` with ``--network``, which the row then records
(a row without ``network`` ran LeNet).

Splits (every draw fixed by the task's seed, never the run's):

* a fixed set of 6,000 MNIST *training* images, the same for every n (``HOLDOUT`` below, drawn
  with seed ``task_seed("sum-scale", "holdout")``), is held out. ``train`` sums draw their images
  only from the other 54,000; ``valid`` sums draw only from the held-out 6,000, so no validation
  image is ever seen in training (with 6,000 x 1,024 slots every other training image is used);
* ``test`` sums draw from the MNIST test set.

Each example draws every digit class uniformly, then an image of that class uniformly from its
split's images, as the MNIST-R tasks do.

Example:
    >>> task = scale_tasks()[0]
    >>> task.name, task.defaults.train_size, task.defaults.batch_size, task.make_program().length
    ('sum64', 6000, 16, 64)
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..data.mnist import mnist_pool, mnist_source, training_holdout
from ..models import NETWORKS, DigitsModel, LeNet
from ..spaces import Discrete
from ..structured import Fold
from ._base import Defaults, Task, TaskData, task_seed

__all__ = ["HOLDOUT", "SCALE_SIZES", "add", "scale_task", "scale_tasks"]

SCALE_SIZES = (64, 256, 1024)
HOLDOUT = 6000
DIGIT = Discrete(range(10))


def add(state: int, digit: int) -> int:
    """One step of the sum: the black box the fold calls once per (partial sum, digit)."""
    return state + digit


def holdout_mask() -> np.ndarray:
    """True on the 6,000 MNIST training images reserved for validation sums (the same for every n)."""
    return training_holdout(task_seed("sum-scale", "holdout"), HOLDOUT)


def scale_data(n: int, split: str, size: int, seed: int) -> TaskData:
    """``size`` sums of ``n`` class-balanced digits from the split's images (see the module docstring)."""
    if split not in ("train", "valid", "test"):
        raise ValueError(f"sum{n}: split must be 'train', 'valid' or 'test', got {split!r}")
    pool, labels = mnist_pool("test" if split == "test" else "train")
    labels_np = labels.numpy()
    allowed = np.ones(labels_np.shape[0], dtype=bool)
    if split != "test":
        allowed = holdout_mask() if split == "valid" else ~holdout_mask()
    rng = np.random.default_rng(seed)
    digits = rng.integers(0, 10, size=(size, n))
    index = np.empty_like(digits)
    for digit in range(10):
        where = digits == digit
        candidates = np.flatnonzero((labels_np == digit) & allowed)
        index[where] = rng.choice(candidates, size=int(where.sum()))
    return TaskData(pool=pool, index=torch.from_numpy(index), labels=digits.sum(1).tolist(),
                    symbols=torch.from_numpy(digits), source=mnist_source())


def _digits_model(network: str) -> DigitsModel:
    return DigitsModel(NETWORKS[network]())


def scale_task(n: int) -> Task:
    """sum-n over a Fold program, CTSketch's budget: 6,000 training sums, batch 16, lr 1e-3."""

    def make_program() -> Fold:
        return Fold(add, 0, element=DIGIT, length=n, output=Discrete(range(9 * n + 1)), name=f"sum{n}")

    return Task(
        name=f"sum{n}",
        description=f"sum of {n} digits, a Fold of add; 6,000 training sums (CTSketch's budget)",
        make_program=make_program,
        make_model=lambda: DigitsModel(LeNet()),
        networks={name: functools.partial(_digits_model, name) for name in ("lenet", "lenet-wide", "lenet-wide-bn",
                                                                                     "mnistnet")},
        load_data=lambda split, size, seed: scale_data(n, split, size, seed),
        defaults=Defaults(epochs=10, lr=1e-3, batch_size=16, num_samples=10 * n, train_size=6000, valid_size=500,
                          test_size=500),
        paper={"ctsketch": {64: 47.14, 256: 7.76, 1024: 2.73}[n]} if n in SCALE_SIZES else {},
        family="sum-scale",
    )


def scale_tasks() -> list[Task]:
    return [scale_task(n) for n in SCALE_SIZES]
