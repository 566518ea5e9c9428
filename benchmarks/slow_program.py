"""Slow programs scale past this machine's cores: one training epoch of sum4 whose program sleeps
5 ms per call, with program calls serial, in process pools of 1, 2 and 4 workers, and on a local
dask cluster (worker processes talking TCP over loopback).

    PYTHONPATH=src python benchmarks/slow_program.py --train-size 200 --num-samples 10 \\
        --out experiments/slow_program/table.md

Each configuration trains a fresh network with a fresh Program (empty memo cache, so every
distinct sampled tuple is really called) on the same 200 examples with the same seed; the epoch's
wall time comes from ``train()``'s history (training loop only, evaluation excluded). Since the
sampled tuples do not depend on where calls run, every configuration makes the same calls and
reaches the same loss (checked and printed). A sleeping program needs no CPU, so workers beyond
the core count still help: that is the point of a cluster for slow (I/O- or service-bound)
programs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

from blackprop import Discrete, Program
from blackprop.run import RunConfig, train
from blackprop.tasks import get_task, register_task

SLEEP_S = 0.005
DIGIT = Discrete(range(10))


def slow_sum4(a: int, b: int, c: int, d: int) -> int:
    """sum4's program, made slow: 5 ms per call (a stand-in for a solver, a service, an LLM call)."""
    time.sleep(SLEEP_S)
    return a + b + c + d


def one_epoch(executor: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Train sum4 for one epoch with program calls on ``executor``; the row of the results table."""
    created: list[Program] = []

    def make_program() -> Program:
        program = Program(slow_sum4, inputs=(DIGIT,) * 4, output=Discrete(range(37)), executor=executor,
                          name="slow_sum4")
        created.append(program)
        return program

    register_task(dataclasses.replace(get_task("sum4"), name="sum4-slow", make_program=make_program))
    config = RunConfig(task="sum4-slow", epochs=1, seed=0, train_size=args.train_size, test_size=args.test_size,
                       num_samples=args.num_samples, threads=1, progress=False, device="cpu")
    result = train(config)
    stats = created[0].stats
    for program in created:
        program.close()
    epoch = result["history"][0]
    return {"seconds": epoch["seconds"], "train_loss": epoch["train_loss"], "calls": stats.calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-size", type=int, default=200)
    parser.add_argument("--test-size", type=int, default=20)
    parser.add_argument("--num-samples", type=int, default=10, help="ISED samples per example")
    parser.add_argument("--pools", default="1,2,4", help="process-pool sizes to time")
    parser.add_argument("--dask", default="2,4", help="dask worker counts to time ('' to skip)")
    parser.add_argument("--out", help="markdown file for the results table")
    args = parser.parse_args()
    torch.set_num_threads(1)

    configurations: list[tuple[str, int, Any]] = [("serial (in-process)", 1, None)]
    configurations += [(f"process pool, {n} worker(s)", n, n) for n in map(int, args.pools.split(",") if args.pools else [])]
    rows = []
    for label, workers, executor in configurations:
        rows.append((label, workers, one_epoch(executor, args)))
        print(f"{label}: {rows[-1][2]}", flush=True)
    for workers in map(int, args.dask.split(",") if args.dask else []):
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.submit(slow_sum4, 0, 0, 0, 0).result()  # workers up and warm before timing
            rows.append((f"dask LocalCluster on 127.0.0.1, {workers} worker process(es)", workers,
                         one_epoch(client, args)))
        print(f"{rows[-1][0]}: {rows[-1][2]}", flush=True)

    base = rows[0][2]["seconds"]
    reference = rows[0][2]
    same = all(r["calls"] == reference["calls"] and r["train_loss"] == reference["train_loss"] for _, _, r in rows)
    command = "PYTHONPATH=src python benchmarks/slow_program.py " + " ".join(sys.argv[1:])
    lines = [
        "# Slow program (5 ms per call): one sum4 epoch with program calls on several executors",
        "",
        f"Command: `{command}`",
        "",
        f"Settings: sum4, {args.train_size} training examples, batch 16, ISED k={args.num_samples}, seed 0, "
        f"torch threads 1, fresh Program (empty memo) per row; machine: {platform.machine()}, "
        f"{os.cpu_count()} CPU cores (shared with other jobs while this ran). Program calls include the "
        f"{args.test_size} test examples' evaluation, which is not in the epoch time.",
        "",
        "| program calls run on | workers | epoch wall time (s) | program calls (run) | speed-up vs serial |",
        "|---|---|---|---|---|",
    ]
    for label, workers, row in rows:
        lines.append(f"| {label} | {workers} | {row['seconds']:.2f} | {row['calls']} | {base / row['seconds']:.2f}x |")
    lines += [
        "",
        f"Same calls and the same training loss in every row: {same} (results are indexed in the parent, in order).",
        f"The sleep alone costs {SLEEP_S * 1000:.0f} ms x calls; serial time minus that is the network's share.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
