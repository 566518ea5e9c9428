"""ISED layer cost against one MNISTNet training step (sum2, batch 16, k=100, CPU).

    python benchmarks/layer_speed.py [--threads N] [--repeats R]

Prints the median time of (a) the ISED layer's forward+backward on batch 16 with k=100 (the
program warm in its memo cache), (b) one MNISTNet training step (forward, backward, Adam) on
the same 32 images, their ratio, and the program calls per batch with the cache warm.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import blackprop as bp
from blackprop.models import MNISTNet


def median_ms(fn, repeats: int) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    digit = bp.Discrete(range(10))
    program = bp.Program(lambda a, b: a + b, inputs=(digit, digit), output=bp.Discrete(range(19)))
    layer = bp.BlackBox(program, bp.ISED(num_samples=100), seed=0)
    logits = torch.randn(16, 2, 10, requires_grad=True)
    target = torch.randint(0, 19, (16,))

    def layer_step() -> None:
        probs = torch.softmax(logits, dim=-1)
        layer.loss(probs[:, 0], probs[:, 1], target=target).backward()

    network = MNISTNet()
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    images = torch.randn(32, 1, 28, 28)

    def network_step() -> None:
        optimizer.zero_grad()
        network(images).log().mean().backward()
        optimizer.step()

    layer_ms = median_ms(layer_step, args.repeats)
    network_ms = median_ms(network_step, max(20, args.repeats // 4))
    before = program.stats.calls
    for _ in range(10):
        layer_step()
    calls_per_batch = (program.stats.calls - before) / 10
    print(f"threads: {args.threads}")
    print(f"ISED layer forward+backward (sum2, batch 16, k=100): {layer_ms:.2f} ms")
    print(f"MNISTNet training step (32 images):                 {network_ms:.2f} ms")
    print(f"ratio layer / network step:                         {layer_ms / network_ms:.3f}")
    print(f"program calls per batch, cache warm:                {calls_per_batch:.1f} "
          f"(cache holds {program.cache_size()} tuples; {16 * 100} samples per batch)")


if __name__ == "__main__":
    main()
