"""The "accuracy" table kind: method x task tables of accuracy and cost, and accuracy-per-epoch plots.

Accuracy cells are the mean ± std over seeds (number of seeds) [the paper's figure]. Runs of one
method with different settings (an ablation) are separate rows, labelled by the settings that
differ from today's defaults of the task and the estimator: runs of the same settings share a row
whenever they ran, runs of different settings never do, and rows whose command no longer
reproduces them (``stale``) are a row of their own, marked †.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["accuracy_section", "curve", "plot_histories"]

SETTING_FIELDS = ("epochs", "lr", "batch_size", "num_samples", "train_size", "test_size")
Rows = list[dict[str, Any]]
Groups = dict[tuple[str, str, bool], dict[str, Rows]]  # (method, label, stale) -> task -> rows


def curve(history: Rows) -> tuple[str, list[float]]:
    """Which accuracy an epoch row holds ("valid" for rows since the validation split, else "test")."""
    key = "valid_accuracy" if history and "valid_accuracy" in history[0] else "test_accuracy"
    return key.removesuffix("_accuracy"), [h[key] for h in history]


def _settings(row: dict[str, Any]) -> dict[str, Any]:
    out = {f: row.get(f) for f in SETTING_FIELDS}
    out["lr_schedule"] = row.get("lr_schedule", "constant")  # rows from before the option: constant
    out["search"] = row.get("search", 1)
    if row.get("marginal"):  # rows that also scored the most probable output: their own table row
        out["marginal"] = row["marginal"]
    if row.get("select") not in (None, "last"):  # test scored on the best validation epoch's weights
        out["select"] = row["select"]
    if row.get("network") is not None:  # a network chosen with --network: its own table row
        out["network"] = row["network"]
    estimator = dict(row.get("estimator") or {})
    estimator.pop("name", None)
    if "num_samples" in estimator:  # what the estimator used (--set num_samples=N overrides the task's k)
        out["num_samples"] = estimator.pop("num_samples")
    out.update(estimator)
    return out


def _non_default(row: dict[str, Any]) -> dict[str, Any]:
    """The row's settings that differ from today's defaults of its task and method (``run_defaults``),
    so that rows of the same settings share a label, and so a table row, whenever they ran, and rows
    of different settings never do; for a task no longer registered, the defaults recorded in the row."""
    from ..tasks import get_task
    from .config import run_defaults

    settings = _settings(row)
    try:
        defaults = run_defaults(get_task(row["task"]), row["method"])
    except ValueError:
        defaults = row.get("defaults") or run_defaults(None, row["method"])
    return {k: v for k, v in settings.items() if k not in defaults or defaults[k] != v}


def _label(row: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(_non_default(row).items()))


def _task_order(tasks: list[str]) -> list[str]:
    from ..tasks import task_names

    known = task_names()
    return sorted(tasks, key=lambda t: (known.index(t) if t in known else len(known), t))


def _paper(task: str) -> dict[str, float]:
    from ..tasks import get_task

    try:
        return dict(get_task(task).paper)
    except ValueError:
        return {}


def _cell(values: list[float]) -> str:
    mean = 100 * statistics.fmean(values)
    std = 100 * statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.2f} ± {std:.2f} ({len(values)})"


def _table(tasks: list[str], groups: Groups, cell: Callable[[str, str, Rows], str]) -> list[str]:
    lines = ["| method | " + " | ".join(tasks) + " |", "|---" * (len(tasks) + 1) + "|"]
    for (method, label, stale), by_task in groups.items():
        name = f"{method} ({label})" if label else method
        lines.append(f"| {name}{' †' if stale else ''} | "
                     + " | ".join(cell(method, t, by_task.get(t, [])) for t in tasks) + " |")
    return lines


def _metric(key: str) -> Callable[[str, str, Rows], str]:
    def cell(method: str, task: str, runs: Rows) -> str:
        values = [r[key] for r in runs if r.get(key) is not None]
        text = _cell(values) if values else "–"
        if key == "test_accuracy":
            paper = _paper(task).get(method)
            text += f" [{paper:.2f}]" if paper is not None else ""
        return text

    return cell


def _cost_cell(method: str, task: str, runs: Rows) -> str:
    if not runs:
        return "–"
    seconds = statistics.fmean(r["seconds"] for r in runs)
    calls = statistics.fmean(r["program_calls"] for r in runs)
    per_epoch = statistics.fmean(r["program_calls"] / r["epochs"] for r in runs)
    cell = f"{seconds:.0f}s, {calls:,.0f} calls ({per_epoch:,.0f}/epoch)"
    queries = [r["program_queries_per_example"] for r in runs if "program_queries_per_example" in r]
    return cell + (f", {statistics.fmean(queries):,.4g} queries/example" if queries else "")


def accuracy_section(title: str, rows: Rows) -> list[str]:
    """Markdown lines: accuracy, symbol / search / marginal / validation accuracy where recorded, cost, provenance."""
    tasks = _task_order(list(dict.fromkeys(r["task"] for r in rows)))
    groups: Groups = defaultdict(lambda: defaultdict(list))
    for row in rows:
        groups[(row["method"], _label(row), bool(row.get("stale")))][row["task"]].append(row)
    lines = [f"## {title}", "", "Test accuracy (%), mean ± std over seeds (number of seeds) [paper's figure]. "
             "A row is one method with one set of settings, named by those that differ from today's defaults of the "
             "task and the estimator († : rows whose command no longer reproduces them).", ""]
    lines += _table(tasks, groups, _metric("test_accuracy"))
    best = [max(p.items(), key=lambda item: item[1]) if (p := _paper(t)) else None for t in tasks]
    if any(b is not None for b in best):
        lines.append("| paper, best of any method | " + " | ".join(
            f"{b[1]:.2f} ({b[0]})" if b else "–" for b in best) + " |")
    if any(r.get("valid_accuracy") is not None for r in rows):
        lines += ["", "Validation accuracy (%) after the last epoch, for the rows that have a validation split "
                  "(every default is chosen on these, never on the test figures).", ""]
        lines += _table(tasks, groups, _metric("valid_accuracy"))
    if any(r.get("symbol_accuracy") is not None for r in rows):
        lines += ["", "Symbol accuracy (%) of the same runs: each input image's most likely class against its true "
                  "symbol (tasks whose label does not pin the symbols, such as equal or add-mod-3, can be right "
                  "with a relabelled alphabet).", ""]
        lines += _table(tasks, groups, _metric("symbol_accuracy"))
    if any(r.get("search_accuracy") is not None for r in rows):
        lines += ["", "Test accuracy (%) with program-checked decoding, for the rows run with `--search N`: where "
                  "the most likely symbols fail, the most probable of the N most probable symbol tuples that the "
                  "program accepts (`blackprop.decoding`; no label is used). The first table is argmax decoding.", ""]
        lines += _table(tasks, groups, _metric("search_accuracy"))
    if any(r.get("marginal_accuracy") is not None for r in rows):
        lines += ["", "Test accuracy (%) with marginal decoding, for the rows run with `--marginal N`: each example's "
                  "most probable output, argmax over y of p(y), summed over every symbol tuple when there are at "
                  "most N, else estimated from N draws (`blackprop.decoding.most_probable_outputs`; the ISED "
                  "paper scored its own runs this way, by sampling). Validation figures follow.", ""]
        lines += _table(tasks, groups, _metric("marginal_accuracy"))
        lines += [""]
        lines += _table(tasks, groups, _metric("valid_marginal_accuracy"))
    lines += ["", "Training seconds per run and program calls per run and per epoch (means over seeds; calls are "
              "cache misses, i.e. real executions, most of them in the first epoch); for the rows that record it, "
              "the program queries per training example and epoch: the tuples the estimator asked for before "
              "the cache (its sample budget).", ""]
    lines += _table(tasks, groups, _cost_cell)
    settings = sorted({json.dumps(_settings(r), sort_keys=True) for r in rows})
    lines += ["", "Settings of these rows:", ""] + [f"- `{s}`" for s in settings[:20]]
    return lines


def plot_histories(rows: Rows, folder: Path, stem: str) -> list[Path]:
    """One PNG per task: mean accuracy per epoch (validation, or test for older rows) for each method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for task in dict.fromkeys(r["task"] for r in rows):
        figure, axis = plt.subplots(figsize=(5, 3.5))
        by_method: dict[str, list[list[float]]] = defaultdict(list)
        split = "test"
        for r in rows:
            if r["task"] == task and r.get("history"):
                split, values = curve(r["history"])
                by_method[r["method"]].append(values)
        for method, curves in by_method.items():
            length = min(len(c) for c in curves)
            mean = [statistics.fmean(c[i] for c in curves) for i in range(length)]
            axis.plot(range(1, length + 1), [100 * m for m in mean], marker="o", markersize=3, label=method)
        axis.set_xlabel("epoch")
        axis.set_ylabel(f"{split} accuracy (%)")
        axis.set_title(f"{task} ({stem})")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        figure.tight_layout()
        target = folder / f"{stem}_{task}.png"
        figure.savefig(target, dpi=80)
        plt.close(figure)
        written.append(target)
    return written
