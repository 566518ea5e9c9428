"""Layer cost of every study method on sum-n (the task's Fold program), one batch of 16.

    python benchmarks/scale_methods.py [--sizes 64,256] [--confidence 0.9]

Methods, at the study's budget of about 10n program evaluations per example for the sampling ones:
``fold`` (ExactFold, min_mass 1e-12), ISED with importance weights and one-site exploration
(k = 10n, m = 0.5: m*k = 5n), REINFORCE (k = 10n), IndeCateR+ (N = 1: 10n evaluations). Printed:
CPU seconds of forward+backward per batch (best of 3, the program warm) and program evaluations
(``stats.queries``) per example and calls on the first batch (for the fold, calls of ``add``). One CPU thread; the network is not included (see fold_speed.py).
"""

from __future__ import annotations

import argparse
import time

import torch

import blackprop as bp
from blackprop.tasks.sum_scale import scale_task

BATCH = 16


def methods(n: int) -> dict[str, bp.Estimator]:
    return {
        "fold": bp.ExactFold(min_mass=1e-12),
        "ised-importance": bp.ISED(num_samples=10 * n, weights="importance", site_exploration=0.5),
        "reinforce": bp.REINFORCE(num_samples=10 * n),
        "indecater+": bp.IndeCateRPlus(num_samples=1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,256")
    parser.add_argument("--confidence", type=float, default=0.9)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for n in [int(s) for s in args.sizes.split(",")]:
        generator = torch.Generator().manual_seed(n)
        truth = torch.randint(0, 10, (BATCH, n), generator=generator)
        probs = torch.full((BATCH, n, 10), (1 - args.confidence) / 9).scatter_(2, truth.unsqueeze(2), args.confidence)
        probs.requires_grad_(True)
        target = truth.sum(1).tolist()
        for name, estimator in methods(n).items():
            program = scale_task(n).make_program()
            layer = bp.BlackBox(program, estimator, seed=0)
            layer.loss(*probs.unbind(1), target=target).backward()
            queries, calls = program.stats.queries, program.stats.calls
            best = float("inf")
            for _ in range(3):
                began = time.process_time()
                layer.loss(*probs.unbind(1), target=target).backward()
                best = min(best, time.process_time() - began)
            print(f"n={n:5d} {name:16s} {best * 1000:9.1f} ms/batch, {queries / BATCH:8.0f} program evaluations/example, "
                  f"{calls:8d} calls of the step (fold) or program on the first batch", flush=True)


if __name__ == "__main__":
    main()
