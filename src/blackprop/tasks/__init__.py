"""The task registry: ``get_task(name)`` and ``task_names()`` feed the CLI, benchmarks and tests.

* the built-in tasks: the 11 MNIST-R tasks, ``sum<n>`` for any n (the sample-efficiency sum-n
  task: LeNet, k = 10n, 40 epochs of Adam 1e-3 with a low first epoch), ``hwf``, ``hwf-typed``,
  ``leaf-dt``, ``leaf-llm``, ``scene``, ``scene-llm``, ``sudoku``, ``sudoku-partial``;
* a user's task, registered with ``register(Task(...))`` (then addressable by its name), or named
  ``"package.module:attribute"``: the attribute is a ``Task``, or a function of no argument that
  returns one; the module is imported when the task is asked for (so
  ``blackprop train my_module:my_task`` needs ``my_module`` importable, e.g. in the working folder).

Example:
    >>> import torch
    >>> from blackprop import Program
    >>> from blackprop.spaces import Discrete
    >>> def load(split, size, seed):
    ...     g = torch.Generator().manual_seed(seed)
    ...     pool = torch.rand(size, 1, 4, 4, generator=g)
    ...     return TaskData(pool=pool, index=torch.arange(size).unsqueeze(1),
    ...                     labels=[bool(x > 0.5) for x in pool.mean(dim=(1, 2, 3))], source="random squares")
    >>> task = register(Task(
    ...     name="bright", description="is a square bright?",
    ...     make_program=lambda: Program(lambda b: b, inputs=(Discrete([False, True]),),
    ...                                  output=Discrete([False, True]), name="bright"),
    ...     make_model=lambda: torch.nn.Sequential(torch.nn.Flatten(2), torch.nn.Linear(16, 2), torch.nn.Softmax(-1)),
    ...     load_data=load, defaults=Defaults(train_size=64, valid_size=16, test_size=16), family="user"))
    >>> get_task("bright") is task, len(get_task("bright").data("valid", 16))
    (True, 16)
    >>> unregister("bright")
"""

from __future__ import annotations

import importlib
import re

from ..settings import did_you_mean
from ._base import SPLITS, Defaults, Task, TaskData, carve, task_seed
from .hwf import hwf_task
from .leaf import leaf_tasks
from .mnist_r import mnist_r_tasks, sum_n_task
from .scene import scene_tasks
from .sudoku import sudoku_tasks
from .sum_scale import scale_tasks

__all__ = ["MNIST_R", "SPLITS", "Defaults", "Task", "TaskData", "carve", "get_task", "register", "register_task",
           "task_names", "task_seed", "unregister"]

_REGISTRY: dict[str, Task] = {}
MNIST_R = [t.name for t in mnist_r_tasks()]


def register(task: Task) -> Task:
    """Add ``task`` to the registry under ``task.name`` (replacing a task of that name); returns it."""
    if not isinstance(task, Task):
        raise TypeError(f"register(task): expected a blackprop.tasks.Task, got {type(task).__name__}; build one with "
                        "Task(name=..., description=..., make_program=..., make_model=..., load_data=...)")
    _REGISTRY[task.name] = task
    return task


register_task = register  # the earlier name


def unregister(name: str) -> None:
    """Remove a registered task; raises naming the registered ones if there is none called ``name``."""
    if name not in _REGISTRY:
        raise ValueError(f"unregister({name!r}): no such task; registered: {', '.join(task_names())}")
    del _REGISTRY[name]


for _task in [*mnist_r_tasks(), hwf_task(), hwf_task(typed=True), *leaf_tasks(), *scene_tasks(), *sudoku_tasks(),
               *scale_tasks()]:
    register(_task)


def get_task(name: str) -> Task:
    """A registered task, ``sum<n>`` for any n, or ``"module:attribute"``; raises listing the valid names."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    match = re.fullmatch(r"sum-?(\d+)", name)
    if match:
        return sum_n_task(int(match.group(1)))
    if ":" in name:
        return _import_task(name)
    hint = did_you_mean(name, [*task_names(), "sum2"]) if isinstance(name, str) else ""
    if name == "mnist-r":
        hint = " ('mnist-r' names the 11 MNIST-R tasks for bench --tasks; train one of them)"
    raise ValueError(
        f"unknown task {name!r}{hint}; valid: {', '.join(task_names())}, sum<n> for any n, or 'module:attribute' "
        "naming your own Task"
    )


def _import_task(spec: str) -> Task:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"task {spec!r}: expected 'module:attribute', e.g. 'my_tasks:parity'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"task {spec!r}: cannot import module {module_name!r} ({error}); run from the folder that "
                         "holds it or add it to PYTHONPATH") from None
    target = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"task {spec!r}: module {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if callable(target) and not isinstance(target, Task):
        try:
            task = target()
        except Exception as error:  # noqa: BLE001 - a user's factory: say which one failed and how
            raise ValueError(f"task {spec!r}: calling {attribute}() to build the task failed ({type(error).__name__}: "
                             f"{error}); the attribute must be a Task or a function of no argument returning one"
                             ) from None
    else:
        task = target
    if not isinstance(task, Task):
        raise ValueError(f"task {spec!r}: expected a blackprop.tasks.Task or a function returning one, got "
                         f"{type(task).__name__}")
    return task


def task_names() -> list[str]:
    return list(_REGISTRY)
