"""The training loop: a task's network, its program behind an estimator, Adam, and evaluation.

    result = train(RunConfig(task="sum2", method="ised", epochs=1, seed=0))
    result["test_accuracy"]   # a fraction, argmax symbols through the program

Evaluation is the same for every method: each test example's most likely symbols go through the
program, and the output is compared with the label. Each epoch appends a row to
``result["history"]`` (and calls ``on_epoch``); with ``checkpoint`` set, the state after each
epoch is saved atomically and a re-run of the same config resumes from it, ending with the same
metrics as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from . import __version__
from .blackbox import BlackBox
from .estimators import ESTIMATORS, estimator
from .program import BatchedProgram
from .spaces import OutputSpaceError
from .tasks import Task, TaskData, get_task

__all__ = ["RunConfig", "evaluate", "train"]


@dataclass
class RunConfig:
    """One training run. Settings left as None take the task's defaults."""

    task: str
    method: str = "ised"
    seed: int = 0
    epochs: int | None = None
    lr: float | None = None
    lr_schedule: str | None = None
    batch_size: int | None = None
    num_samples: int | None = None
    train_size: int | None = None
    test_size: int | None = None
    estimator_settings: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None
    device: str = "auto"
    checkpoint: str | None = None
    progress: bool = True
    executor: str | None = None
    search: int = 1

    def resolved(self, task: Task) -> RunConfig:
        """A copy with every None setting replaced by the task default."""
        d = task.defaults
        return dataclasses.replace(
            self,
            epochs=d.epochs if self.epochs is None else self.epochs,
            lr=d.lr if self.lr is None else self.lr,
            lr_schedule=d.lr_schedule if self.lr_schedule is None else self.lr_schedule,
            batch_size=d.batch_size if self.batch_size is None else self.batch_size,
            num_samples=d.num_samples if self.num_samples is None else self.num_samples,
            train_size=d.train_size if self.train_size is None else self.train_size,
            test_size=d.test_size if self.test_size is None else self.test_size,
        )

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "num_samples", "train_size", "test_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not (isinstance(self.lr, float) and self.lr > 0):
            raise ValueError(f"lr must be a float > 0, got {self.lr!r}")
        if isinstance(self.search, bool) or not isinstance(self.search, int) or self.search < 1:
            raise ValueError(f"search must be an int >= 1 (tuples tried per test example), got {self.search!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.method not in ESTIMATORS:
            raise ValueError(f"unknown method {self.method!r}; valid: {', '.join(sorted(ESTIMATORS))}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ValueError(f"threads must be an int >= 1 (or None for torch's default), got {self.threads!r}")
        pick_device(self.device)
        if self.executor is not None:
            from .program import parse_executor_spec

            parse_executor_spec(self.executor)
        make_estimator(self)  # unknown or invalid estimator settings fail here, before any data is loaded


LR_SCHEDULES = ("constant", "cosine")


def epoch_lr(lr: float, schedule: str, epoch: int, epochs: int) -> float:
    """Adam's learning rate during ``epoch`` (0-based) of ``epochs``.

    "constant": lr. "cosine": lr * (1 + cos(pi * epoch / epochs)) / 2, from lr in the first epoch down
    towards 0 in the last; set per epoch, so it needs no state and resumes exactly.

    >>> [round(epoch_lr(1e-3, "cosine", e, 4), 6) for e in range(4)]
    [0.001, 0.000854, 0.0005, 0.000146]
    """
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return lr * (1 + math.cos(math.pi * epoch / epochs)) / 2
    raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {schedule!r}")


def make_estimator(config: RunConfig) -> Any:
    cls = ESTIMATORS[config.method]
    settings = dict(config.estimator_settings)
    if "num_samples" in {f.name for f in dataclasses.fields(cls)}:
        settings.setdefault("num_samples", config.num_samples)
    return estimator(config.method, **settings)


def pick_device(name: str) -> torch.device:
    """"auto" (cuda when available, else cpu) or any torch device string, checked to exist here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but CUDA is not available here; use --device auto or cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device


def train(config: RunConfig, on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    task = get_task(config.task)
    config = config.resolved(task)
    config.validate()
    assert config.epochs and config.batch_size and config.train_size and config.test_size and config.lr
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)

    torch.manual_seed(config.seed)  # network initialisation and dropout; the data has its own seed
    train_data = task.data("train", config.train_size)
    test_data = task.data("test", config.test_size)
    model = task.make_model().to(device)
    program = task.make_program()
    if config.executor is not None:
        program.use_executor(config.executor)  # a spec string such as "process:4"
    layer = BlackBox(program, make_estimator(config), seed=config.seed).to(device)
    optimizer = torch.optim.Adam(list(model.parameters()) + list(layer.parameters()), lr=config.lr)
    shuffle = torch.Generator().manual_seed(config.seed)

    history: list[dict[str, Any]] = []
    start_epoch, elapsed = 0, 0.0
    checkpoint = Path(config.checkpoint) if config.checkpoint else None
    if checkpoint and checkpoint.exists():
        state = _load(checkpoint)
        if state["config"] != _identity(config):
            raise ValueError(f"checkpoint {checkpoint} belongs to another run config; delete it or pick another path")
        saved_on = state.get("device_type", device.type)
        if saved_on != device.type:
            raise ValueError(f"checkpoint {checkpoint} was written on {saved_on} and this run is on {device.type}; "
                             f"resume with --device {saved_on} (random streams differ between devices) or start over")
        model.load_state_dict(state["model"])
        layer.load_state_dict(state["layer"])
        optimizer.load_state_dict(state["optimizer"])
        shuffle.set_state(state["shuffle"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])  # dropout on the GPU draws from these
        _restore_program(program, state["program"])
        gen = layer.generator(device)
        if gen is not None and state["layer_rng"] is not None:
            gen.set_state(state["layer_rng"])
        history, start_epoch, elapsed = state["history"], state["epoch"], state["elapsed"]

    for epoch in range(start_epoch, config.epochs):
        began = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = epoch_lr(config.lr, config.lr_schedule or "constant", epoch, config.epochs)
        model.train()
        order = torch.randperm(len(train_data), generator=shuffle)
        batches = order.split(config.batch_size)
        total_loss = 0.0
        queries_before = program.stats.queries
        bar = tqdm(batches, desc=f"{task.name} {config.method} epoch {epoch + 1}/{config.epochs}",
                   disable=not (config.progress and sys.stderr.isatty()), leave=False)
        for step, rows in enumerate(bar, start=1):
            where = f"{task.name} {config.method} epoch {epoch + 1}/{config.epochs}, step {step}/{len(batches)}"
            images = train_data.images(rows).to(device)
            try:
                loss = layer.loss(*model(images), target=train_data.label_values(rows))
            except ValueError as error:  # e.g. NaN probabilities from a diverged network
                raise FloatingPointError(f"{where}: {error}") from error
            if not torch.isfinite(loss):  # before the step, so the weights (and the last checkpoint) stay sane
                raise FloatingPointError(f"{where}: loss became {loss.item()}; lower lr (the last checkpoint "
                                         "holds the weights before this epoch)")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += float(loss.detach())
        elapsed += time.perf_counter() - began
        train_queries = program.stats.queries - queries_before  # tuples the estimator asked for; not the test's
        metrics = evaluate(model, layer, test_data, device, search=config.search)
        row = {
            "epoch": epoch + 1,
            "train_loss": total_loss / len(batches),
            **metrics,
            "seconds": round(elapsed, 3),
            "program_calls": program.stats.calls,
            "train_queries": train_queries,
        }
        history.append(row)
        if on_epoch:
            on_epoch(row)
        if checkpoint:
            _save(checkpoint, {
                "config": _identity(config), "epoch": epoch + 1, "elapsed": elapsed, "history": history,
                "model": model.state_dict(), "layer": layer.state_dict(), "optimizer": optimizer.state_dict(),
                "shuffle": shuffle.get_state(), "torch_rng": torch.get_rng_state(), "device_type": device.type,
                "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
                "layer_rng": (g.get_state() if (g := layer.generator(device)) is not None else None),
                "program": _program_state(program),
            })

    final = history[-1] if history else evaluate(model, layer, test_data, device, search=config.search)
    client = getattr(program.fn, "client", None)  # a language-model program: report its calls and tokens
    program.close()  # shuts down a process pool or local dask cluster started for --executor
    return {
        "task": task.name,
        "method": config.method,
        "seed": config.seed,
        "epochs": config.epochs,
        "lr": config.lr,
        **({"lr_schedule": config.lr_schedule} if config.lr_schedule != "constant" else {}),
        "batch_size": config.batch_size,
        "num_samples": config.num_samples,
        "train_size": config.train_size,
        "test_size": config.test_size,
        "estimator": {"name": layer.estimator.name, **layer.estimator.settings()},
        "test_accuracy": final["test_accuracy"],
        "symbol_accuracy": final.get("symbol_accuracy"),
        **({"search": config.search, "search_accuracy": final["search_accuracy"]} if config.search > 1 else {}),
        "seconds": round(elapsed, 3),
        "program_calls": program.stats.calls,
        "program_calls_per_epoch": round(program.stats.calls / config.epochs, 1),
        "program_failures": program.stats.failures,
        **({"program": "batched"} if isinstance(program, BatchedProgram) else {}),  # calls = queries, no memo
        **_queries_per_example(history, len(train_data)),
        **({"llm": client.stats.as_dict()} if client is not None else {}),
        "history": history,
        "device": str(device),
        "version": __version__,
        "commit": git_commit(),
    }


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, layer: BlackBox, data: TaskData, device: torch.device, search: int = 1
) -> dict[str, Any]:
    """Task accuracy (argmax symbols through the program) and, where labels exist, symbol accuracy.

    With ``search`` > 1 also ``search_accuracy``: the same with program-checked decoding, the most
    probable of the ``search`` most probable tuples that the program accepts (``blackprop.decoding``).
    """
    model.eval()
    output = layer.program.output
    correct, searched, symbol_hits, symbol_total = 0, 0, 0, 0
    for rows in torch.arange(len(data)).split(256):
        images = data.images(rows).to(device)
        inputs = model(images)
        labels = data.label_values(rows)
        predictions = layer.predict(*inputs)
        for predicted, label in zip(predictions, labels, strict=True):
            correct += _same(output, predicted, label)
        if search > 1:
            for predicted, label in zip(layer.predict(*inputs, search=search), labels, strict=True):
                searched += _same(output, predicted, label)
        symbols_of = getattr(model, "symbols", None)
        if data.symbols is not None and callable(symbols_of):
            truth = data.symbols[rows]
            guess = symbols_of(images).cpu()
            valid = truth >= 0
            symbol_hits += int(((guess == truth) & valid).sum())
            symbol_total += int(valid.sum())
    metrics: dict[str, Any] = {"test_accuracy": correct / len(data)}
    if search > 1:
        metrics["search_accuracy"] = searched / len(data)
    if symbol_total:
        metrics["symbol_accuracy"] = symbol_hits / symbol_total
    return metrics


def _same(space: Any, predicted: Any, label: Any) -> bool:
    if predicted is None:
        return False
    try:
        return bool(space.index(predicted) == space.index(label))
    except OutputSpaceError:
        return False


def _identity(config: RunConfig) -> dict[str, Any]:
    """What a checkpoint must match: every setting that changes the numbers (not threads or executor)."""
    ignored: tuple[str, ...] = ("threads", "checkpoint", "progress", "executor")
    if config.lr_schedule == "constant":  # the defaults leave checkpoints from before these options valid
        ignored += ("lr_schedule",)
    if config.search == 1:
        ignored += ("search",)
    return {k: v for k, v in dataclasses.asdict(config).items() if k not in ignored}


def _load(path: Path) -> dict[str, Any]:
    """A checkpoint's state on the CPU (resumable on another device), or a clear error."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - truncated, not a checkpoint, unreadable
        raise ValueError(
            f"checkpoint {path} cannot be read ({type(error).__name__}: {error}); delete it to start the run "
            "over, or pick another --checkpoint path"
        ) from None
    missing = {"config", "epoch", "model", "optimizer", "history"} - set(state if isinstance(state, dict) else ())
    if missing:
        raise ValueError(f"checkpoint {path} is not a blackprop training checkpoint (lacks {sorted(missing)}); "
                         "delete it or pick another --checkpoint path")
    return state


def _queries_per_example(history: list[dict[str, Any]], train_size: int) -> dict[str, float]:
    """Program queries per training example and epoch: the tuples the estimator asked the program for
    (k for ISED and REINFORCE, N * sum of class counts for IndeCateR, ...), before the memo cache."""
    counted = [h["train_queries"] for h in history if "train_queries" in h]  # absent in older checkpoints
    if not counted or train_size == 0:
        return {}
    return {"program_queries_per_example": round(sum(counted) / (len(counted) * train_size), 2)}


def _program_state(program: Any) -> dict[str, Any]:
    return program.state_dict()  # memo (Program only), output values and counters


def _restore_program(program: Any, state: dict[str, Any]) -> None:
    program.load_state_dict(state)


def _save(path: Path, state: dict[str, Any]) -> None:
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


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
