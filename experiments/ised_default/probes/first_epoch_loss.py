"""The first epoch's mean training loss of runs at their task's defaults, to the last digit: a cheap
fingerprint of a run's arithmetic, to compare with a committed row's ``history[0]["train_loss"]``.

    PYTHONPATH=src python experiments/ised_default/probes/first_epoch_loss.py TASK:METHOD:SEED ...
    ATEN_CPU_CAPABILITY=avx2 PYTHONPATH=src python experiments/ised_default/probes/first_epoch_loss.py sum2:ised:1

Each run is the full run's configuration (so the schedule's first epoch is the full run's) stopped
after epoch 1; one thread. Prints one line per run with the processor the row would record. Used to
find why rows of one seed made in different sessions differ in the last digits (they ran on different
kinds of CPU: see notes.md, "One seed, two kinds of CPU").
"""

from __future__ import annotations

import sys

import torch

from blackprop.run.config import RunConfig
from blackprop.run.train import processor, train


class _FirstEpochDone(Exception):
    pass


def first_epoch_loss(task: str, method: str, seed: int) -> float:
    seen: list[float] = []

    def stop(row: dict) -> None:
        seen.append(row["train_loss"])
        raise _FirstEpochDone

    try:
        train(RunConfig(task=task, method=method, seed=seed, threads=1, progress=False), on_epoch=stop)
    except _FirstEpochDone:
        pass
    return seen[0]


def main() -> None:
    torch.set_num_threads(1)
    for spec in sys.argv[1:]:
        task, method, seed = spec.split(":")
        print(f"{task} {method} seed {seed}: {first_epoch_loss(task, method, int(seed))!r} ({processor('cpu')})",
              flush=True)


if __name__ == "__main__":
    main()
