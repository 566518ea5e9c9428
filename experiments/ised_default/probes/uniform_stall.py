"""Issue 17 probe (session 31): where the default stalls at lr 1e-3 on `equal` and `add-mod-3`, and whether a
symbol-entropy penalty moves it. One epoch, 1,500 training tuples, 1,000 validation (the session-26 probe's
regime, whose rows this reproduces at entropy 0); one row per run appended to OUT.

    PYTHONPATH=src python experiments/ised_default/probes/uniform_stall.py TASK SEED LR ENTROPY [OUT]

ENTROPY = lambda adds lambda * mean over symbols of H(p(x_i)) to the default ISED loss, in this process
only (not a library option). After training, the row records the network's mean largest probability per
symbol on the validation images (`valid_mean_max_p`; 0.1 is a uniform guess over the 10 digits) and
the validation loss of the constant predictor is compared in notes.md."""
import json
import sys
import tempfile
from pathlib import Path

import torch

import blackprop.blackbox as blackbox_module
from blackprop.run import load_model
from blackprop.run.config import RunConfig
from blackprop.run.train import train
from blackprop.tasks import get_task

task_name, seed, lr, entropy = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
out = sys.argv[5] if len(sys.argv) > 5 else "uniform_stall_probe.jsonl"

if entropy:
    plain_loss = blackbox_module.BlackBox.loss

    def loss_with_entropy(self, *inputs, target, **kwargs):
        probs = torch.stack(inputs, dim=1)
        penalty = -(probs * probs.clamp_min(1e-12).log()).sum(dim=-1).mean()
        return plain_loss(self, *inputs, target=target, **kwargs) + entropy * penalty

    blackbox_module.BlackBox.loss = loss_with_entropy

with tempfile.TemporaryDirectory() as folder:
    weights = Path(folder) / "net.pt"
    row = train(RunConfig(task=task_name, method="ised", seed=seed, epochs=1, lr=lr, train_size=1500, valid_size=1000,
                          test_size=500, threads=1, progress=False, weights=str(weights)))
    model = load_model(weights)
task = get_task(task_name)
valid = task.data("valid", 1000, train_size=1500)
with torch.no_grad():
    model.eval()
    probs = torch.stack(model(valid.images(torch.arange(1000))), dim=1)
row["valid_mean_max_p"] = round(float(probs.max(dim=-1).values.mean()), 4)
row["entropy_penalty"] = entropy
row["research"] = (f"session-31 probe (issue 17): default ISED at lr {lr:g}, 1 epoch, 1,500 tuples, with "
                   f"{entropy:g} x the mean symbol entropy added to the loss; validation decides")
row["command"] = f"python experiments/ised_default/probes/uniform_stall.py {task_name} {seed} {lr:g} {entropy:g}"
with open(out, "a") as f:
    f.write(json.dumps(row) + "\n")
print(task_name, seed, lr, entropy, row["valid_accuracy"], row["valid_mean_max_p"], row["seconds"])
