"""One training run's settings (``RunConfig``) and its one identity.

    config = RunConfig(task="sum2", method="ised", epochs=3, seed=0)
    identity(config.resolved(get_task("sum2")))   # what a checkpoint and a results row must match

``identity`` is the single definition of "the same run": the grid skips a run whose identity is
already in its results file, and a checkpoint resumes only a run with the same identity (apart from
``epochs``, which may grow: see ``blackprop.run.checkpoint``). ``differences`` names the fields in
which two identities differ, for error messages.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, final

import torch

from ..estimators import ESTIMATORS, estimator
from ..settings import did_you_mean
from ..tasks import Task

__all__ = ["LR_SCHEDULES", "RunConfig", "differences", "epoch_lr", "identity", "make_estimator", "pick_device",
           "run_defaults",
           "run_id"]

LR_SCHEDULES = ("constant", "cosine", "low-start-cosine")
#: which epoch's weights score the test set: the last, or the one with the highest validation accuracy
SELECTIONS = ("last", "best-valid")

#: settings that change the numbers of a run; everything else (threads, device, paths) does not
IDENTITY_FIELDS = ("task", "method", "seed", "epochs", "lr", "batch_size", "num_samples", "train_size",
                   "test_size")


@dataclass
@final
class RunConfig:
    """One training run. Settings left as None take the task's defaults."""

    task: str
    method: str = "ised"
    seed: int = 0
    epochs: int | None = None
    lr: float | None = None
    lr_schedule: str | None = None
    batch_size: int | None = None
    num_samples: int | None = None
    train_size: int | None = None
    valid_size: int | None = None
    test_size: int | None = None
    estimator_settings: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None
    device: str = "auto"
    checkpoint: str | None = None
    progress: bool = True
    executor: str | None = None
    search: int = 1
    marginal: int = 0
    select: str = "last"
    network: str | None = None
    weights: str | None = None  # where to save the network that scored the test set (not part of the identity)

    def resolved(self, task: Task) -> RunConfig:
        """A copy with every None setting replaced by the task default."""
        d = task.defaults
        changes: dict[str, Any] = {
            name: getattr(d, name, None) if getattr(self, name) is None else getattr(self, name)
            for name in ("epochs", "lr", "lr_schedule", "batch_size", "num_samples", "train_size", "valid_size",
                         "test_size")
        }
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting; builds the estimator, so its settings are checked."""
        for name in ("epochs", "batch_size", "num_samples", "train_size", "valid_size", "test_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}; pass --{name.replace('_', '-')} N")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not 0 < self.lr < math.inf:
            raise ValueError(f"lr must be a number > 0, got {self.lr!r}; pass e.g. --lr 1e-3")
        if isinstance(self.search, bool) or not isinstance(self.search, int) or self.search < 1:
            raise ValueError(f"search must be an int >= 1 (tuples tried per test example), got {self.search!r}")
        if isinstance(self.marginal, bool) or not isinstance(self.marginal, int) or self.marginal < 0:
            raise ValueError(f"marginal must be an int >= 0 (tuples per example for the most probable output; 0: "
                             f"off), got {self.marginal!r}")
        if self.select not in SELECTIONS:
            raise ValueError(f"select must be one of {', '.join(SELECTIONS)} (the weights the test set scores), got "
                             f"{self.select!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.method not in ESTIMATORS:
            raise ValueError(f"unknown method {self.method!r}{did_you_mean(self.method, ESTIMATORS)}; valid: "
                             f"{', '.join(sorted(ESTIMATORS))}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ValueError(f"threads must be an int >= 1 (or None for torch's default), got {self.threads!r}")
        pick_device(self.device)
        if self.executor is not None:
            from ..program import parse_executor_spec

            parse_executor_spec(self.executor)
        make_estimator(self)  # unknown or invalid estimator settings fail here, before any data is loaded


def identity(config: RunConfig | dict[str, Any]) -> dict[str, Any]:
    """The settings that make a run (a resolved config, or a results row): equal identities, same numbers.

    ``lr_schedule``, ``search``, ``marginal`` and ``select`` enter only when not at their defaults and
    ``network`` only when set, so rows written before these options existed keep their identity (``valid_size`` never enters:
    validation does not change the trained weights).

    >>> identity({"task": "sum2", "method": "ised", "seed": 0, "epochs": 3})["estimator_settings"]
    {}
    """
    row = dataclasses.asdict(config) if isinstance(config, RunConfig) else config
    ident = {name: row.get(name) for name in IDENTITY_FIELDS}
    ident["estimator_settings"] = row.get("estimator_settings") or {}
    if row.get("lr_schedule") not in (None, "constant"):
        ident["lr_schedule"] = row["lr_schedule"]
    if (row.get("search") or 1) > 1:
        ident["search"] = row["search"]
    if row.get("marginal"):
        ident["marginal"] = row["marginal"]
    if row.get("select") not in (None, "last"):
        ident["select"] = row["select"]
    if row.get("network") is not None:
        ident["network"] = row["network"]
    return ident


def run_id(config: RunConfig | dict[str, Any]) -> str:
    """A short stable name for a run's identity (checkpoint file names, per-epoch rows)."""
    return hashlib.sha1(json.dumps(identity(config), sort_keys=True).encode()).hexdigest()[:16]


def differences(saved: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """``"field: saved -> wanted"`` for every field in which two identities differ."""
    return [f"{name}: {saved.get(name)!r} -> {wanted.get(name)!r}" for name in sorted(set(saved) | set(wanted))
            if saved.get(name) != wanted.get(name)]


def epoch_lr(lr: float, schedule: str, epoch: int, epochs: int) -> float:
    """Adam's learning rate during ``epoch`` (0-based) of ``epochs``.

    "constant": lr. "cosine": lr * (1 + cos(pi * epoch / epochs)) / 2, from lr in the first epoch down
    towards 0 in the last. "low-start-cosine": the first epoch at lr / 10, then the cosine over the other
    epochs, lr * (1 + cos(pi * (epoch - 1) / (epochs - 1))) / 2: the first steps, where the MNIST-R
    programs with a uniform-digit stationary point (equal, add-mod-3) stall at a high lr, go slowly.
    Set per epoch, so it needs no state and resumes exactly.

    >>> [round(epoch_lr(1e-3, "cosine", e, 4), 6) for e in range(4)]
    [0.001, 0.000854, 0.0005, 0.000146]
    >>> [round(epoch_lr(1e-3, "low-start-cosine", e, 4), 6) for e in range(4)]
    [0.0001, 0.001, 0.00075, 0.00025]
    """
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return lr * (1 + math.cos(math.pi * epoch / epochs)) / 2
    if schedule == "low-start-cosine":
        if epoch == 0:
            return lr / 10
        return lr * (1 + math.cos(math.pi * (epoch - 1) / max(1, epochs - 1))) / 2
    raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {schedule!r}")


def run_defaults(task: Task | None, method: str) -> dict[str, Any]:
    """What "default" meant for a run: the task's training defaults and the method's estimator settings
    (its registry preset applied), as they are in this version. Rows record it (what "default" meant
    when they ran); a report labels every row by what differs from today's (``blackprop.run.tables``)."""
    defaults: dict[str, Any] = {**(vars(task.defaults) if task is not None else {}), "search": 1}
    if method in ESTIMATORS:
        defaults.update({k: v for k, v in estimator(method).settings().items() if k != "num_samples"})
    return defaults


def make_estimator(config: RunConfig) -> Any:
    """The config's estimator; the run's ``num_samples`` is its k unless the settings give one."""
    cls = ESTIMATORS[config.method]
    settings = dict(config.estimator_settings)
    if "num_samples" in {f.name for f in dataclasses.fields(cls)}:
        settings.setdefault("num_samples", config.num_samples)
    return estimator(config.method, **settings)


def pick_device(name: str) -> torch.device:
    """"auto" (cuda when available, else cpu) or any torch device string, checked to exist here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but CUDA is not available here; use --device auto or cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device
