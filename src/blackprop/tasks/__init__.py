"""The task registry: ``get_task(name)`` and ``task_names()`` feed the CLI, benchmarks and tests.

``sum<n>`` for any n outside the MNIST-R set (sum2, sum3, sum4) gives the sample-efficiency
sum-n task (LeNet, Adam 1e-3).
"""

from __future__ import annotations

import re

from ._base import Defaults, Task, TaskData, task_seed
from .hwf import hwf_task
from .leaf import leaf_tasks
from .mnist_r import mnist_r_tasks, sum_n_task
from .scene import scene_tasks
from .sudoku import sudoku_tasks
from .sum_scale import scale_tasks

__all__ = ["Defaults", "MNIST_R", "Task", "TaskData", "get_task", "register_task", "task_names", "task_seed"]

_REGISTRY: dict[str, Task] = {}
MNIST_R = [t.name for t in mnist_r_tasks()]


def register_task(task: Task) -> Task:
    _REGISTRY[task.name] = task
    return task


for _task in mnist_r_tasks():
    register_task(_task)
for _task in [hwf_task(), hwf_task(typed=True), *leaf_tasks(), *scene_tasks(), *sudoku_tasks(), *scale_tasks()]:
    register_task(_task)


def get_task(name: str) -> Task:
    """A registered task, or ``sum<n>`` for any n; raises listing the valid names."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    match = re.fullmatch(r"sum-?(\d+)", name)
    if match:
        return sum_n_task(int(match.group(1)))
    raise ValueError(f"unknown task {name!r}; valid: {', '.join(task_names())}, or sum<n> for any n")


def task_names() -> list[str]:
    return list(_REGISTRY)
