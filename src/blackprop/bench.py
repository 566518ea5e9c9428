"""Benchmark grids: ``blackprop bench`` appends one JSON line per finished run and resumes.

    blackprop bench --tasks sum2,sum3 --methods ised,reinforce --seeds 0,1,2 --out results/mnist_r.jsonl

Each finished epoch is also appended to ``<out stem>.epochs.jsonl`` as it happens. A run is
identified by (task, method, seed, resolved settings); a grid re-run skips the runs
already in the results file and resumes an interrupted run from its checkpoint
(``<out>.ckpt/<run id>.pt``), so ``kill -9`` costs at most one epoch. Several grids may share one
results file: each re-reads it before every run and holds ``<out>.ckpt/<run id>.lock`` (its process
id) while training, so a run is never trained twice at once; a lock whose process is gone is taken over.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["add_bench_parsers", "run_key", "run_grid"]


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_bench_parsers(commands: Any, add_run_options: Callable[[argparse.ArgumentParser], None]) -> None:
    bench = commands.add_parser("bench", help="run a task x method x seed grid, appending to a JSONL file")
    bench.add_argument("--tasks", required=True, help="comma-separated task names (or 'mnist-r' for all 11)")
    bench.add_argument("--methods", default="ised", help="comma-separated method names")
    bench.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    bench.add_argument("--out", default="results/mnist_r.jsonl", help="results file (JSON lines, appended)")
    add_run_options(bench)
    bench.set_defaults(handler=_bench)

    report = commands.add_parser("report", help="markdown tables and PNG plots from results files")
    report.add_argument("results", nargs="+", help="JSONL results files")
    report.add_argument("--out", default="RESULTS.md", help="markdown file to write")
    report.add_argument("--plots", default="results/plots", help="folder for PNG plots ('' for none)")
    report.add_argument("--notes", action="append", default=[], metavar="MD",
                        help="a markdown file to place before the tables (repeatable)")
    report.set_defaults(handler=_report)


def run_key(result_or_config: dict[str, Any]) -> str:
    """Identity of a run: task, method, seed and every resolved setting."""
    fields = ("task", "method", "seed", "epochs", "lr", "batch_size", "num_samples", "train_size", "test_size")
    ident = {f: result_or_config.get(f) for f in fields}
    ident["estimator_settings"] = result_or_config.get("estimator_settings", {})
    if result_or_config.get("lr_schedule", "constant") not in (None, "constant"):  # rows before the option: constant
        ident["lr_schedule"] = result_or_config["lr_schedule"]
    if (result_or_config.get("search") or 1) > 1:  # program-checked decoding at evaluation
        ident["search"] = result_or_config["search"]
    return json.dumps(ident, sort_keys=True)


def finished_runs(path: Path) -> set[str]:
    done: set[str] = set()
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                try:
                    done.add(run_key(json.loads(line)))
                except json.JSONDecodeError:
                    continue  # a line cut by a crash; the run is redone
    return done


def run_grid(configs: list[Any], out: Path, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run each config not yet in ``out``; append each result as one JSON line as it finishes."""
    import dataclasses

    from .tasks import get_task

    out.parent.mkdir(parents=True, exist_ok=True)
    results = []
    for config in configs:
        resolved = config.resolved(get_task(config.task))
        key = run_key(dataclasses.asdict(resolved))
        run_id = hashlib.sha1(key.encode()).hexdigest()[:16]
        checkpoint = out.with_name(out.name + ".ckpt") / f"{run_id}.pt"
        lock = checkpoint.with_suffix(".lock")
        if not acquire(lock):
            log(f"skip (running in process {holder(lock)}): {config.task} {config.method} seed {config.seed}")
            continue
        try:
            if key in finished_runs(out):  # re-read under the lock: another grid may have finished it
                log(f"skip (done): {config.task} {config.method} seed {config.seed}")
                continue
            results.append(_train_and_append(dataclasses.replace(resolved, checkpoint=str(checkpoint)), out, run_id, log))
        finally:
            lock.unlink(missing_ok=True)
    return results


def acquire(lock: Path) -> bool:
    """Create ``lock`` holding this process id; False while a live process holds it. A lock left by a
    process that is gone (killed, machine restarted) is taken over."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            with open(lock, "x") as f:
                f.write(str(os.getpid()))
            return True
        except FileExistsError:
            pid = holder(lock)
            if pid and pid != os.getpid() and _alive(pid):
                return False
            lock.unlink(missing_ok=True)
    return False


def holder(lock: Path) -> int:
    """The process id written in ``lock``; 0 when it is gone or unreadable."""
    try:
        return int(lock.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    return True


def _train_and_append(config: Any, out: Path, run_id: str, log: Callable[[str], None]) -> dict[str, Any]:
    from .train import train

    checkpoint = Path(config.checkpoint)
    log(f"run: {config.task} {config.method} seed {config.seed}")
    epochs_file = out.with_name(out.stem + ".epochs.jsonl")
    result = train(config, on_epoch=epoch_writer(epochs_file, {"run": run_id, "task": config.task,
                                                              "method": config.method, "seed": config.seed}))
    result["estimator_settings"] = config.estimator_settings
    result["command"] = " ".join(["blackprop", *sys.argv[1:]]) if sys.argv and "blackprop" in sys.argv[0] else None
    with open(out, "a+") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(f.tell() - 1)
            if f.read(1) != "\n":  # a line cut by kill -9: end it so this result is a line of its own
                f.write("\n")
        f.write(json.dumps(result) + "\n")
        f.flush()
        os.fsync(f.fileno())
    checkpoint.unlink(missing_ok=True)
    log(f"done: {config.task} {config.method} seed {config.seed}: test accuracy {result['test_accuracy']:.4f} "
        f"({result['seconds']:.0f}s)")
    return result


def epoch_writer(path: Path, ident: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """A callback appending each epoch's metrics, tagged with ``ident``, as one JSON line to ``path``."""

    def write(row: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(json.dumps({**ident, **row}) + "\n")

    return write


def _bench(args: argparse.Namespace) -> int:
    from .cli import run_config_from
    from .tasks import MNIST_R

    tasks = [t for name in _split(args.tasks) for t in (MNIST_R if name == "mnist-r" else [name])]
    configs = [
        run_config_from(args, task, method, int(seed))
        for seed in _split(args.seeds) for task in tasks for method in _split(args.methods)
    ]
    for config in configs:  # reject a bad grid before spending hours on its first half
        from .tasks import get_task

        config.resolved(get_task(config.task)).validate()
    run_grid(configs, Path(args.out))
    return 0


def _report(args: argparse.Namespace) -> int:
    from .report import write_report

    write_report([Path(p) for p in args.results], Path(args.out), Path(args.plots) if args.plots else None,
                 notes=[Path(p) for p in args.notes])
    print(f"wrote {args.out}")
    return 0
