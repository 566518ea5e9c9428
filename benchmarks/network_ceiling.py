"""Per-digit ceiling of a perception network, on validation only (how sum64's network was chosen).

    PYTHONPATH=src python benchmarks/network_ceiling.py --networks lenet,lenet-wide [--epochs 8]

Supervised training as a proxy for the per-digit accuracy a sum-n fold can reach with the network:
Adam 1e-3 with a per-epoch cosine, batch 64, on the 54,000 MNIST training images the sum64/256/1024
training sums use, scored after each epoch on the 6,000 held-out images their validation sums use
(never the test set). Also times one training step on 1,024 images. One line per network is appended
to ``benchmarks/results/network_ceiling.jsonl`` (commit, torch version, threads).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import time
from pathlib import Path

import torch

from blackprop.data.mnist import mnist_pool, mnist_source
from blackprop.models import NETWORKS
from blackprop.tasks.sum_scale import holdout_mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", default="lenet,lenet-wide")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/network_ceiling.jsonl")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images, labels = mnist_pool("train")
    held = torch.from_numpy(holdout_mask())
    valid_x, valid_y, train_x, train_y = images[held], labels[held], images[~held], labels[~held]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    for name in args.networks.split(","):
        torch.manual_seed(0)
        net = NETWORKS[name]()
        optimizer = torch.optim.Adam(net.parameters(), 1e-3)
        step = _step_ms(NETWORKS[name](), train_x[:1024])
        order = torch.Generator().manual_seed(0)
        accuracy, start = [], time.process_time()
        for epoch in range(args.epochs):
            for group in optimizer.param_groups:
                group["lr"] = 1e-3 * (1 + math.cos(math.pi * epoch / args.epochs)) / 2
            net.train()
            perm = torch.randperm(len(train_y), generator=order)
            for i in range(0, len(perm), 64):
                idx = perm[i:i + 64]
                probs = net(train_x[idx])
                loss = -probs.gather(1, train_y[idx].long()[:, None]).clamp_min(1e-12).log().mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            net.eval()
            with torch.no_grad():
                accuracy.append(round(100 * float((net(valid_x).argmax(1) == valid_y).float().mean()), 2))
        row = {"network": name, "valid_accuracy_by_epoch": accuracy, "epochs": args.epochs, "step_ms_1024": step,
               "cpu_seconds": round(time.process_time() - start, 1), "commit": commit, "torch": torch.__version__,
               "threads": args.threads, "data_source": mnist_source()}
        print(json.dumps(row), flush=True)
        with Path(args.out).open("a") as out:
            out.write(json.dumps(row) + "\n")


def _step_ms(net: torch.nn.Module, batch: torch.Tensor) -> float:
    """Median ms of a forward, backward and Adam step on ``batch``."""
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        loss = -net(batch)[:, 0].clamp_min(1e-12).log().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return round(1000 * sorted(times)[2], 1)


if __name__ == "__main__":
    main()
