"""Accuracy tables group runs by what they ran: rows of the same settings share a table row whatever
the defaults were when they ran; rows of different settings never share one, even where each matched
the defaults of its own time; rows whose command no longer reproduces them are a row of their own."""

from __future__ import annotations

from typing import Any

from blackprop.run.config import run_defaults
from blackprop.run.tables import accuracy_section
from blackprop.tasks import get_task


def run(seed: int, accuracy: float, *, defaults: dict[str, Any] | None = None, stale: bool = False,
        **changes: Any) -> dict[str, Any]:
    """A sum2 row of default ISED (today's defaults), with ``changes`` to its training or estimator settings."""
    today = run_defaults(get_task("sum2"), "ised")
    estimator = {k: today[k] for k in ("semiring", "dedup", "normalize", "loss_fn", "exploration", "weights",
                                       "site_exploration", "enumerate_within_budget")}
    training = {k: today[k] for k in ("epochs", "lr", "lr_schedule", "batch_size", "num_samples", "train_size",
                                      "test_size")}
    for key, value in changes.items():
        (estimator if key in estimator else training)[key] = value
    row = {"task": "sum2", "method": "ised", "seed": seed, **training,
           "estimator": {"name": "ised", "num_samples": training["num_samples"], **estimator},
           "defaults": defaults if defaults is not None else today, "test_accuracy": accuracy,
           "seconds": 1.0, "program_calls": 100}
    return {**row, "stale": "its command no longer reproduces it"} if stale else row


def body(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Method label -> its sum2 cell, from the first (test accuracy) table."""
    lines = accuracy_section("t", rows)
    table = lines[lines.index("| method | sum2 |") + 2:]
    cells = {}
    for line in table:
        if not line.startswith("| ") or line.startswith("| paper"):
            break
        name, cell = (c.strip() for c in line.strip("|").split("|"))
        cells[name] = cell
    return cells


def test_runs_of_the_same_settings_share_a_row_whatever_the_defaults_of_their_time():
    today = run_defaults(get_task("sum2"), "ised")
    then = {**today, "lr": 1e-4, "lr_schedule": "constant"}  # the task's defaults when seed 0 ran
    cells = body([run(0, 0.97, defaults=then), run(1, 0.98), run(2, 0.99)])
    assert cells == {"ised": "98.00 ± 1.00 (3) [80.34]"}


def test_runs_of_different_settings_never_share_a_row():
    old_default = {"weights": "probability", "site_exploration": 0.0}  # each the default of its time
    then = {**run_defaults(get_task("sum2"), "ised"), **old_default}
    cells = body([run(0, 0.90, defaults=then, **old_default), run(0, 0.98), run(1, 0.96, lr=1e-3)])
    assert cells == {"ised (site_exploration=0.0, weights=probability)": "90.00 ± 0.00 (1) [80.34]",
                     "ised": "98.00 ± 0.00 (1) [80.34]",
                     "ised (lr=0.001)": "96.00 ± 0.00 (1) [80.34]"}


def test_stale_runs_are_a_row_of_their_own():
    cells = body([run(0, 0.98), run(1, 0.50, stale=True)])
    assert cells == {"ised": "98.00 ± 0.00 (1) [80.34]", "ised †": "50.00 ± 0.00 (1) [80.34]"}
