"""Running experiments: one run (``train``), grids of runs (``run_grid``), checkpoints and reports.

    from blackprop.run import RunConfig, train
    result = train(RunConfig(task="sum2", method="ised", epochs=1))

``load_model(path)`` rebuilds a finished run's network from the weights it saved (``--save-weights``;
``blackprop bench`` keeps them in a study's ``weights/<run id>.pt``).

Modules: ``config`` (RunConfig and its identity), ``train`` (the loop), ``checkpoint`` (atomic
save and resume), ``spec`` (a study's spec.toml), ``grid`` (``blackprop bench``), ``report``
(``blackprop report``) with its table kinds in ``tables`` and ``efficiency``.
"""

from .checkpoint import load_model
from .config import RunConfig, epoch_lr, identity
from .train import evaluate, train

__all__ = ["RunConfig", "epoch_lr", "evaluate", "identity", "load_model", "train"]
