"""Issue 17 probe (session 31): start at lr 1e-4, then step up to 1e-3. The uniform stall of `equal` and
`add-mod-3` at 1e-3 happens in the first steps (notes.md, "Why lr 1e-3 fails"), and less-than learns
faster at 1e-3; does a first epoch at 1e-4 keep the stall away once the lr rises? Recipe 2 otherwise
(5,000 training tuples, 2,000 validation; METHOD, default ISED); one row per run appended to OUT.

    PYTHONPATH=src python experiments/ised_default/probes/step_up_lr.py TASK SEED EPOCHS [OUT] [METHOD]

Schedule (patched into this process's training loop, not a library option): epoch 1 at 1e-4, then
1e-3 with a cosine decay over the remaining epochs, lr_t = 1e-3 (1 + cos(pi (t - 1) / (E - 1))) / 2."""
import json
import math
import sys

from blackprop.run.config import RunConfig
from blackprop.run.train import train

train_module = sys.modules["blackprop.run.train"]  # the module (blackprop.run.train is also the function's name)

task, seed, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = sys.argv[4] if len(sys.argv) > 4 else "step_up_probe.jsonl"
method = sys.argv[5] if len(sys.argv) > 5 else "ised"


def step_up(lr: float, schedule: str, epoch: int, total: int) -> float:
    if epoch == 0:
        return 1e-4
    return 1e-3 * (1 + math.cos(math.pi * (epoch - 1) / max(1, total - 1))) / 2


train_module.epoch_lr = step_up
assert train_module.train is train
row = train(RunConfig(task=task, method=method, seed=seed, epochs=epochs, test_size=500, threads=1, progress=False))
row["schedule"] = "epoch 1 at 1e-4, then 1e-3 cosine over the rest"
row["research"] = ("session-31 probe (issue 17): step-up lr (epoch 1 at 1e-4, then 1e-3 cosine); recipe 2 data, "
                   "test 500; validation decides")
row["command"] = f"python experiments/ised_default/probes/step_up_lr.py {task} {seed} {epochs} OUT {method}"
with open(out, "a") as f:
    f.write(json.dumps(row) + "\n")
print(task, method, seed, epochs, [h["valid_accuracy"] for h in row["history"]], row["valid_accuracy"], row["seconds"])
