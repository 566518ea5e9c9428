"""Checkpoints: atomic save, checked load, and whether a saved run may be resumed as another.

    save(path, state)             # <path>.tmp, fsync, rename: never a half-written file
    state = load(path)            # on the CPU, or a ValueError saying what to do
    check_resumable(path, state, identity(config))
    save_weights(path, model, identity(config))   # the network that scored the test set, and its run
    model = load_model(path)                      # rebuilt from the task and network, in eval mode

A checkpoint resumes a run with the same identity (``blackprop.run.config.identity``). A run may also
be continued with more epochs when that is sound: the lr schedule is constant, so the epochs already
trained are exactly the first epochs of the longer run. Any other difference is refused, naming the
fields that differ.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .config import differences

__all__ = ["check_resumable", "load", "load_model", "load_saved", "save", "save_weights"]

REQUIRED = ("config", "epoch", "model", "optimizer", "history")


def save(path: Path, state: dict[str, Any]) -> None:
    """Write to ``<path>.tmp`` then rename: a crash or a full disk never leaves a half-written checkpoint."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())  # on disk before the rename, so even a power cut leaves one whole file
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        kept = f"; the previous checkpoint {path} is intact" if path.exists() else ""
        raise OSError(error.errno, f"cannot save checkpoint {path} ({error.strerror or error}){kept}; free disk "
                                   "space or pick a writable --checkpoint path") from None


def load(path: Path) -> dict[str, Any]:
    """A checkpoint's state on the CPU (resumable on another device), or a clear error."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - truncated, not a checkpoint, unreadable
        raise ValueError(
            f"checkpoint {path} cannot be read ({type(error).__name__}: {error}); delete it to start the run "
            "over, or pick another --checkpoint path"
        ) from None
    missing = set(REQUIRED) - set(state if isinstance(state, dict) else ())
    if missing:
        raise ValueError(f"checkpoint {path} is not a blackprop training checkpoint (lacks {sorted(missing)}); "
                         "delete it or pick another --checkpoint path")
    return state


def check_resumable(path: Path, state: dict[str, Any], wanted: dict[str, Any], device_type: str) -> None:
    """Raise ValueError unless the run saved in ``state`` can continue as the run ``wanted``."""
    saved = state["config"]
    diff = differences(saved, wanted)
    extends = diff == [f"epochs: {saved.get('epochs')!r} -> {wanted.get('epochs')!r}"]
    if diff and not (extends and _can_extend(saved, wanted)):
        why = ""
        if extends and wanted.get("lr_schedule", "constant") != "constant":
            why = " (a cosine schedule depends on the epoch count, so the trained epochs differ)"
        elif extends:
            why = " (a run cannot be shortened; its later epochs are already trained)"
        raise ValueError(f"checkpoint {path} holds another run; it differs in {'; '.join(diff)}{why}. Pass the "
                         "checkpoint's settings to resume it, or delete it (or pick another path) to start over")
    saved_on = state.get("device_type", device_type)
    if saved_on != device_type:
        raise ValueError(f"checkpoint {path} was written on {saved_on} and this run is on {device_type}; "
                         f"resume with --device {saved_on} (random streams differ between devices) or start over")


def _can_extend(saved: dict[str, Any], wanted: dict[str, Any]) -> bool:
    constant = wanted.get("lr_schedule", "constant") == "constant"
    return constant and int(wanted["epochs"]) > int(saved["epochs"])


def save_weights(path: Path, model: torch.nn.Module, run: dict[str, Any]) -> None:
    """Save a trained network's weights (on the CPU) with its run's identity, atomically."""
    weights = {name: value.detach().to("cpu", copy=True) for name, value in model.state_dict().items()}
    save(path, {"weights": weights, "config": run})


def load_model(path: str | Path) -> torch.nn.Module:
    """The network a run saved (``RunConfig.weights``, ``--save-weights``; ``blackprop bench`` keeps each
    finished run's in its study's ``weights/<run id>.pt``), rebuilt with its task's model and the run's
    network, in eval mode:

        model = load_model("experiments/scale/weights/1a2b3c4d5e6f7a8b.pt")
        probs = model(images)   # the task's program inputs, as in training
    """
    return load_saved(path)[0]


def load_saved(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """``(network in eval mode, the run's identity)`` from a file ``save_weights`` wrote."""
    from ..tasks import get_task

    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - missing, truncated, not a torch file
        raise ValueError(f"cannot read weights {path} ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict) or not {"weights", "config"} <= set(state):
        raise ValueError(f"{path} holds no saved network (a training checkpoint? its 'model' entry has the weights)")
    run = state["config"]
    model = get_task(run["task"]).model(run.get("network"))
    model.load_state_dict(state["weights"])
    return model.eval(), run
