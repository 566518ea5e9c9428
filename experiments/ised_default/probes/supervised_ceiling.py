"""Issue 17 probe (session 34): how far can the MNIST-R network get on a task when it is told every digit?

    PYTHONPATH=src python experiments/ised_default/probes/supervised_ceiling.py TASK SEED [OUT.jsonl]

The task's network and recipe (``MNIST_R_RECIPE``: Adam 3e-4, a first epoch at a tenth, cosine, 20 epochs,
batch 16, the task's 5,000 training examples) trained with full supervision: the loss is the NLL of each
image's true digit, where the library's estimators see only the program's output. After every epoch the
validation split (2,000 examples, never the test set) is scored exactly as ``blackprop train`` scores it
(argmax digits through the program, ``blackprop.run.train.evaluate``). The last epoch's task accuracy is a
ceiling for what any estimator can reach on that task with this network, data and recipe: a goal above it
asks for more than the labels of the digits themselves give. One JSON line per epoch is printed and, with
OUT, appended there with the commit, torch version and threads.
"""
import json
import subprocess
import sys
import time

import torch

from blackprop.blackbox import BlackBox
from blackprop.run.config import RunConfig, epoch_lr, make_estimator
from blackprop.run.train import evaluate
from blackprop.tasks import get_task

torch.set_num_threads(1)
task_name, seed = sys.argv[1], int(sys.argv[2])
out = sys.argv[3] if len(sys.argv) > 3 else None
task = get_task(task_name)
config = RunConfig(task=task_name, method="ised", seed=seed).resolved(task)
torch.manual_seed(seed)
train_data = task.data("train", config.train_size)
valid_data = task.data("valid", config.valid_size, train_size=config.train_size)
model = task.model()
layer = BlackBox(task.make_program(), make_estimator(config), seed=seed)  # used only to score (predict)
optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
shuffle = torch.Generator().manual_seed(seed)
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
began = time.process_time()
for epoch in range(config.epochs):
    for group in optimizer.param_groups:
        group["lr"] = epoch_lr(config.lr, config.lr_schedule, epoch, config.epochs)
    model.train()
    for rows in torch.randperm(len(train_data), generator=shuffle).split(config.batch_size):
        probs = torch.stack(model(train_data.images(rows)), dim=1)  # [B, n, 10]
        truth = train_data.symbols[rows]
        loss = -probs.clamp(min=1e-12).log().gather(2, truth.unsqueeze(2)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        metrics = evaluate(model, layer, valid_data, torch.device("cpu"), prefix="valid")
    row = {"probe": "supervised_ceiling", "task": task_name, "seed": seed, "epoch": epoch + 1, **metrics,
           "epochs": config.epochs, "lr": config.lr, "lr_schedule": config.lr_schedule,
           "batch_size": config.batch_size, "train_size": config.train_size, "valid_size": config.valid_size,
           "cpu_seconds": round(time.process_time() - began, 1), "commit": commit, "torch": torch.__version__,
           "device": "cpu", "threads": 1, "data_source": valid_data.source}
    print(json.dumps(row), flush=True)
    if out:
        with open(out, "a") as f:
            f.write(json.dumps(row) + "\n")
