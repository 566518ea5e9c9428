"""Command line: ``blackprop train | bench | report | evaluate | list | explain``.

    blackprop train sum2 --method ised --epochs 3 --seed 0 --json out.json
    blackprop bench experiments/ised_default --workers 2       # run / resume a study's spec
    blackprop bench --tasks sum2,sum3 --methods ised --seeds 0,1 --out grid.jsonl
    blackprop report experiments/mnist_r                  # experiments/mnist_r/report.md and plots/
    blackprop report out.json                             # markdown on stdout
    blackprop evaluate experiments/scale/weights/<run id>.pt --marginal 10000   # a saved network again
    blackprop list

Estimator settings use one grammar everywhere: ``--set key=value`` (repeatable), parsed by
``parse_settings``; spec files give the same settings as typed TOML values.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .run.config import RunConfig

__all__ = ["build_parser", "main", "parse_settings"]

LLM_VARIANTS = {"scene": "scene-llm", "leaf-dt": "leaf-llm", "leaf": "leaf-llm"}


def parse_settings(method: str, pairs: list[str]) -> dict[str, Any]:
    """``--set`` arguments -> ``method``'s estimator settings, each parsed to its declared field type.

    The one settings grammar (``blackprop.settings``): ``dedup=false`` is ``False``, ``exploration=0.1``
    a float; an unknown setting, a repeated key or a wrong type is a ValueError naming the field.

    >>> parse_settings("ised", ["dedup=False", "exploration=0.1", "normalize=l2"])
    {'dedup': False, 'exploration': 0.1, 'normalize': 'l2'}
    """
    from .estimators import ESTIMATORS, parse_estimator_settings
    from .settings import did_you_mean

    if method not in ESTIMATORS:
        raise ValueError(f"--method: unknown method {method!r}{did_you_mean(method, ESTIMATORS)}; valid: "
                         f"{', '.join(sorted(ESTIMATORS))}")
    try:
        return parse_estimator_settings(method, pairs)
    except (KeyError, TypeError, ValueError) as error:
        message = error.args[0] if error.args else str(error)
        raise ValueError(f"--set: {message}") from None


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, help="training epochs (task default if omitted)")
    parser.add_argument("--lr", type=float, help="Adam learning rate")
    parser.add_argument("--lr-schedule", choices=("constant", "cosine", "low-start-cosine"),
                        help="constant; cosine decay per epoch towards 0; low-start-cosine: epoch 1 at lr/10, then "
                             "the cosine (task default if omitted)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--network", help="perception network, where the task offers several (sum64/256/1024: "
                                           "lenet, lenet-wide, lenet-wide-bn, mnistnet)")
    parser.add_argument("--num-samples", "-k", type=int, help="samples per example for sampling estimators")
    parser.add_argument("--train-size", type=int, help="number of training examples")
    parser.add_argument("--valid-size", type=int, help="number of validation examples (accuracy each epoch)")
    parser.add_argument("--test-size", type=int, help="number of test examples (evaluated once, at the end)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="estimator setting, e.g. --set normalize=l2 --set dedup=false")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    parser.add_argument("--llm", action="store_true",
                        help="use the language-model program of tasks that have one (scene, leaf-dt); the endpoint "
                             "comes from OPENAI_BASE_URL / OPENAI_API_KEY / BLACKPROP_LLM_MODEL")
    parser.add_argument("--executor", metavar="SPEC",
                        help="where program calls run: serial (default), process, process:N, "
                             "dask:tcp://HOST:PORT or dask-local:N")
    parser.add_argument("--search", type=int, default=1, metavar="N",
                        help="also report search_accuracy: where the argmax symbols fail, the most probable of the "
                             "N most probable tuples the program accepts (default 1: argmax only)")
    parser.add_argument("--marginal", type=int, default=0, metavar="N",
                        help="also report marginal_accuracy (validation and test, after the last epoch): each "
                             "example's most probable output, p(y) summed over every tuple when there are at most "
                             "N, else estimated from N draws (default 0: off)")
    parser.add_argument("--select", choices=("last", "best-valid"), default="last",
                        help="the weights the test set scores: the last epoch's (default) or those of the epoch with "
                             "the highest validation accuracy (kept in memory and in the checkpoint)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blackprop", description="Learn neural programs through black-box programs.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train one task with one method")
    train.add_argument("task", help="a registered task name, or MODULE:NAME (imported, then looked up)")
    train.add_argument("--method", default="ised")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--json", metavar="OUT", help="write the result as JSON to OUT")
    train.add_argument("--checkpoint", metavar="PATH", help="save after each epoch; resume from it if present")
    train.add_argument("--save-weights", metavar="PATH",
                       help="save the network that scored the test set (blackprop.run.load_model reads it)")
    train.add_argument("--metrics", metavar="PATH", help="append each epoch's metrics as a JSON line to PATH")
    _add_run_options(train)

    bench = commands.add_parser("bench", help="run (and resume) a study's spec, or a task x method x seed grid")
    bench.add_argument("study", nargs="?", help="a study folder holding spec.toml (experiments/<study>)")
    bench.add_argument("--grids", metavar="NAMES", help="with a study: run only these of its grids (comma-separated names)")
    bench.add_argument("--workers", type=int, default=1, help="runs trained at once in local processes")
    bench.add_argument("--cluster", metavar="ADDRESS", help="dispatch runs to a dask scheduler (tcp://HOST:PORT)")
    bench.add_argument("--dry-run", action="store_true", help="list the runs that would train (and why a done one "
                       "would run again); train nothing")
    bench.add_argument("--tasks", help="without a study: comma-separated tasks ('mnist-r' for all 11)")
    bench.add_argument("--methods", default="ised", help="without a study: comma-separated methods")
    bench.add_argument("--seeds", default="0,1,2", help="without a study: comma-separated seeds")
    bench.add_argument("--out", help="results file (JSON lines, appended); required without a study")
    _add_run_options(bench)

    report = commands.add_parser("report", help="markdown tables and PNG plots of a study or results files")
    report.add_argument("targets", nargs="+", help="a study folder, or results files (JSON lines or train --json)")
    report.add_argument("--out", help="markdown file (default: <study>/report.md; for files: stdout)")
    report.add_argument("--no-plots", action="store_true", help="tables only")

    commands.add_parser("list", help="list tasks and methods")
    rescore = commands.add_parser("evaluate", help="score a finished run's saved network again (--save-weights, a "
                                                   "study's weights/): another split, size or decoding")
    rescore.add_argument("weights", help="a file written by --save-weights or blackprop bench (weights/<run id>.pt)")
    rescore.add_argument("--split", choices=("valid", "test"), default="valid")
    rescore.add_argument("--size", type=int, help="examples of the split (task default if omitted)")
    rescore.add_argument("--search", type=int, default=1, metavar="N", help="as in train")
    rescore.add_argument("--marginal", type=int, default=0, metavar="N", help="as in train")
    rescore.add_argument("--device", default="auto")

    from .explain.cli import add_explain_parser

    add_explain_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    handlers = {"train": _train, "bench": _bench, "report": _report, "list": _list, "evaluate": _evaluate}
    handler = handlers.get(args.command) or args.handler
    try:
        return handler(args)
    except FileNotFoundError as error:
        print(f"blackprop {args.command}: {error.filename or error}: no such file or folder", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:  # bench: finished runs are kept, the interrupted one has its checkpoint
        detail = str(error) or "interrupted; the same command resumes (finished runs are kept)"
        print(f"blackprop {args.command}: {detail}", file=sys.stderr)
        return 130


def llm_variant(task: str) -> str:
    """The language-model version of a task (``scene`` -> ``scene-llm``); raises for tasks without one."""
    if task in LLM_VARIANTS.values():
        return task
    if task not in LLM_VARIANTS:
        raise ValueError(f"--llm: task {task!r} has no language-model program; tasks with one: "
                         f"{', '.join(sorted(LLM_VARIANTS))}")
    return LLM_VARIANTS[task]


def resolve_task(spec: str) -> str:
    """Check that ``spec`` names a task (a registered name, ``sum<n>`` or ``MODULE:NAME``, imported by
    ``blackprop.tasks.get_task`` with the current folder on the path); a ValueError says why not."""
    from .tasks import get_task

    if ":" in spec and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # the console script does not put the current folder on the path
    get_task(spec)
    return spec


def run_config_from(args: argparse.Namespace, task: str, method: str, seed: int) -> Any:
    from .run.config import RunConfig

    if getattr(args, "llm", False):
        task = llm_variant(task)
    settings = parse_settings(method, args.set)
    if args.num_samples is not None and "num_samples" in settings:
        raise ValueError(f"-k/--num-samples {args.num_samples} and --set num_samples={settings['num_samples']} "
                         "both give k; give one of them")
    return RunConfig(
        task=task, method=method, seed=seed, epochs=args.epochs, lr=args.lr, lr_schedule=args.lr_schedule,
        batch_size=args.batch_size, num_samples=args.num_samples, train_size=args.train_size,
        valid_size=args.valid_size, test_size=args.test_size, estimator_settings=settings,
        threads=args.threads, device=args.device, checkpoint=getattr(args, "checkpoint", None),
        weights=getattr(args, "save_weights", None),
        progress=not args.quiet, executor=args.executor, search=args.search, marginal=args.marginal,
        select=args.select, network=args.network,
    )


def _command(args: argparse.Namespace) -> str:
    """The command line as typed (recorded in rows, so a row says how to reproduce it)."""
    return " ".join(["blackprop", *map(shlex.quote, args.argv)])


def _train(args: argparse.Namespace) -> int:
    from .data.mnist import DataUnavailable
    from .run.files import prepare_destination, save_result
    from .run.grid import epoch_writer
    from .run.interrupt import TrainingInterrupted
    from .run.train import train

    try:
        task = resolve_task(args.task)
        for flag, path in (("--json", args.json), ("--metrics", args.metrics), ("--checkpoint", args.checkpoint),
                           ("--save-weights", args.save_weights)):
            if path:
                prepare_destination(flag, Path(path))
        config = run_config_from(args, task, args.method, args.seed)
    except ValueError as error:
        print(f"blackprop train: {error}", file=sys.stderr)
        return 2
    write_epoch = epoch_writer(Path(args.metrics), {"task": task, "method": args.method, "seed": args.seed}) \
        if args.metrics else None

    def on_epoch(row: dict[str, Any]) -> None:
        nonlocal write_epoch
        if write_epoch:
            try:
                write_epoch(row)
            except OSError as error:  # the run goes on; its epochs go to a temporary file, named once
                handle, name = tempfile.mkstemp(prefix="blackprop-metrics-", suffix=".jsonl")
                os.close(handle)
                print(f"blackprop train: cannot append to --metrics {args.metrics} ({error.strerror or error}); "
                      f"epochs go to {name} from now on", file=sys.stderr)
                write_epoch = epoch_writer(Path(name), {"task": task, "method": args.method, "seed": args.seed})
                write_epoch(row)
        if not args.quiet:
            extra = f" symbol accuracy {row['valid_symbol_accuracy']:.4f}" if "valid_symbol_accuracy" in row else ""
            print(f"epoch {row['epoch']}: loss {row['train_loss']:.4f} valid accuracy {row['valid_accuracy']:.4f}"
                  f"{extra} ({row['seconds']:.1f}s, {row['program_calls']} program calls)", flush=True)

    try:
        result = train(config, on_epoch=on_epoch)
    except (ValueError, TypeError, OSError, DataUnavailable, FloatingPointError) as error:
        print(f"blackprop train: {error}", file=sys.stderr)
        return 2
    except TrainingInterrupted as stopped:
        print(f"blackprop train: {stopped}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once
        kept = f"; the last checkpoint, {args.checkpoint}, resumes it" if args.checkpoint and Path(
            args.checkpoint).exists() else "; nothing was saved (pass --checkpoint PATH to keep the finished epochs)"
        print(f"blackprop train: interrupted{kept}", file=sys.stderr)
        return 130
    result["command"] = _command(args)
    print(f"{result['task']} {result['method']} seed {result['seed']}: valid accuracy {result['valid_accuracy']:.4f}, "
          f"test accuracy {result['test_accuracy']:.4f} after {result['epochs']} epochs ({result['seconds']:.1f}s "
          f"training, {result['program_calls']} program calls)")
    if args.json:
        save_result(result, Path(args.json), Path(args.checkpoint) if args.checkpoint else None)
    return 0


def _chosen_grids(study: Any, names: str | None) -> list[tuple[str | None, RunConfig]]:
    """The study's runs, or (``--grids a,b``) only those of the named grids; an unknown name is an error."""
    if names is None:
        return list(study.configs())
    known = [grid.name for grid in study.grids]
    chosen = _split(names)
    for name in chosen:
        if name not in known:
            hint = difflib.get_close_matches(name, known, n=1)
            raise ValueError(f"--grids: {study.folder / 'spec.toml'} has no grid {name!r}"
                             f"{f' (did you mean {hint[0]!r}?)' if hint else ''}; its grids: {', '.join(known)}")
    return [(grid, config) for grid, config in study.configs() if grid in chosen]


def _bench(args: argparse.Namespace) -> int:
    from .run.grid import run_grid
    from .run.spec import load_study
    from .tasks import MNIST_R

    if args.study:
        try:
            study = load_study(Path(args.study))
            if not study.grids:
                raise ValueError(f"{study.folder / 'spec.toml'}: no [[grid]] section, so nothing to run; add one "
                                 "(see blackprop.run.spec)")
            if study.archived:
                raise ValueError(f"{study.folder} is archived, so nothing trains: {study.archived} "
                                 f"(`blackprop report {study.folder}` still builds its report)")
            run_grid(_chosen_grids(study, args.grids), study.results, record={"spec": (study.folder / "spec.toml").as_posix()},
                     workers=args.workers, cluster=args.cluster, dry_run=args.dry_run)
        except (ValueError, RuntimeError) as error:
            print(f"blackprop bench: {error}", file=sys.stderr)
            return 2
        if not args.dry_run:
            print(f"rows in {study.results}; `blackprop report {args.study}` writes its report")
        return 0
    if not (args.tasks and args.out):
        print("blackprop bench: give a study folder (blackprop bench experiments/ised_default), or --tasks and --out "
              "for a grid outside a study", file=sys.stderr)
        return 2
    tasks = [t for name in _split(args.tasks) for t in (MNIST_R if name == "mnist-r" else [name])]
    try:
        jobs: list[tuple[str | None, Any]] = [(None, run_config_from(args, task, method, int(seed)))
                for seed in _split(args.seeds) for task in tasks for method in _split(args.methods)]
        run_grid(jobs, Path(args.out), record={"command": _command(args)}, workers=args.workers, cluster=args.cluster,
                 dry_run=args.dry_run)
    except (ValueError, RuntimeError) as error:
        print(f"blackprop bench: {error}", file=sys.stderr)
        return 2
    return 0


def _report(args: argparse.Namespace) -> int:
    from .run.report import write_files_report, write_study_report
    from .run.spec import load_study

    first = Path(args.targets[0])
    if len(args.targets) == 1 and first.is_dir():
        try:
            out = write_study_report(load_study(first, check_runs=False), Path(args.out) if args.out else None, not args.no_plots)
        except ValueError as error:
            print(f"blackprop report: {error}", file=sys.stderr)
            return 2
        print(f"wrote {out}")
        return 0
    missing = [t for t in args.targets if not Path(t).is_file()]
    if missing:
        print(f"blackprop report: {missing[0]}: no such file (give a study folder or results files)", file=sys.stderr)
        return 2
    try:
        if args.out is None:
            with tempfile.TemporaryDirectory() as folder:
                out = write_files_report([Path(t) for t in args.targets], Path(folder) / "report.md", None)
                print(out.read_text(), end="")
            return 0
        out = Path(args.out)
        write_files_report([Path(t) for t in args.targets], out, None if args.no_plots else out.parent / "plots")
    except ValueError as error:
        print(f"blackprop report: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .run.rescore import rescore

    try:
        metrics = rescore(args.weights, args.split, args.size, args.search, args.marginal, args.device)
    except ValueError as error:
        print(f"blackprop evaluate: {error}", file=sys.stderr)
        return 2
    print(json.dumps(metrics, indent=1))
    return 0


def _list(args: argparse.Namespace) -> int:
    from .estimators import ESTIMATORS
    from .tasks import get_task, task_names

    print("tasks:")
    for name in task_names():
        task = get_task(name)
        print(f"  {name:<12} {task.family:<8} {task.description}")
    print("  sum<n>       sum-n    sum of n digits, any n (k = 10n, 40 epochs, low-start cosine)")
    print("methods:")
    for name, cls in sorted(ESTIMATORS.items()):
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"  {name:<12} {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
