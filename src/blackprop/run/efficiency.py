"""Sample- and data-efficiency tables and plots (the paper's sum8 / sum12 / sum16 grid; sum4 per epoch).

Table kinds for ``blackprop.run.report``:

* ``efficiency_headline``: the paper's grid, one cell per estimator family and (task, k) column, each
  showing its longest run, with the paper's figure in brackets; plus a plot of those runs' curves.
* ``efficiency_sample``: every configuration run, one row per (method and settings, epochs).
* ``efficiency_data``: accuracy after each epoch with cumulative seconds; plus accuracy against time
  and against examples seen.

k is a budget of program queries per example, as in the paper: ISED and REINFORCE draw k tuples;
IndeCateR(+) spend 10n queries per sample, so they run with N = k / (10n) samples.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from .spec import SWEEPING

__all__ = ["data_table", "headline_table", "plot_data", "plot_sample", "sample_table"]

DATA_TASK = "sum4"
DATA_TRAIN_SIZE = 5000

# The paper's sample-efficiency table (test accuracy %, 100 epochs), keyed by (method, task, k).
PAPER_SAMPLE = {
    "reinforce": (8.32, 8.28, 7.52, 8.20, 5.12, 6.28),
    "indecater": (5.36, 89.60, 4.60, 77.88, 1.24, 5.16),
    "indecater+": (10.20, 88.60, 6.84, 86.92, 4.24, 83.52),
    "ised": (87.28, 87.72, 85.72, 86.72, 6.48, 8.13),
}
PAPER_COLUMNS = (("sum8", 80), ("sum8", 800), ("sum12", 120), ("sum12", 1200), ("sum16", 160), ("sum16", 1600))


def epoch_accuracy(h: dict[str, Any]) -> float:
    """An epoch's accuracy: validation for rows since the validation split, test for older rows."""
    return float(h["valid_accuracy"] if "valid_accuracy" in h else h["test_accuracy"])


def paper_figure(method: str, task: str, k: int) -> float | None:
    figures = PAPER_SAMPLE.get(method)
    if figures is None or (task, k) not in PAPER_COLUMNS:
        return None
    return figures[PAPER_COLUMNS.index((task, k))]




def budget(row: dict[str, Any]) -> int:
    """The row's queries per example (the k of the paper's columns): N * 10n for IndeCateR(+), else k."""
    n = int(row["task"].removeprefix("sum"))
    return row["num_samples"] * 10 * n if row["method"] in SWEEPING else row["num_samples"]


def label(row: dict[str, Any]) -> str:
    settings = row.get("estimator_settings") or {}
    name = row["method"]
    if settings:
        name += "?" + "&".join(f"{k}={json.dumps(v)}" for k, v in sorted(settings.items()))
    schedule = row.get("lr_schedule", "constant")
    return name if schedule == "constant" else f"{name}, {schedule} lr"


def is_variant(row: dict[str, Any]) -> bool:
    """Settings other than the method's defaults and a constant lr: the paper has no figure for it."""
    return bool(row.get("estimator_settings")) or row.get("lr_schedule", "constant") != "constant"


def mean_std(values: list[float]) -> str:
    mean = 100 * statistics.fmean(values)
    return f"{mean:.2f} ± {100 * statistics.stdev(values):.2f}" if len(values) > 1 else f"{mean:.2f}"


def best_epoch(history: list[dict[str, Any]]) -> int:
    return max(history, key=lambda h: epoch_accuracy(h))["epoch"]


# The paper's grid, one row per estimator: the variant keeps 5 one-site draws per digit (m k = 5n);
# "ised-l2-bce" is ISED with the reference implementation's summary and loss (L2 normalisation, BCE).
HEADLINE = ("variant", "ised", "ised-l2-bce", "reinforce", "indecater", "indecater+")
HEADLINE_NAMES = {"variant": "variant (importance + one-site)", "ised": "ised (blackprop defaults: L1, NLL)",
                  "ised-l2-bce": "ised (the reference's L2 + BCE)"}
PAPER_ROW = {"ised-l2-bce": "ised"}  # whose paper figures a family is shown beside
VARIANT = "ised"


def headline_settings(family: str, task: str, k: int) -> tuple[str, dict[str, Any]]:
    """The (method, settings) of a headline cell: defaults for the paper's methods; for the variant,
    importance weights and one-site exploration with m = 5n / k (0.5 at k = 10n, 0.05 at k = 100n).

    >>> headline_settings("variant", "sum16", 1600)
    ('ised', {'site_exploration': 0.05, 'weights': 'importance'})
    """
    if family == "ised-l2-bce":
        return "ised", {"loss_fn": "bce", "normalize": "l2"}
    if family != "variant":
        return family, {}
    n = int(task.removeprefix("sum"))
    return VARIANT, {"site_exploration": round(5 * n / k, 6), "weights": "importance"}


def headline_runs(rows: list[dict[str, Any]], family: str, task: str, k: int) -> list[dict[str, Any]]:
    """The runs of one headline cell: of the runs with the cell's method and settings, the (lr schedule,
    epochs) group with the most epochs, then the most seeds; [] when none ran."""
    method, settings = headline_settings(family, task, k)
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if (r["method"], r["task"], budget(r)) == (method, task, k) and (r.get("estimator_settings") or {}) == settings:
            groups[(r.get("lr_schedule", "constant"), r["epochs"])].append(r)
    if not groups:
        return []
    return max(groups.values(), key=lambda runs: (runs[0]["epochs"], len(runs)))


def headline_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "One cell per estimator and column: mean ± std over seeds (seeds, epochs, lr schedule), the paper's",
        "figure after 100 epochs in brackets, and program calls per epoch (executions; the budget is k",
        "queries per example). Where a method ran with several epoch counts, the cell shows the longest.",
        "The variant is `ised?weights=importance&site_exploration=m` with m = 5n/k; the row \"the reference's",
        "L2 + BCE\" is `ised?normalize=l2&loss_fn=bce`, the summary and loss of the paper's code.",
        "",
        "| estimator | " + " | ".join(f"{t} k={k}" for t, k in PAPER_COLUMNS) + " |",
        "|---" * (len(PAPER_COLUMNS) + 1) + "|",
    ]
    for family in HEADLINE:
        cells = []
        for task, k in PAPER_COLUMNS:
            runs = headline_runs(rows, family, task, k)
            paper = paper_figure(PAPER_ROW.get(family, family), task, k)
            bracket = f" [{paper:.2f}]" if paper is not None else ""
            if not runs:
                cells.append("not run" + bracket)
                continue
            lr = runs[0].get("lr_schedule", "constant")
            calls = statistics.fmean(r["program_calls"] / r["epochs"] for r in runs)
            cells.append(f"**{mean_std([r['test_accuracy'] for r in runs])}**{bracket} "
                         f"({len(runs)} seed{'s' * (len(runs) > 1)}, {runs[0]['epochs']} ep, {lr}; {calls:,.0f} calls/ep)")
        lines.append(f"| {HEADLINE_NAMES.get(family, family)} | " + " | ".join(cells) + " |")
    return lines


def sample_table(rows: list[dict[str, Any]]) -> list[str]:
    columns = sorted({(r["task"], budget(r)) for r in rows}, key=lambda c: (int(c[0][3:]), c[1]))
    groups: dict[str, dict[tuple[str, int], list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in sorted(rows, key=lambda r: (label(r), r["epochs"])):
        groups[f"{label(r)}, {r['epochs']} ep"][(r["task"], budget(r))].append(r)
    head = " | ".join(f"{t} k={k}" for t, k in columns)
    lines = [
        "Test accuracy (%) after the final epoch, mean ± std over seeds, [the paper's figure after 100 epochs,",
        "shown beside the rows with the method's default settings]; a row is one method and epoch count;",
        "below it: epochs run, best epoch, the mean test accuracy of the last 5 epochs (less noisy than the",
        "last one on 500 test sums), training seconds, and program calls per epoch (cache misses, i.e.",
        "actual executions; the budget is k evaluations per example). Runs marked \"batched\" ran on",
        "`BatchedProgram` (from 2026-11-27 on), which executes every query: calls = k per example.",
        "",
        f"| method | {head} |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for method, by_column in groups.items():
        cells, costs = [], []
        for task, k in columns:
            runs = by_column.get((task, k), [])
            paper = None if runs and is_variant(runs[0]) else paper_figure(runs[0]["method"] if runs else method, task, k)
            cell = mean_std([r["test_accuracy"] for r in runs]) if runs else "–"
            cells.append(cell + (f" [{paper:.2f}]" if paper is not None else ""))
            if runs:
                epochs = runs[0]["epochs"]
                seconds = statistics.fmean(r["seconds"] for r in runs)
                calls = statistics.fmean(r["program_calls"] / r["epochs"] for r in runs)
                tail = statistics.fmean(100 * epoch_accuracy(h) for r in runs for h in r["history"][-5:])
                batched = sum(r.get("program") == "batched" for r in runs)
                costs.append(f"{epochs} ep (best {best_epoch(runs[0]['history'])}, last-5 mean {tail:.1f}), "
                             f"{seconds:.0f}s, {calls:,.0f} calls/ep" + (f" ({batched} batched)" if batched else ""))
            else:
                costs.append("–")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("| ↳ cost | " + " | ".join(costs) + " |")
    for method in PAPER_SAMPLE:
        if method not in {r["method"] for r in rows}:
            figures = [paper_figure(method, t, k) for t, k in columns]
            lines.append(f"| {method} (paper only) | " + " | ".join(f"[{f:.2f}]" if f is not None else "–" for f in figures) + " |")
    return lines


def data_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "Test accuracy (%) after each epoch (5,000 examples seen per epoch), with cumulative training seconds",
        "(validation accuracy for rows written since the validation split: the test set is evaluated once).",
        "",
        "| method | k | " + " | ".join(f"epoch {e + 1}" for e in range(max(len(r["history"]) for r in rows))) + " |",
        "|---|---" + "|---" * max(len(r["history"]) for r in rows) + "|",
    ]
    for r in rows:
        cells = [f"{100 * epoch_accuracy(h):.2f} ({h['seconds']:.0f}s)" for h in r["history"]]
        lines.append(f"| {label(r)} (seed {r['seed']}) | {budget(r)} | " + " | ".join(cells) + " |")
    return lines


def plot_sample(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """The headline cells' test-accuracy curves: rows k = 10n and k = 100n, columns sum8 / sum12 / sum16."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    figure, axes = plt.subplots(2, 3, figsize=(12, 6.8), squeeze=False)
    colours = dict(zip(HEADLINE, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    for index, (task, k) in enumerate(PAPER_COLUMNS):
        axis = axes[index % 2][index // 2]
        for family in HEADLINE:
            for r in headline_runs(rows, family, task, k):
                axis.plot([h["epoch"] for h in r["history"]], [100 * epoch_accuracy(h) for h in r["history"]],
                          color=colours[family], linewidth=1)
            paper = paper_figure(family, task, k)  # the reference-loss row shares ISED's line
            if paper is not None:
                axis.axhline(paper, linestyle=":", linewidth=1, color=colours[family])
        axis.set_title(f"{task}, k={k}", fontsize=9)
        axis.set_xlabel("epoch")
        axis.set_ylabel("test accuracy (%)")
        axis.set_ylim(0, 100)
        axis.grid(alpha=0.3)
    handles = [Line2D([], [], color=colours[family], linewidth=1) for family in HEADLINE]
    figure.legend(handles, HEADLINE, loc="lower center", ncol=len(HEADLINE), fontsize=8, frameon=False)
    figure.suptitle("sample efficiency, one line per seed (dotted: the paper's figure after 100 epochs)", fontsize=9)
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "efficiency_sample.png"
    figure.savefig(target, dpi=80)
    plt.close(figure)
    return [target]


def longest(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (configuration, seed), the run with the most epochs: shorter ones add no point to a curve."""
    best: dict[tuple[str, int, int], dict[str, Any]] = {}
    for r in rows:
        key = (label(r), budget(r), r["seed"])
        if key not in best or r["epochs"] > best[key]["epochs"]:
            best[key] = r
    return list(best.values())


def plot_data(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Test accuracy against training seconds and against examples seen, the longest run per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (by_time, by_examples) = plt.subplots(1, 2, figsize=(10, 4.6))
    for r in longest(rows):
        accuracy = [0.0] + [100 * epoch_accuracy(h) for h in r["history"]]
        by_time.plot([0.0] + [h["seconds"] for h in r["history"]], accuracy, marker="o", markersize=3,
                     label=f"{label(r)} s{r['seed']}")
        by_examples.plot([0] + [h["epoch"] * r["train_size"] for h in r["history"]], accuracy, marker="o",
                         markersize=3, label=f"{label(r)} s{r['seed']}")
    by_time.set_xlabel("training time (s, one CPU thread)")
    by_examples.set_xlabel("training examples seen")
    for axis in (by_time, by_examples):
        axis.set_ylabel("test accuracy (%)")
        axis.set_ylim(0, 100)
        axis.grid(alpha=0.3)
    handles, labels = by_time.get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=7, frameon=False)
    figure.suptitle(f"data efficiency: {DATA_TASK}, {DATA_TRAIN_SIZE} training examples", fontsize=9)
    figure.tight_layout(rect=(0, 0.06 * (1 + (len(labels) - 1) // 3), 1, 1))
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "efficiency_data.png"
    figure.savefig(target, dpi=80)
    plt.close(figure)
    return [target]


