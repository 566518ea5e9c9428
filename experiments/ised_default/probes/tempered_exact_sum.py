"""Issue 17 probe (session 27): the default's exhaustive sum with tuple probabilities raised to tau,
w(y) = sum_{P(x)=y} p(x)^tau / sum_x p(x)^tau (tau = 1: the default's p(y); tau = 2: Q2, the limit of the
paper's probability weights). Recipe 2, validation decides; one row per run appended to OUT.

    PYTHONPATH=src python experiments/ised_default/probes/tempered_exact_sum.py TASK TAU SEED [OUT]

It replaces, in this process only, the exhaustive sum that ``bp.ISED()`` uses when k covers the input
space (tasks of one or two digits); not a library option (see notes.md, "less-than")."""
import json
import sys

import torch

import blackprop.estimators.ised as ised_module
from blackprop.estimators.exact import all_tuples
from blackprop.run.config import RunConfig
from blackprop.run.train import train
from blackprop.semirings import SEMIRINGS

task, tau, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
out = sys.argv[4] if len(sys.argv) > 4 else "tempered_probe.jsonl"


class Tempered:
    def log_probs(self, program, beliefs):
        assert beliefs.dense
        ring = SEMIRINGS["add-mult"]
        tuples = all_tuples(tuple(beliefs.sizes.tolist()), beliefs.device)
        outputs = program.evaluate(tuples)
        expanded = tuples.unsqueeze(0).expand(beliefs.batch_size, -1, -1)
        scores = tau * ring.combine(beliefs.log_prob_terms(expanded, drawn=True), None)
        log_w = ring.aggregate(scores, outputs.unsqueeze(0).expand(beliefs.batch_size, -1), program.output.size)
        return log_w - torch.logsumexp(scores, dim=1, keepdim=True)


ised_module.EXACT = Tempered()
row = train(RunConfig(task=task, method="ised", seed=seed, test_size=500, threads=1, progress=False))
row["research"] = (f"session-27 probe (issue 17): the exhaustive sum with p(x)^tau, tau = {tau:g} (1: the default; "
                   "2: Q2, the paper's weights' limit); recipe 2, test 500; validation decides")
row["command"] = f"python experiments/ised_default/probes/tempered_exact_sum.py {task} {tau:g} {seed}"
row["tau"] = tau
with open(out, "a") as f:
    f.write(json.dumps(row) + "\n")
print(task, tau, seed, row["valid_accuracy"], row["symbol_accuracy"], row["seconds"])
