"""Cost of the fold layer (``bp.ExactFold`` on the sum-n Fold) per batch of 16, against n.

    python benchmarks/fold_speed.py [--sizes 16,64,256,1024] [--min-mass 0,1e-12] [--confidence 0.1,0.9]
                                    [--network] [--json out.jsonl]

For each n, each pruning threshold and each network confidence c (every digit distribution puts c
on a random "true" digit and spreads 1-c evenly; c=0.1 is an untrained network, c=0.9 a trained
one), one batch of 16 sums goes forward and backward through ``BlackBox(sum_n, ExactFold(min_mass))``
(the transition table warm, as after the first batches of training). Printed per row: seconds per
batch (best of ``--repeats``), seconds per epoch of 6,000 sums (375 batches) for the layer alone,
the largest number of live states, the largest truncated mass, and, with ``--network``, one LeNet
training step (forward, backward, Adam) on the batch's 16 x n images, the other part of an epoch.
One CPU thread; times are CPU seconds of this process (``time.process_time``), so other jobs on a
shared machine inflate them less than wall-clock times.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import blackprop as bp
from blackprop.models import LeNet
from blackprop.tasks.sum_scale import scale_task

BATCH, EPOCH_BATCHES = 16, 375


def beliefs(n: int, confidence: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    truth = torch.randint(0, 10, (BATCH, n), generator=generator)
    probs = torch.full((BATCH, n, 10), (1 - confidence) / 9)
    probs.scatter_(2, truth.unsqueeze(2), confidence)
    return probs


def layer_seconds(n: int, min_mass: float, confidence: float, repeats: int,
                  max_states: int | None = None) -> dict[str, float]:
    fold = scale_task(n).make_program()
    layer = bp.BlackBox(fold, bp.ExactFold(min_mass=min_mass, max_states=max_states))
    probs = beliefs(n, confidence, seed=n).requires_grad_(True)
    target = probs.argmax(2).sum(1).tolist()
    layer.loss(*probs.unbind(1), target=target).backward()  # warms the transition table
    best = float("inf")
    for _ in range(repeats):
        probs.grad = None
        began = time.process_time()
        layer.loss(*probs.unbind(1), target=target).backward()
        best = min(best, time.process_time() - began)
    return {"layer_s": best, "max_live_states": fold.trace.max_live_states, "max_truncated": fold.trace.max_truncated,
            "step_calls": fold.stats.calls}


def network_seconds(n: int, repeats: int) -> float:
    net = LeNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    images = torch.randn(BATCH * n, 1, 28, 28)
    best = float("inf")
    for _ in range(repeats):
        began = time.process_time()
        optimizer.zero_grad()
        net(images).log().mean().backward()
        optimizer.step()
        best = min(best, time.process_time() - began)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,64,256,1024")
    parser.add_argument("--min-mass", default="0,1e-12")
    parser.add_argument("--confidence", default="0.1,0.9")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-states", type=int, default=None, help="ExactFold(max_states=...) on every row")
    parser.add_argument("--max-exact", type=int, default=256, help="largest n run with min_mass=0 (memory)")
    parser.add_argument("--network", action="store_true", help="also time one LeNet step on the 16 x n images")
    parser.add_argument("--json", help="append one JSON line per row to this file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        net_s = network_seconds(n, args.repeats) if args.network else None
        for min_mass in [float(s) for s in args.min_mass.split(",")]:
            if min_mass == 0.0 and n > args.max_exact:
                continue
            for confidence in [float(s) for s in args.confidence.split(",")]:
                row = {"n": n, "min_mass": min_mass, "max_states": args.max_states, "confidence": confidence,
                       **layer_seconds(n, min_mass, confidence, args.repeats, args.max_states)}
                row["layer_s_per_epoch"] = row["layer_s"] * EPOCH_BATCHES
                if net_s is not None:
                    row["network_s"] = net_s
                    row["network_s_per_epoch"] = net_s * EPOCH_BATCHES
                rows.append(row)
                print(f"n={n:5d} min_mass={min_mass:g} max_states={args.max_states} c={confidence:.1f}: layer {row['layer_s'] * 1000:8.1f} ms/batch "
                      f"({row['layer_s_per_epoch']:7.1f} s/epoch), live states <= {row['max_live_states']:5d}, "
                      f"truncated <= {row['max_truncated']:.1e}"
                      + (f"; LeNet step {net_s * 1000:7.1f} ms ({net_s * EPOCH_BATCHES:7.1f} s/epoch)" if net_s else ""),
                      flush=True)
    if args.json:
        with open(args.json, "a") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
