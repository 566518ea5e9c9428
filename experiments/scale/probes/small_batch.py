"""Probe (issue 21, session 33): does a smaller batch of sums learn sum1024's digits in fewer images?

At CTSketch's batch of 16 sums, sum1024 takes 375 optimizer steps per epoch (16,384 images each) and
the exact fold's gradient reaches each image through one shared factor per sum and class (see
batchnorm_plateau.py). Fewer sums per step give more Adam steps for the same images. This trains the
exact fold (``min_mass=1e-12``) with ``lenet-wide-bn`` at a constant lr on the task's training sums,
in order of a seeded shuffle, and every EVERY steps prints one JSON line: steps, sums and images
seen, seconds, and the network's accuracy on the 6,000 held-out MNIST training images the validation
sums draw from (per-digit validation accuracy; never the test set).

    PYTHONPATH=src python experiments/scale/probes/small_batch.py sum1024 BATCH STEPS EVERY SEED LR [OUT]
"""

from __future__ import annotations

import json
import sys
import time

import torch

from blackprop.blackbox import BlackBox
from blackprop.data.mnist import mnist_pool, mnist_source
from blackprop.run.config import RunConfig, make_estimator
from blackprop.run.train import git_commit
from blackprop.tasks import get_task
from blackprop.tasks.sum_scale import holdout_mask


def main() -> None:
    task_name, batch, steps, every, seed, lr = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), \
        int(sys.argv[5]), float(sys.argv[6])
    out = sys.argv[7] if len(sys.argv) > 7 else None
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    task = get_task(task_name)
    data = task.data("train", task.defaults.train_size)
    model = task.model("lenet-wide-bn")
    config = RunConfig(task=task_name, method="fold", seed=seed, estimator_settings={"min_mass": 1e-12}).resolved(task)
    layer = BlackBox(task.make_program(), make_estimator(config), seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    images, labels = mnist_pool("valid")
    held = torch.from_numpy(holdout_mask())
    held_images, held_labels = images[held], labels[held]
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    commit = git_commit()
    began, step = time.process_time(), 0
    while step < steps:
        for rows in order.split(batch):
            model.train()
            loss = layer.loss(*model(data.images(rows)), target=data.label_values(rows))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step % every == 0 or step == steps:
                model.eval()
                with torch.no_grad():
                    read = torch.cat([model.network(chunk).argmax(-1) for chunk in held_images.split(2000)])
                row = {"probe": "small_batch", "task": task_name, "batch": batch, "lr": lr, "seed": seed,
                       "network": "lenet-wide-bn", "step": step, "sums": step * batch,
                       "images": step * batch * int(task_name.removeprefix("sum")),
                       "valid_digit_accuracy": round((read == held_labels).float().mean().item(), 4),
                       "loss": round(loss.item(), 3), "cpu_seconds": round(time.process_time() - began, 1),
                       "torch": torch.__version__, "threads": 1, "device": "cpu",
                       "commit": commit, "data_source": mnist_source(),
                       "command": "experiments/scale/probes/small_batch.py " + " ".join(sys.argv[1:7])}
                print(json.dumps(row), flush=True)
                if out:
                    with open(out, "a") as f:
                        f.write(json.dumps(row) + "\n")
            if step >= steps:
                break


if __name__ == "__main__":
    main()
