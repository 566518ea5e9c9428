"""The paper's sample- and data-efficiency experiments, one command each, plus their report.

Sample efficiency (sum8 / sum12 / sum16, k = 10n and 100n, LeNet, Adam 1e-3, batch 16, the task
registry's 5000 / 5000 / 3750 training and 500 test tuples):

    python benchmarks/efficiency.py sample --tasks sum16 --k-per-digit 10 --methods ised,ised-sub --epochs 8

k is a budget of program queries per example, as in the paper: ISED and REINFORCE draw k tuples;
IndeCateR and IndeCateR+ spend 10n queries per sample (every value of every digit), so they run with
N = k / (10n) samples (1 at k = 10n, 10 at k = 100n).

Data efficiency (sum4, 5,000 training examples, test accuracy against training time and against
examples seen):

    python benchmarks/efficiency.py data --methods ised,ised-sub,anesi --epochs 3

Report (markdown tables beside the paper's figures, PNG plots):

    python benchmarks/efficiency.py report

The report opens with the paper's grid, one cell per estimator (ISED, REINFORCE, IndeCateR(+) with
their defaults, and the variant ``ised?weights=importance&site_exploration=m`` with m = 5n/k), each
showing its longest run; then every configuration run, and the data-efficiency table and plot.
The results/*.sh scripts hold the command lines of the recorded runs.

A proxy that runs in seconds (no MNIST; one learnable logit row per image; digit accuracy):

    python benchmarks/efficiency.py proxy --tasks sum4 --methods "ised,ised-sub?k_per_digit=100&weighting=probability"

Every run goes through ``blackprop.bench.run_grid``: results are appended to one JSONL file
(default results/efficiency.jsonl) and a re-run skips finished runs and resumes interrupted ones.
Methods are registry names, optionally with estimator settings after ``?`` (``ised-sub?include_mode=true``);
names not (yet) registered are skipped with a message. Each command line is appended to
``<out>.commands`` so the report can list what produced the rows.

The sum-n programs are ``BatchedProgram``s (no memo: sum16 at k=1600 asks for millions of distinct
16-tuples per epoch). Rows from before 2026-11-27 ran on ``Program`` with a memo bounded to 200,000
entries; that changed only how many calls were answered from memory, never a result.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from blackprop.bench import run_grid
from blackprop.estimators import ESTIMATORS
from blackprop.program import Program
from blackprop.train import RunConfig

SAMPLE_TASKS = ("sum8", "sum12", "sum16")
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


def paper_figure(method: str, task: str, k: int) -> float | None:
    figures = PAPER_SAMPLE.get(method)
    if figures is None or (task, k) not in PAPER_COLUMNS:
        return None
    return figures[PAPER_COLUMNS.index((task, k))]


# --- running -------------------------------------------------------------------------------
def parse_method(spec: str) -> tuple[str, dict[str, Any]]:
    """``"ised-sub?include_mode=true&weighting=uniform"`` -> ("ised-sub", {...}), values parsed as JSON."""
    name, _, query = spec.partition("?")
    settings: dict[str, Any] = {}
    for pair in filter(None, query.split("&")):
        key, _, raw = pair.partition("=")
        try:
            settings[key] = json.loads(raw)
        except json.JSONDecodeError:
            settings[key] = raw
    return name.strip(), settings


def registered(specs: list[str]) -> list[tuple[str, dict[str, Any]]]:
    methods = []
    for spec in specs:
        name, settings = parse_method(spec)
        if name not in ESTIMATORS:
            print(f"skip: method {name!r} is not registered yet (registered: {', '.join(sorted(ESTIMATORS))})")
            continue
        methods.append((name, settings))
    return methods


def record_command(out: Path) -> None:
    with open(out.with_name(out.name + ".commands"), "a") as f:
        f.write(" ".join(["python", "benchmarks/efficiency.py", *map(shlex.quote, sys.argv[1:])]) + "\n")


def run_sample(args: argparse.Namespace) -> None:
    configs = []
    for task in split(args.tasks):
        n = int(task.removeprefix("sum"))
        for multiplier in (int(m) for m in split(args.k_per_digit)):
            for name, settings in registered(split(args.methods)):
                samples = indecater_samples(name, multiplier * n, n)
                for seed in (int(s) for s in split(args.seeds)):
                    configs.append(RunConfig(task=task, method=name, seed=seed, num_samples=samples,
                                             epochs=args.epochs, estimator_settings=settings, threads=args.threads,
                                             lr_schedule=args.lr_schedule, progress=False))
    run(configs, Path(args.out))


#: methods that sweep every value of every variable in each sample: D*K*N queries per example
SWEEPING = ("indecater", "indecater+")


def indecater_samples(name: str, budget: int, n: int) -> int:
    """N for a budget of k queries per example: IndeCateR(+) spends n * 10 per sample (one per digit value),
    so N = k / (10 n) (1 at k = 10n, 10 at k = 100n, as in the paper); other methods draw k samples.

    >>> indecater_samples("indecater+", 1600, 16), indecater_samples("ised", 1600, 16)
    (10, 1600)
    """
    return max(1, budget // (10 * n)) if name in SWEEPING else budget


def budget(row: dict[str, Any]) -> int:
    """The row's queries per example (the k of the paper's columns): N * 10n for IndeCateR(+), else k."""
    n = int(row["task"].removeprefix("sum"))
    return row["num_samples"] * 10 * n if row["method"] in SWEEPING else row["num_samples"]


def run_data(args: argparse.Namespace) -> None:
    configs = [
        RunConfig(task=DATA_TASK, method=name, seed=int(seed), epochs=args.epochs,
                  num_samples=indecater_samples(name, args.num_samples, int(DATA_TASK.removeprefix("sum"))),
                  train_size=DATA_TRAIN_SIZE, estimator_settings=settings, threads=args.threads,
                  lr_schedule=args.lr_schedule, progress=False)
        for name, settings in registered(split(args.methods)) for seed in split(args.seeds)
    ]
    run(configs, Path(args.out))


def run(configs: list[RunConfig], out: Path) -> None:
    if not configs:
        print("nothing to run")
        return
    torch.set_num_threads(configs[0].threads or 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    record_command(out)
    run_grid(configs, out, log=lambda line: print(line, flush=True))


# --- a fast proxy without MNIST ----------------------------------------------------------
def proxy_accuracy(n: int, estimator: Any, images: int = 200, steps: int = 300, seed: int = 0) -> float:
    """sum-n over ``images`` learnable logit rows (one per 'image'): digit accuracy after ``steps`` Adam steps."""
    from blackprop import BlackBox, Discrete

    torch.manual_seed(seed)
    digit = Discrete(range(10))
    truth = torch.randint(0, 10, (images,))
    program = Program(lambda *xs: sum(xs), inputs=(digit,) * n, output=Discrete(range(9 * n + 1)))
    layer = BlackBox(program, estimator, seed=seed)
    logits = torch.zeros(images, 10, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=0.05)
    for _ in range(steps):
        rows = torch.randint(0, images, (32, n))
        probs = torch.softmax(logits[rows], dim=-1)
        loss = layer.loss(*probs.unbind(1), target=truth[rows].sum(1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float((logits.argmax(dim=1) == truth).float().mean())


def run_proxy(args: argparse.Namespace) -> None:
    from blackprop import estimator

    torch.set_num_threads(1)
    for n in (int(t.removeprefix("sum")) for t in split(args.tasks)):
        for spec in split(args.methods):
            name, settings = parse_method(spec)
            if name not in ESTIMATORS:
                print(f"skip: method {name!r} is not registered yet")
                continue
            multiplier = int(settings.pop("k_per_digit", 10))
            if name != "exact":
                settings.setdefault("num_samples", multiplier * n)
            try:
                accuracy = f"{proxy_accuracy(n, estimator(name, **settings)):.3f}"
            except ValueError as error:
                accuracy = f"not run ({error})"
            print(f"sum{n} {spec}: digit accuracy {accuracy}", flush=True)


# --- reporting -----------------------------------------------------------------------------
def load(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


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
    return max(history, key=lambda h: h["test_accuracy"])["epoch"]


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
                tail = statistics.fmean(100 * h["test_accuracy"] for r in runs for h in r["history"][-5:])
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
        "Test accuracy (%) after each epoch (5,000 examples seen per epoch), with cumulative training seconds.",
        "",
        "| method | k | " + " | ".join(f"epoch {e + 1}" for e in range(max(len(r["history"]) for r in rows))) + " |",
        "|---|---" + "|---" * max(len(r["history"]) for r in rows) + "|",
    ]
    for r in rows:
        cells = [f"{100 * h['test_accuracy']:.2f} ({h['seconds']:.0f}s)" for h in r["history"]]
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
                axis.plot([h["epoch"] for h in r["history"]], [100 * h["test_accuracy"] for h in r["history"]],
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
        accuracy = [0.0] + [100 * h["test_accuracy"] for h in r["history"]]
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


def report(args: argparse.Namespace) -> None:
    path, out, plots = Path(args.results), Path(args.out), Path(args.plots)
    rows = load(path)
    sample = [r for r in rows if r["task"] in SAMPLE_TASKS]
    data = [r for r in rows if r["task"] == DATA_TASK]
    lines = ["# Sample and data efficiency", "",
             f"Generated by `python benchmarks/efficiency.py report --results {path} --out {out}` from {path}.", ""]
    if args.notes and Path(args.notes).exists():
        lines += [Path(args.notes).read_text().strip(), ""]
    lines += ["## Sample efficiency (sum8 / sum12 / sum16)", ""]
    if sample:
        lines += headline_table(sample)
        lines += ["", *(f"![sample efficiency]({p.relative_to(out.parent).as_posix()})" for p in plot_sample(sample, plots))]
        lines += ["", "### Every configuration run", ""]
        lines += sample_table(sample)
    else:
        lines.append("(no finished runs yet)")
    lines += ["", "## Data efficiency (sum4, 5,000 training examples)", ""]
    if data:
        lines += data_table(data)
        lines += ["", *(f"![data efficiency]({p.relative_to(out.parent).as_posix()})" for p in plot_data(data, plots))]
    else:
        lines.append("(no finished runs yet)")
    commands = path.with_name(path.name + ".commands")
    if commands.exists():
        lines += ["", "## Commands that produced these rows", "", "```"]
        lines += list(dict.fromkeys(commands.read_text().splitlines()))
        lines += [f"python benchmarks/efficiency.py report --results {path} --out {out}", "```"]
    commits = sorted({str(r.get("commit")) for r in rows})
    lines += ["", f"Package commits of the rows: {', '.join(commits)}.", ""]
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


# --- command line --------------------------------------------------------------------------
def split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sample = commands.add_parser("sample", help="sample efficiency: sum-n with k = multiplier * n")
    sample.add_argument("--tasks", default=",".join(SAMPLE_TASKS))
    sample.add_argument("--k-per-digit", default="10,100", help="multipliers m of k = m * n")
    sample.add_argument("--methods", default="ised,ised-sub,reinforce,indecater,indecater+")
    sample.add_argument("--epochs", type=int, default=100, help="the paper's 100 unless fewer are given")
    data = commands.add_parser("data", help="data efficiency: sum4, 5,000 examples, accuracy per epoch and second")
    data.add_argument("--methods", default="ised,ised-sub,anesi,reinforce,indecater,indecater+,nasr")
    data.add_argument("--epochs", type=int, default=10)
    data.add_argument("--num-samples", "-k", type=int, default=100)
    for sub in (sample, data):
        sub.add_argument("--seeds", default="0")
        sub.add_argument("--lr-schedule", default="constant", choices=("constant", "cosine"),
                         help="constant: the paper's Adam 1e-3 throughout; cosine: annealed to 0 over the epochs")
        sub.add_argument("--threads", type=int, default=1)
        sub.add_argument("--out", default="results/efficiency.jsonl")
    proxy = commands.add_parser("proxy", help="sum-n with one learnable logit row per image (seconds, no MNIST)")
    proxy.add_argument("--tasks", default="sum4,sum8")
    proxy.add_argument("--methods", default="exact,ised,ised-sub")
    rep = commands.add_parser("report", help="tables and plots")
    rep.add_argument("--results", default="results/efficiency.jsonl")
    rep.add_argument("--out", default="results/efficiency.md")
    rep.add_argument("--plots", default="results/plots")
    rep.add_argument("--notes", default="results/efficiency_notes.md", help="markdown put above the tables")
    args = parser.parse_args(argv)
    {"sample": run_sample, "data": run_data, "proxy": run_proxy, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
