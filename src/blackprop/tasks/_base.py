"""The Task record: everything one benchmark needs, in one place.

A task owns its program, its perception model, its data and its default hyper-parameters; the
CLI, the benchmark grid and the parametrised tests all read tasks from the registry.

* ``TaskData``: a pool of images plus, per example, the indices of its images in the pool
  (``index[N, n]``, -1 on padding), the true symbols where known, the label values, and
  ``source``: where the data came from (the real data set, a user folder, a stand-in, a fallback).
* Splits: "train", "valid" and "test", disjoint. "valid" is carved from the training side (MNIST
  training images the training examples do not use, the end of a user's training folder...), so
  the training examples are the same with or without it; choose settings on it, never on "test".
* ``Task.model()`` returns a ``torch.nn.Module`` mapping a batch of images ``[B, n, ...]`` to the
  tuple of layer inputs (one probability tensor per program input).
"""

from __future__ import annotations

import inspect
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, final

import torch

from ..program import BaseProgram
from ..settings import did_you_mean

__all__ = ["SPLITS", "Defaults", "Task", "TaskData", "task_seed"]

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
@final
class Defaults:
    """Training settings of a task (each task states its own; the MNIST-R tasks share one recipe,
    ``blackprop.tasks.mnist_r.MNIST_R_RECIPE``). ``lr_schedule`` is "constant", "cosine" or
    "low-start-cosine" (``blackprop.run.config.epoch_lr``). How each default was chosen, on validation accuracy, is in the
    studies' notes (``experiments/<study>/notes.md``).
    """

    epochs: int = 10
    lr: float = 1e-3
    lr_schedule: str = "constant"
    batch_size: int = 16
    num_samples: int = 100
    train_size: int = 5000
    test_size: int = 500
    valid_size: int = 500


@dataclass
@final
class TaskData:
    """Examples of one split: ``pool[index[i]]`` are example i's images, ``labels[i]`` its label."""

    pool: torch.Tensor
    index: torch.Tensor
    labels: list[Any]
    symbols: torch.Tensor | None = None
    source: str = ""

    def __len__(self) -> int:
        return self.index.shape[0]

    def images(self, rows: torch.Tensor) -> torch.Tensor:
        """Images of the given examples, ``[len(rows), n, ...]`` (zeros on padding)."""
        index = self.index[rows]
        images = self.pool[index.clamp(min=0)]
        mask = (index >= 0).reshape(*index.shape, *([1] * (images.dim() - 2)))
        return images * mask

    def label_values(self, rows: torch.Tensor) -> list[Any]:
        return [self.labels[i] for i in rows.tolist()]


@dataclass(frozen=True)
@final
class Task:
    """One benchmark: name, program and model factories, data loader, defaults, paper figures.

    ``load_data(split, size, seed)`` returns ``size`` examples of ``split`` ("train", "valid" or
    "test"). For "valid", a loader that declares ``train_size`` and ``train_seed`` keywords gets the
    training draw's size and seed, so it can leave out whatever that draw uses.
    """

    name: str
    description: str
    make_program: Callable[[], BaseProgram]
    make_model: Callable[[], torch.nn.Module]
    load_data: Callable[..., TaskData]
    defaults: Defaults = field(default_factory=Defaults)
    paper: dict[str, float] = field(default_factory=dict)
    family: str = "mnist-r"
    data_seed: int = 0
    #: perception networks the task's model can be built with (``RunConfig.network``), by name;
    #: ``make_model`` is the default. Empty: the task has one model.
    networks: dict[str, Callable[[], torch.nn.Module]] = field(default_factory=dict)

    def model(self, network: str | None = None) -> torch.nn.Module:
        """The task's model, with the named perception network (None: ``make_model``'s)."""
        self.check_network(network)
        return self.make_model() if network is None else self.networks[network]()

    def check_network(self, network: str | None) -> None:
        """Raise ValueError, naming the choices, unless ``network`` is None or one of ``networks``."""
        if network is None or network in self.networks:
            return
        if not self.networks:
            raise ValueError(f"{self.name} has one perception network; drop --network {network}")
        raise ValueError(f"{self.name}: unknown network {network!r}{did_you_mean(network, self.networks)}; valid: "
                         f"{', '.join(sorted(self.networks))}")

    def data(self, split: str, size: int, *, train_size: int | None = None) -> TaskData:
        """The ``split`` examples, fixed by the task's own seed (never the run's).

        ``split="valid"`` is disjoint from the training examples of ``train_size`` (default: the
        task's ``defaults.train_size``) and from the test examples.
        """
        if split not in SPLITS:
            raise ValueError(f"{self.name}.data(split=...): expected one of {', '.join(SPLITS)}, got {split!r}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"{self.name}.data(size=...): expected an int >= 0, got {size!r}")
        seed = task_seed(self.name, split, self.data_seed)
        if split == "valid" and _takes_train_keywords(self.load_data):
            train = self.defaults.train_size if train_size is None else train_size
            data = self.load_data(split, size, seed, train_size=train,
                                  train_seed=task_seed(self.name, "train", self.data_seed))
        else:
            data = self.load_data(split, size, seed)
        if isinstance(data, TaskData) and len(data) != size:  # a run would record a size it did not use
            flag = f"--{split}-size"
            raise ValueError(f"{self.name}: {size} {split} examples were asked for but the data gives {len(data)}; "
                             f"pass {flag} {len(data)} or less")
        return data


def _takes_train_keywords(fn: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return {"train_size", "train_seed"} <= set(parameters) or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def carve(split: str, size: int, seed: int, available: int, train_size: int, train_seed: int, what: str) -> Any:
    """Which of ``available`` training-side items a split takes: "train" and "test" the first ``size`` of
    their own shuffled order; "valid" the last ``size`` of the training order, disjoint from its first
    ``train_size``. Raises when the folder is too small for both."""
    import numpy as np

    if split != "valid":
        if size > available:
            raise ValueError(f"{split} split: {size} items asked for but there are {available} {what}; pass "
                             f"--{split}-size {available} or less")
        return np.random.default_rng(seed).permutation(available)[:size]
    if train_size + size > available:
        raise ValueError(
            f"valid split: {size} validation and {train_size} training items need {train_size + size} but there "
            f"are {available} {what}; lower the valid or train size"
        )
    return np.random.default_rng(train_seed).permutation(available)[available - size:]


def task_seed(name: str, split: str, base: int = 0) -> int:
    """A stable seed per (task, split), independent of Python's hash randomisation."""
    return (zlib.crc32(f"{name}/{split}".encode()) + base) % (2**31)
