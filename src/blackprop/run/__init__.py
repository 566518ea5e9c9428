"""Running experiments: one run (``train``), grids of runs (``run_grid``), checkpoints and reports.

    from blackprop.run import RunConfig, train
    result = train(RunConfig(task="sum2", method="ised", epochs=1))

Modules: ``config`` (RunConfig and its identity), ``train`` (the loop), ``checkpoint`` (atomic
save and resume), ``spec`` (a study's spec.toml), ``grid`` (``blackprop bench``), ``report``
(``blackprop report``) with its table kinds in ``tables`` and ``efficiency``.
"""

from .config import RunConfig, epoch_lr, identity
from .train import evaluate, train

__all__ = ["RunConfig", "epoch_lr", "evaluate", "identity", "train"]
