"""Markdown tables and PNG plots from JSONL results files (``blackprop report``).

For each results file: a method x task table of test accuracy (mean +- std over seeds, the number
of seeds, and the paper's figure in brackets), a table of training seconds and program calls per
epoch, the commands that produced the rows, and one PNG per task with test accuracy per epoch.
Runs of one method with different settings (an ablation) appear as separate rows, labelled by the
settings that differ.

    blackprop report results/mnist_r.jsonl --out RESULTS.md
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

__all__ = ["load_results", "render_markdown", "write_report"]

SETTING_FIELDS = ("epochs", "lr", "batch_size", "num_samples", "train_size", "test_size")


def load_results(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def _settings(row: dict[str, Any]) -> dict[str, Any]:
    out = {f: row.get(f) for f in SETTING_FIELDS}
    out["lr_schedule"] = row.get("lr_schedule", "constant")  # rows from before the option: constant
    out["search"] = row.get("search", 1)  # program-checked decoding at evaluation (1: argmax only)
    estimator = dict(row.get("estimator") or {})
    estimator.pop("name", None)
    if "num_samples" in estimator:  # what the estimator used (--set num_samples=N overrides the task's k)
        out["num_samples"] = estimator.pop("num_samples")
    out.update(estimator)
    return out


def _non_default(row: dict[str, Any]) -> dict[str, Any]:
    """The run's settings that differ from its task's defaults and its estimator's defaults."""
    from .estimators import ESTIMATORS
    from .tasks import get_task

    settings = _settings(row)
    try:
        defaults = {**vars(get_task(row["task"]).defaults), "search": 1}
    except ValueError:
        defaults = {"search": 1}
    cls = ESTIMATORS.get(row["method"])
    if cls is not None:
        defaults = {**defaults, **{k: v for k, v in cls().settings().items() if k != "num_samples"}}
    return {k: v for k, v in settings.items() if k not in defaults or defaults[k] != v}


def _variant_key(row: dict[str, Any]) -> str:
    return json.dumps(_non_default(row), sort_keys=True)


def _variant_label(row: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(_non_default(row).items()))


def _task_order(tasks: list[str]) -> list[str]:
    from .tasks import task_names

    known = task_names()
    return sorted(tasks, key=lambda t: (known.index(t) if t in known else len(known), t))


def _paper(task: str, method: str) -> float | None:
    try:
        from .tasks import get_task

        return get_task(task).paper.get(method)
    except ValueError:
        return None


def _paper_best(task: str) -> tuple[str, float] | None:
    try:
        from .tasks import get_task

        figures = get_task(task).paper
    except ValueError:
        return None
    return max(figures.items(), key=lambda item: item[1]) if figures else None


def _cell(values: list[float]) -> str:
    mean = 100 * statistics.fmean(values)
    std = 100 * statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.2f} ± {std:.2f} ({len(values)})"


Groups = dict[tuple[str, str], dict[str, list[dict[str, Any]]]]


def _table(tasks: list[str], groups: Groups, cell: Any) -> list[str]:
    """A method x task markdown table; ``cell(method, task, runs)`` renders one cell."""
    lines = ["| method | " + " | ".join(tasks) + " |", "|---" * (len(tasks) + 1) + "|"]
    for (method, label), by_task in groups.items():
        name = f"{method} ({label})" if label else method
        lines.append(f"| {name} | " + " | ".join(cell(method, t, by_task.get(t, [])) for t in tasks) + " |")
    return lines


def _accuracy_cell(method: str, task: str, runs: list[dict[str, Any]]) -> str:
    text = _cell([r["test_accuracy"] for r in runs]) if runs else "–"
    paper = _paper(task, method)
    return text + (f" [{paper:.2f}]" if paper is not None else "")


def _symbol_cell(method: str, task: str, runs: list[dict[str, Any]]) -> str:
    values = [r["symbol_accuracy"] for r in runs if r.get("symbol_accuracy") is not None]
    return _cell(values) if values else "–"


def _search_cell(method: str, task: str, runs: list[dict[str, Any]]) -> str:
    values = [r["search_accuracy"] for r in runs if r.get("search_accuracy") is not None]
    return _cell(values) if values else "–"


def _cost_cell(method: str, task: str, runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "–"
    seconds = statistics.fmean(r["seconds"] for r in runs)
    calls = statistics.fmean(r["program_calls"] for r in runs)
    per_epoch = statistics.fmean(r["program_calls"] / r["epochs"] for r in runs)
    cell = f"{seconds:.0f}s, {calls:,.0f} calls ({per_epoch:,.0f}/epoch)"
    queries = [r["program_queries_per_example"] for r in runs if "program_queries_per_example" in r]
    return cell + (f", {statistics.fmean(queries):,.4g} queries/example" if queries else "")


def render_markdown(path: Path, rows: list[dict[str, Any]]) -> str:
    """One section for one results file."""
    tasks = _task_order(list(dict.fromkeys(r["task"] for r in rows)))
    groups: Groups = defaultdict(lambda: defaultdict(list))
    for row in rows:
        groups[(row["method"], _variant_label(row))][row["task"]].append(row)

    lines = [f"## {path.name}", "", "Test accuracy (%), mean ± std over seeds (number of seeds) [paper's figure]. "
             "A row name lists the settings that differ from the task's and the estimator's defaults.", ""]
    lines += _table(tasks, groups, _accuracy_cell)
    best = [_paper_best(task) for task in tasks]
    if any(b is not None for b in best):
        lines.append("| paper, best of any method | " + " | ".join(
            f"{b[1]:.2f} ({b[0]})" if b else "–" for b in best) + " |")
    if any(r.get("symbol_accuracy") is not None for r in rows):
        lines += ["", "Symbol accuracy (%) of the same runs: each input image's most likely class against its true "
                  "symbol (tasks whose label does not pin the symbols, such as equal or add-mod-3, can be right "
                  "with a relabelled alphabet).", ""]
        lines += _table(tasks, groups, _symbol_cell)
    if any(r.get("search_accuracy") is not None for r in rows):
        lines += ["", "Test accuracy (%) with program-checked decoding, for the rows run with `--search N`: where "
                  "the most likely symbols fail, the most probable of the N most probable symbol tuples that the "
                  "program accepts (`blackprop.decoding`; no label is used). The first table is argmax decoding.", ""]
        lines += _table(tasks, groups, _search_cell)
    lines += ["", "Training seconds per run and program calls per run and per epoch (means over seeds; calls are "
              "cache misses, i.e. real executions, most of them in the first epoch); for the rows that record it, "
              "the program queries per training example and epoch: the tuples the estimator asked for before "
              "the cache (its sample budget).", ""]
    lines += _table(tasks, groups, _cost_cell)

    settings = sorted({json.dumps(_settings(r), sort_keys=True) for r in rows})
    lines += ["", "Settings of these rows:", ""]
    lines += [f"- `{s}`" for s in settings[:20]]
    commands = sorted({r["command"] for r in rows if r.get("command")})
    if commands:
        lines += ["", "Produced by:", ""] + [f"- `{c}`" for c in commands]
    commits = sorted({str(r.get("commit")) for r in rows})
    lines += ["", f"Package commits: {', '.join(commits)}.", ""]
    return "\n".join(lines)


def plot_histories(rows: list[dict[str, Any]], folder: Path, stem: str) -> list[Path]:
    """One PNG per task: mean test accuracy per epoch for each method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for task in dict.fromkeys(r["task"] for r in rows):
        figure, axis = plt.subplots(figsize=(5, 3.5))
        by_method: dict[str, list[list[float]]] = defaultdict(list)
        for r in rows:
            if r["task"] == task and r.get("history"):
                by_method[r["method"]].append([h["test_accuracy"] for h in r["history"]])
        for method, curves in by_method.items():
            length = min(len(c) for c in curves)
            mean = [statistics.fmean(c[i] for c in curves) for i in range(length)]
            axis.plot(range(1, length + 1), [100 * m for m in mean], marker="o", markersize=3, label=method)
        axis.set_xlabel("epoch")
        axis.set_ylabel("test accuracy (%)")
        axis.set_title(f"{task} ({stem})")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        figure.tight_layout()
        target = folder / f"{stem}_{task}.png"
        figure.savefig(target, dpi=80)
        plt.close(figure)
        written.append(target)
    return written


def write_report(paths: list[Path], out: Path, plots: Path | None, notes: list[Path] | None = None) -> None:
    notes = notes or []
    command = " ".join(["blackprop report", *map(str, paths), f"--out {out}", *(f"--notes {n}" for n in notes)])
    sections = ["# Results", "", f"Generated by `{command}`.", ""]
    sections += [n.read_text() for n in notes]
    for path in paths:
        rows = load_results(path)
        if not rows:
            sections.append(f"## {path.name}\n\n(no finished runs yet)\n")
            continue
        sections.append(render_markdown(path, rows))
        if plots is not None:
            images = plot_histories(rows, plots, path.stem)
            sections.append("Plots: " + ", ".join(f"[{p.name}]({p.as_posix()})" for p in images) + "\n")
    out.write_text("\n".join(sections))
