"""Command line: ``blackprop train | bench | report | list | explain``.

    blackprop train sum2 --method ised --epochs 1 --seed 0 --json out.json
    blackprop list
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["main"]


def _settings(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs with values parsed as JSON where possible (``dedup=true``, ``normalize=l2``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"--set expects key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, help="training epochs (task default if omitted)")
    parser.add_argument("--lr", type=float, help="Adam learning rate")
    parser.add_argument("--lr-schedule", choices=("constant", "cosine"),
                        help="constant, or cosine decay per epoch towards 0 (task default if omitted)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--num-samples", "-k", type=int, help="samples per example for sampling estimators")
    parser.add_argument("--train-size", type=int, help="number of training examples")
    parser.add_argument("--test-size", type=int, help="number of test examples")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="estimator setting, e.g. --set normalize=l2 --set dedup=true")
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
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blackprop", description="Learn neural programs through black-box programs.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train one task with one method")
    train.add_argument("task")
    train.add_argument("--method", default="ised")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--json", metavar="OUT", help="write the result as JSON to OUT")
    train.add_argument("--checkpoint", metavar="PATH", help="save after each epoch; resume from it if present")
    train.add_argument("--metrics", metavar="PATH", help="append each epoch's metrics as a JSON line to PATH")
    _add_run_options(train)

    commands.add_parser("list", help="list tasks and methods")

    from .bench import add_bench_parsers

    add_bench_parsers(commands, _add_run_options)
    from .explain.cli import add_explain_parser

    add_explain_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        return _list()
    if args.command == "train":
        return _train(args)
    return int(args.handler(args))


def _list() -> int:
    from .estimators import ESTIMATORS
    from .tasks import get_task, task_names

    print("tasks:")
    for name in task_names():
        task = get_task(name)
        print(f"  {name:<12} {task.family:<8} {task.description}")
    print("  sum<n>       sum-n    sum of n digits, any n (sample-efficiency settings)")
    print("methods:")
    for name, cls in sorted(ESTIMATORS.items()):
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"  {name:<12} {doc}")
    return 0


LLM_VARIANTS = {"scene": "scene-llm", "leaf-dt": "leaf-llm", "leaf": "leaf-llm"}


def llm_variant(task: str) -> str:
    """The language-model version of a task (``scene`` -> ``scene-llm``); raises for tasks without one."""
    if task in LLM_VARIANTS.values():
        return task
    if task not in LLM_VARIANTS:
        raise SystemExit(f"--llm: task {task!r} has no language-model program; tasks with one: "
                         f"{', '.join(sorted(LLM_VARIANTS))}")
    return LLM_VARIANTS[task]


def run_config_from(args: argparse.Namespace, task: str, method: str, seed: int) -> Any:
    from .train import RunConfig

    if getattr(args, "llm", False):
        task = llm_variant(task)
    return RunConfig(
        task=task, method=method, seed=seed, epochs=args.epochs, lr=args.lr, lr_schedule=args.lr_schedule,
        batch_size=args.batch_size,
        num_samples=args.num_samples, train_size=args.train_size, test_size=args.test_size,
        estimator_settings=_settings(args.set), threads=args.threads, device=args.device,
        checkpoint=getattr(args, "checkpoint", None), progress=not args.quiet, executor=args.executor,
        search=args.search,
    )


def _train(args: argparse.Namespace) -> int:
    from .train import train

    config = run_config_from(args, args.task, args.method, args.seed)
    if args.json and not _writable_target(args.json):
        print(f"blackprop train: --json {args.json}: cannot write there (missing folder or no permission); "
              "create the folder or pick another path", file=sys.stderr)
        return 2

    from pathlib import Path

    from .bench import epoch_writer

    write_epoch = epoch_writer(Path(args.metrics), {"task": args.task, "method": args.method, "seed": args.seed}) \
        if args.metrics else None

    def report(row: dict[str, Any]) -> None:
        if write_epoch:
            write_epoch(row)
        if not args.quiet:
            extra = f" symbol accuracy {row['symbol_accuracy']:.4f}" if "symbol_accuracy" in row else ""
            print(f"epoch {row['epoch']}: loss {row['train_loss']:.4f} test accuracy {row['test_accuracy']:.4f}"
                  f"{extra} ({row['seconds']:.1f}s, {row['program_calls']} program calls)", flush=True)

    from .data.mnist import DataUnavailable

    try:
        result = train(config, on_epoch=report)
    except (ValueError, TypeError, OSError, DataUnavailable, FloatingPointError) as error:
        print(f"blackprop train: {error}", file=sys.stderr)
        return 2
    print(f"{result['task']} {result['method']} seed {result['seed']}: test accuracy {result['test_accuracy']:.4f} "
          f"after {result['epochs']} epochs ({result['seconds']:.1f}s training, {result['program_calls']} program calls)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


def _writable_target(path: str) -> bool:
    import os

    folder = os.path.dirname(os.path.abspath(path))
    return os.path.isdir(folder) and os.access(folder, os.W_OK) and not os.path.isdir(path)


if __name__ == "__main__":
    sys.exit(main())
