"""Issue 17 probe (sessions 31-32): a low first epoch, then a higher lr. The uniform stall of `equal` and
`add-mod-3` at 1e-3 happens in the first steps (notes.md, "Why lr 1e-3 fails"), and less-than learns
faster at a higher lr; which peak lr, after a first epoch at a tenth of it, keeps the stall away
(notes.md, "Recipe 3")? Recipe 2 otherwise
(5,000 training tuples, 2,000 validation; METHOD, default ISED); one row per run appended to OUT.

    PYTHONPATH=src python experiments/ised_default/probes/step_up_lr.py TASK SEED EPOCHS [OUT] [METHOD] [LR] [SCHEDULE]

Schedule: the library's SCHEDULE, ``"low-start-cosine"`` unless given, at LR, 1e-3 unless given (epoch 1 at LR / 10, then
lr_t = LR (1 + cos(pi (t - 1) / (E - 1))) / 2). The session-31 rows ran an earlier version of this
script that patched the same per-epoch formula into the training loop before the schedule existed;
their ``lr`` / ``lr_schedule`` fields were set afterwards to say so."""
import json
import sys

from blackprop.run.config import RunConfig
from blackprop.run.train import train

task, seed, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = sys.argv[4] if len(sys.argv) > 4 else "step_up_probe.jsonl"
method = sys.argv[5] if len(sys.argv) > 5 else "ised"
lr = float(sys.argv[6]) if len(sys.argv) > 6 else 1e-3
schedule = sys.argv[7] if len(sys.argv) > 7 else "low-start-cosine"

row = train(RunConfig(task=task, method=method, seed=seed, epochs=epochs, lr=lr, lr_schedule=schedule,
                      test_size=500, threads=1, progress=False))
row["research"] = (f"session-32 probe: lr schedule (issue 17): {schedule} at {lr:g}; "
                   "recipe 2 data, test 500; validation decides")
row["command"] = f"python experiments/ised_default/probes/step_up_lr.py {task} {seed} {epochs} OUT {method} {lr:g} {schedule}"
with open(out, "a") as f:
    f.write(json.dumps(row) + "\n")
print(task, method, seed, epochs, [h["valid_accuracy"] for h in row["history"]], row["valid_accuracy"], row["seconds"])
