"""The training loop: a task's network, its program behind an estimator, Adam, validation, one test.

    result = train(RunConfig(task="sum2", method="ised", epochs=1, seed=0))
    result["valid_accuracy"], result["test_accuracy"]   # fractions: argmax symbols through the program

Each epoch trains on the training split and reports accuracy on the validation split (a row in
``result["history"]``, passed to ``on_epoch``); the test split is evaluated once, after the last
epoch (with ``select="best-valid"``, on the network's weights from the epoch of highest validation
accuracy, kept in memory and in the checkpoint). Accuracy is the same for every method: each
example's most likely symbols go through the program and the output is compared with the label.
With ``marginal`` = N the row also holds the accuracy of the most probable output (argmax over y of
p(y), ``BlackBox.predict(marginal=N)``) on the validation and test splits after the last epoch: the
ISED paper's way of scoring its own runs. With ``checkpoint`` set, the state after each epoch is
saved atomically and a re-run resumes from it, ending with the same metrics as an uninterrupted run
(``blackprop.run.checkpoint``). A first Ctrl-C stops at the next step boundary and
saves the run (at ``checkpoint``, else a temporary file), so it resumes exactly; see ``blackprop.run.interrupt``.
``stop_when`` (a predicate polled every couple of seconds) asks for the same stop where no Ctrl-C can
arrive: ``blackprop bench --cluster`` sets a cluster-wide event when its driver gets a Ctrl-C.
The row's ``commit`` is the git commit read when the run first started, and its ``processor`` the
machine it started on; a run resumed under other code, or on another kind of machine, also lists each
one it trained under, in order, in ``commits`` / ``processors``.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from .. import __version__
from ..blackbox import BlackBox
from ..spaces import OutputSpaceError, Product
from ..tasks import TaskData, get_task
from . import checkpoint as ckpt
from .config import RunConfig, epoch_lr, identity, make_estimator, pick_device, run_defaults
from .interrupt import TrainingInterrupted, deferred_interrupt

__all__ = ["evaluate", "git_commit", "marginal_accuracy", "train"]


def train(config: RunConfig, on_epoch: Callable[[dict[str, Any]], None] | None = None,
          stop_when: Callable[[], bool] | None = None) -> dict[str, Any]:
    # --- the run's settings, data, network, program and optimiser -------------------------------
    commit = git_commit()  # the code this process imported: not HEAD when the row is written
    task = get_task(config.task)
    config = config.resolved(task)
    config.validate()
    task.check_network(config.network)
    assert config.epochs and config.batch_size and config.train_size and config.test_size and config.lr
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)

    torch.manual_seed(config.seed)  # network initialisation and dropout; the data has its own seed
    train_data = task.data("train", config.train_size)
    valid_data = task.data("valid", config.valid_size or config.test_size, train_size=config.train_size)
    model = task.model(config.network).to(device)
    program = task.make_program()
    if config.marginal and isinstance(program.output, Product):  # before training, not after it
        raise ValueError(f"marginal: {task.name}'s output is a Product (one value per component); marginal "
                         "decoding needs a Discrete or Open output; use search instead")
    if config.executor is not None:
        program.use_executor(config.executor)
    layer = BlackBox(program, make_estimator(config), seed=config.seed).to(device)
    optimizer = torch.optim.Adam(list(model.parameters()) + list(layer.parameters()), lr=config.lr)
    shuffle = torch.Generator().manual_seed(config.seed)

    # --- resume from a checkpoint -----------------------------------------------------------------
    history: list[dict[str, Any]] = []
    start_epoch, elapsed = 0, 0.0
    commits: list[str | None] = [commit]
    processors = [processor(device)]
    path = Path(config.checkpoint) if config.checkpoint else None
    partial: dict[str, Any] | None = None  # set when a Ctrl-C stopped the saved run within an epoch
    best: dict[str, Any] | None = None  # select="best-valid": the epoch with the highest validation accuracy
    if path and path.exists():
        state = ckpt.load(path)
        ckpt.check_resumable(path, state, identity(config), device.type)
        model.load_state_dict(state["model"])
        layer.load_state_dict(state["layer"])
        optimizer.load_state_dict(state["optimizer"])
        shuffle.set_state(state["shuffle"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])  # dropout on the GPU draws from these
        program.load_state_dict(state["program"])
        if (gen := layer.generator(device)) is not None and state.get("layer_rng") is not None:
            gen.set_state(state["layer_rng"])
        history, start_epoch, elapsed = state["history"], state["epoch"], state["elapsed"]
        partial = state.get("partial")
        best = state.get("best")
        commits = _then(state.get("commits"), commit)  # resumed under other code, or on another machine
        processors = _then(state.get("processors"), processors[0])

    def snapshot(epochs_done: int, epoch_shuffle: torch.Tensor, within: dict[str, Any] | None) -> dict[str, Any]:
        """The run's whole state: after ``epochs_done`` epochs, plus ``within`` the next one's steps."""
        return {
            "config": identity(config), "epoch": epochs_done, "elapsed": elapsed, "history": history,
            "model": model.state_dict(), "layer": layer.state_dict(), "optimizer": optimizer.state_dict(),
            "shuffle": epoch_shuffle, "torch_rng": torch.get_rng_state(), "device_type": device.type,
            "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
            "layer_rng": (g.get_state() if (g := layer.generator(device)) is not None else None),
            "program": program.state_dict(), "partial": within, "best": best, "commits": commits,
            "processors": processors,
        }

    # --- the epochs (a first Ctrl-C stops at the next step with a resumable checkpoint) ------------
    with deferred_interrupt(also=stop_when) as stop:
        for epoch in range(start_epoch, config.epochs):
            began = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = epoch_lr(config.lr, config.lr_schedule or "constant", epoch, config.epochs)
            model.train()
            epoch_shuffle = shuffle.get_state()
            batches = torch.randperm(len(train_data), generator=shuffle).split(config.batch_size)
            total_loss, queries_before, done = 0.0, program.stats.queries, 0
            if partial is not None:  # resume within the epoch: its first steps are already trained
                total_loss, queries_before, done = partial["loss"], partial["queries_before"], partial["step"]
                partial = None
            name = f"{task.name} {config.method} epoch {epoch + 1}/{config.epochs}"
            bar = tqdm(batches[done:], desc=name, disable=not (config.progress and sys.stderr.isatty()), leave=False)
            for step, rows in enumerate(bar, start=done + 1):
                images = train_data.images(rows).to(device)
                try:
                    loss = layer.loss(*model(images), target=train_data.label_values(rows))
                except ValueError as error:  # e.g. NaN probabilities from a diverged network
                    raise FloatingPointError(f"{name}, step {step}/{len(batches)}: {error}") from error
                if not torch.isfinite(loss):  # before the step, so the weights (and the last checkpoint) stay sane
                    raise FloatingPointError(f"{name}, step {step}/{len(batches)}: loss became {loss.item()}; lower "
                                             "lr (the last checkpoint holds the weights before this epoch)")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total_loss += float(loss.detach())
                if stop.requested and step < len(batches):
                    elapsed += time.perf_counter() - began
                    within = {"step": step, "loss": total_loss, "queries_before": queries_before}
                    saved = _save_to(path, snapshot(epoch, epoch_shuffle, within))
                    raise TrainingInterrupted(_resume_hint(saved, path, f"{name}, step {step}/{len(batches)}"))
            elapsed += time.perf_counter() - began
            train_queries = program.stats.queries - queries_before  # the estimator's tuples, not evaluation's
            row = {
                "epoch": epoch + 1,
                "train_loss": total_loss / len(batches),
                **evaluate(model, layer, valid_data, device, prefix="valid", search=config.search),
                "seconds": round(elapsed, 3),
                "program_calls": program.stats.calls,
                "train_queries": train_queries,
            }
            history.append(row)
            if config.select == "best-valid" and (best is None or row["valid_accuracy"] > best["valid_accuracy"]):
                best = {"epoch": row["epoch"], "valid_accuracy": row["valid_accuracy"],
                        "model": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}}
            if on_epoch:
                on_epoch(row)
            if path or (stop.requested and epoch + 1 < config.epochs):
                saved = _save_to(path, snapshot(epoch + 1, shuffle.get_state(), None))
                if stop.requested and epoch + 1 < config.epochs:
                    raise TrainingInterrupted(_resume_hint(saved, path, f"after {name}"))

    # --- the test set, once (on the selected epoch's weights) --------------------------------------
    if best is not None:
        model.load_state_dict(best["model"])
    test_data = task.data("test", config.test_size)
    final = evaluate(model, layer, test_data, device, prefix="test", search=config.search)
    valid = history[best["epoch"] - 1 if best else -1] if history else evaluate(model, layer, valid_data, device,
                                                                                prefix="valid")
    calls_trained = program.stats.calls  # the marginal decoding's calls are reported on their own
    if config.weights:
        ckpt.save_weights(Path(config.weights), model, identity(config))
    if config.marginal:
        marginal = {"marginal": config.marginal,
                    "valid_marginal_accuracy": marginal_accuracy(model, layer, valid_data, device, config.marginal),
                    "marginal_accuracy": marginal_accuracy(model, layer, test_data, device, config.marginal),
                    "marginal_program_calls": program.stats.calls - calls_trained}
    client = getattr(program.fn, "client", None)  # a language-model program: report its calls and tokens
    program.close()  # shuts down a process pool or local dask cluster started for --executor
    counted = [h["train_queries"] for h in history if "train_queries" in h]
    return {
        "task": task.name, "method": config.method, "seed": config.seed, "epochs": config.epochs, "lr": config.lr,
        **({"lr_schedule": config.lr_schedule} if config.lr_schedule != "constant" else {}),
        **({"network": config.network} if config.network is not None else {}),
        "batch_size": config.batch_size, "num_samples": config.num_samples, "train_size": config.train_size,
        "valid_size": len(valid_data), "test_size": config.test_size,
        "estimator_settings": config.estimator_settings,
        "estimator": {"name": layer.estimator.name, **layer.estimator.settings()},
        "defaults": run_defaults(task, config.method),
        "valid_accuracy": valid["valid_accuracy"],
        "test_accuracy": final["test_accuracy"],
        "symbol_accuracy": final.get("test_symbol_accuracy"),
        **({"search": config.search, "search_accuracy": final["test_search_accuracy"]} if config.search > 1 else {}),
        **(marginal if config.marginal else {}),
        **({"select": config.select, "selected_epoch": best["epoch"]} if best is not None else {}),
        "seconds": round(elapsed, 3),
        "program_calls": calls_trained,
        "program_calls_per_epoch": round(calls_trained / config.epochs, 1),
        "program_failures": program.stats.failures,
        **({"program_queries_per_example": round(sum(counted) / (len(counted) * len(train_data)), 2)}
           if counted else {}),
        **({"llm": client.stats.as_dict()} if client is not None else {}),
        "history": history,
        "data_source": getattr(train_data, "source", None),
        "device": str(device), "processor": processors[0],
        **({"processors": processors} if len(processors) > 1 else {}),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "version": __version__, "commit": commits[0],
        **({"commits": commits} if len(set(commits)) > 1 else {}),
    }


@torch.no_grad()
def evaluate(model: torch.nn.Module, layer: BlackBox, data: TaskData, device: torch.device, prefix: str = "test",
             search: int = 1) -> dict[str, Any]:
    """``<prefix>_accuracy`` (argmax symbols through the program) and, where labels exist,
    ``<prefix>_symbol_accuracy``; with ``search`` > 1 also ``<prefix>_search_accuracy``: the most
    probable of the ``search`` most probable tuples that the program accepts (``blackprop.decoding``).
    """
    model.eval()
    output = layer.program.output
    correct, searched, symbol_hits, symbol_total = 0, 0, 0, 0
    for rows in torch.arange(len(data)).split(256):
        images = data.images(rows).to(device)
        inputs = model(images)
        labels = data.label_values(rows)
        correct += sum(_same(output, p, y) for p, y in zip(layer.predict(*inputs), labels, strict=True))
        if search > 1:
            searched += sum(_same(output, p, y) for p, y in zip(layer.predict(*inputs, search=search), labels,
                                                                 strict=True))
        symbols_of = getattr(model, "symbols", None)
        if data.symbols is not None and callable(symbols_of):
            truth = data.symbols[rows]
            valid = truth >= 0
            symbol_hits += int(((symbols_of(images).cpu() == truth) & valid).sum())
            symbol_total += int(valid.sum())
    metrics: dict[str, Any] = {f"{prefix}_accuracy": correct / len(data)}
    if search > 1:
        metrics[f"{prefix}_search_accuracy"] = searched / len(data)
    if symbol_total:
        metrics[f"{prefix}_symbol_accuracy"] = symbol_hits / symbol_total
    return metrics


@torch.no_grad()
def marginal_accuracy(model: torch.nn.Module, layer: BlackBox, data: TaskData, device: torch.device,
                      budget: int) -> float:
    """Accuracy of marginal decoding: each example's most probable output, argmax over y of p(y), exact
    when the input space has at most ``budget`` tuples, else estimated from ``budget`` draws
    (``BlackBox.predict(marginal=budget)``; its own generator, so training's draws are untouched)."""
    model.eval()
    output = layer.program.output
    correct = 0
    chunk = max(1, min(256, 2**22 // budget))  # an exact sum holds [chunk, budget, inputs] scores at once
    for rows in torch.arange(len(data)).split(chunk):
        predicted = layer.predict(*model(data.images(rows).to(device)), marginal=budget)
        correct += sum(_same(output, p, y) for p, y in zip(predicted, data.label_values(rows), strict=True))
    return correct / len(data)


def _same(space: Any, predicted: Any, label: Any) -> bool:
    if predicted is None:
        return False
    try:
        return bool(space.index(predicted) == space.index(label))
    except OutputSpaceError:
        return False


def _save_to(path: Path | None, state: dict[str, Any]) -> Path:
    """Save a checkpoint at ``path``, or (a run without one, stopped by Ctrl-C) at a new temporary file."""
    if path is None:
        handle, name = tempfile.mkstemp(prefix="blackprop-interrupted-", suffix=".pt")
        os.close(handle)
        path = Path(name)
    ckpt.save(path, state)
    return path


def _resume_hint(saved: Path, path: Path | None, where: str) -> str:
    again = "the same command" if path is not None else f"the same command with --checkpoint {saved}"
    return f"interrupted ({where}); the run is saved in {saved}: {again} resumes it where it stopped"


def _then(seen: list[Any] | None, current: Any) -> list[Any]:
    """What a resumed run trained under so far (a checkpoint's list, None before it kept one), then
    ``current`` unless it is already the last: ``_then(["a"], "b") == ["a", "b"]``, ``_then(["a"], "a") == ["a"]``."""
    seen = seen or [current]
    return seen if seen[-1] == current else [*seen, current]


@functools.cache
def processor(device: torch.device | str = "cpu") -> str:
    """The hardware a run computed on, as a row records it: the CPU's model and the instruction set
    torch dispatches to (for example ``"AMD EPYC, AVX512"``), and the GPU's name on a CUDA device.

    A fixed seed gives the same figures on one kind of machine only: the kernels torch and MKL pick for
    AVX2 and AVX512 sum in different orders, so a run repeated on another CPU differs from the first
    epoch on in the last digits of its loss, and its accuracies in the tenths.
    """
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    described = f"{model}, {torch.backends.cpu.get_cpu_capability()}"
    device = torch.device(device)
    if device.type == "cuda":
        described += f"; {torch.cuda.get_device_name(device)}"
    return described


@functools.cache
def git_commit() -> str | None:
    """The short commit of the package's source tree, or None outside a git checkout: read once per
    process, at the first call, since a process runs the code it imported then, whatever the checkout
    holds later (``blackprop bench`` reads it before its workers fork, so they inherit it)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
