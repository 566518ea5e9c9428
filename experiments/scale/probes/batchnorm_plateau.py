"""Probe (issue 21): does batch normalisation shorten the fold's plateau on long sums?

On sum-n the exact fold's gradient reaches every image of a sum through one shared factor (about
(y - mean) / variance per class), so a step's weight gradient is that factor times the *sum* of the
images' features. Uncentred features make the sum about n times their mean plus a fluctuation of
sqrt(n), and only the fluctuation says which images are large digits; the mean term is noise whose
sign changes from sum to sum. A BatchNorm1d on the hidden layer centres the features over the batch
(16 sums x n images), so the informative part is all that is left. This script trains ``lenet-wide``
with and without that layer for a few epochs at constant lr 1e-3 and prints one JSON row per run.
It ran at commit 13d54cb, before the library had the network; ``blackprop.models.lenet_wide_bn``
(``--network lenet-wide-bn``), added from its result, builds the same one (same layers, same order).

    PYTHONPATH=src python experiments/scale/probes/batchnorm_plateau.py sum256 2 bn 0
    (task, epochs, "bn" or "plain", seed)
"""

from __future__ import annotations

import json
import sys

from torch import nn

from blackprop.models import DigitsModel, lenet_wide
from blackprop.run import RunConfig, train
from blackprop.tasks import get_task


def lenet_wide_bn() -> DigitsModel:
    net = lenet_wide()
    hidden = net.classifier[0].out_features
    net.classifier = nn.Sequential(net.classifier[0], nn.BatchNorm1d(hidden), *list(net.classifier)[1:])
    return DigitsModel(net)


def main() -> None:
    task_name, epochs, variant, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    task = get_task(task_name)
    task.networks["lenet-wide-bn"] = lenet_wide_bn  # this process only
    network = "lenet-wide-bn" if variant == "bn" else "lenet-wide"
    config = RunConfig(task=task_name, method="fold", seed=seed, epochs=epochs, threads=1, progress=False,
                       network=network, estimator_settings={"min_mass": 1e-12})
    row = train(config, on_epoch=lambda h: print(json.dumps({"epoch": h["epoch"], **{
        k: h[k] for k in ("valid_accuracy", "valid_symbol_accuracy", "train_loss", "seconds") if k in h}}),
        file=sys.stderr, flush=True))
    print(json.dumps(row))


if __name__ == "__main__":
    main()
