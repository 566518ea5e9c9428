"""Score a finished run's saved network again: another split, size or decoding, without retraining.

    blackprop evaluate experiments/scale/weights/1a2b3c4d5e6f7a8b.pt --marginal 10000   # validation
    blackprop evaluate out/net.pt --split test --search 64

    metrics = rescore("out/net.pt", split="valid", marginal=10_000)
    metrics["valid_accuracy"], metrics["valid_marginal_accuracy"]

The network comes from ``load_saved`` (the task and network its run recorded) and the program is the
task's, so accuracy means what it means in ``train``: argmax symbols through the program, and with
``search`` / ``marginal`` the program-checked and marginal decodings beside it. The validation split
is the default: the test set was scored once, when the run finished.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..blackbox import BlackBox
from ..estimators import ISED
from ..tasks import get_task
from .checkpoint import load_saved
from .config import pick_device
from .train import evaluate, marginal_accuracy

__all__ = ["rescore"]


def rescore(path: str | Path, split: str = "valid", size: int | None = None, search: int = 1, marginal: int = 0,
            device: str = "auto") -> dict[str, Any]:
    """Metrics of the network saved at ``path`` on ``split`` ("valid" or "test"), ``size`` examples
    (the task's default size when None), named ``<split>_accuracy`` and so on as in a run's row."""
    if split not in ("valid", "test"):
        raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
    for name, value, low in (("size", size, 1), ("search", search, 1), ("marginal", marginal, 0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    model, run = load_saved(path)
    task = get_task(run["task"])
    at = pick_device(device)
    model.to(at)
    count = size or getattr(task.defaults, f"{split}_size")
    data = task.data(split, count, train_size=run.get("train_size")) if split == "valid" else task.data(split, count)
    layer = BlackBox(task.make_program(), ISED()).to(at)  # prediction runs the program; the estimator is unused
    with torch.no_grad():
        metrics: dict[str, Any] = {"weights": str(path), "task": run["task"], "method": run.get("method"),
                                   "seed": run.get("seed"), "split": split, "size": len(data),
                                   **evaluate(model, layer, data, at, prefix=split, search=search)}
        if marginal:
            metrics["marginal"] = marginal
            metrics[f"{split}_marginal_accuracy"] = marginal_accuracy(model, layer, data, at, marginal)
    layer.program.close()
    return metrics
