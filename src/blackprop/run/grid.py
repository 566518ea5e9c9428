"""Run a grid of runs, resuming: the engine behind ``blackprop bench``.

    blackprop bench experiments/ised_default                  # the study's spec, one run at a time
    blackprop bench experiments/ised_default --workers 2      # two local worker processes
    blackprop bench experiments/ised_default --cluster tcp://10.0.0.5:8786   # a dask cluster's workers

A run is skipped when a row with its identity (``blackprop.run.config.identity``) is in the results
file, so a re-run continues the grid, unless that row no longer stands for the run: it has no
validation accuracy (written before the validation split), or its estimator differs in a setting
from the one the run builds today (``bp.ISED()``'s defaults changed since). Such a run is trained
again, the log says why, and its new row is appended beside the old one (reports keep the newest).
Workers only train: each returns its row, and this process, the driver, appends the rows one line
at a time as runs finish (one writer, no lock files). Each worker appends its per-epoch rows to
``epochs.jsonl`` as they happen and checkpoints after every epoch under ``checkpoints/<run id>.pt``,
so an interrupted grid loses at most one epoch per run. A finished run's checkpoint is deleted and
its network kept in ``weights/<run id>.pt`` (``blackprop.run.load_model``).
A second driver on the same results file is refused while the first is alive.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .config import RunConfig, identity, make_estimator, run_id

__all__ = ["append_row", "epoch_writer", "finished", "run_grid"]

Job = tuple[str | None, RunConfig]


def finished(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Identity (as JSON) -> the rows of a results file with that identity; a line cut by a crash is ignored."""
    done: dict[str, list[Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
                done.setdefault(json.dumps(identity(row), sort_keys=True), []).append(row)
            except (json.JSONDecodeError, AttributeError):
                continue
    return done


def estimator_record(config: RunConfig) -> dict[str, Any]:
    """What a row of this config records as its ``estimator`` (name and settings, as JSON gives them back)."""
    built = make_estimator(config)
    return dict(json.loads(json.dumps({"name": built.name, **built.settings()})))


def why_rerun(row: dict[str, Any], today: dict[str, Any]) -> str | None:
    """Why a row with a run's identity does not stand for the run today, or None when it does.

    A setting the row's estimator does not record (an option added later, whose default kept the old
    behaviour) and the name (the method is part of the identity) are not compared.
    """
    if "valid_accuracy" not in row:
        return "its row has no validation accuracy (written before the validation split)"
    recorded = row.get("estimator") or {}
    changed = {k: (recorded[k], v) for k, v in today.items() if k != "name" and k in recorded and recorded[k] != v}
    if changed:
        return "its row's estimator differs: " + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in sorted(changed.items()))
    return None


def run_grid(jobs: list[Job], results: Path, *, record: dict[str, Any], workers: int = 1,
             cluster: str | None = None, log: Callable[[str], None] = print,
             dry_run: bool = False) -> list[dict[str, Any]]:
    """Train every (grid name, config) whose identity is not in ``results``; append each row as it finishes.

    ``record`` is merged into every row (the spec or command that produced it). ``dry_run``: only log
    which runs would be skipped (done), run again (and why) or run, and train nothing.
    """
    from ..tasks import get_task

    resolved = [(grid, c.resolved(get_task(c.task))) for grid, c in jobs]
    for _, config in resolved:  # a bad grid fails before its first run, not hours in
        config.validate()
        get_task(config.task).check_network(config.network)
    done = finished(results)
    todo = []
    for grid, config in resolved:
        recorded = done.get(json.dumps(identity(config), sort_keys=True), [])
        today = estimator_record(config) if recorded else {}
        reasons = [why_rerun(row, today) for row in recorded]
        if recorded and None in reasons:
            log(f"skip (done): {_name(config)}")
            continue
        if recorded:
            log(f"run again: {_name(config)}: {reasons[-1]}")
        elif dry_run:
            log(f"would run: {_name(config)}")
        checkpoint = _checkpoints(results) / f"{run_id(config)}.pt"
        weights = _weights(results) / f"{run_id(config)}.pt"
        todo.append((grid, dataclasses.replace(config, checkpoint=str(checkpoint), weights=str(weights))))
    if dry_run:
        log(f"dry run: {len(todo)} of {len(resolved)} runs would train")
        return []
    rows: list[dict[str, Any]] = []
    with _driver_lock(results):
        epochs = results.with_name("epochs.jsonl" if results.name == "results.jsonl" else results.stem + ".epochs.jsonl")
        for row in _execute(todo, epochs, workers, cluster, log):
            checkpoint = Path(row.pop("_checkpoint"))
            row.update(record)
            append_row(results, row)
            checkpoint.unlink(missing_ok=True)
            log(f"done: {row['task']} {row['method']} seed {row['seed']}: valid {row['valid_accuracy']:.4f}, "
                f"test {row['test_accuracy']:.4f} ({row['seconds']:.0f}s)")
            rows.append(row)
    return rows


def _execute(todo: list[Job], epochs: Path, workers: int, cluster: str | None,
             log: Callable[[str], None]) -> Iterator[dict[str, Any]]:
    if cluster is not None:
        yield from _execute_on_cluster(todo, epochs, cluster, log)
        return
    if workers <= 1:
        for grid, config in todo:
            log(f"run: {_name(config)}")
            yield train_one(grid, config, str(epochs))
        return
    from .train import git_commit  # imported and read here: forked workers (Linux) inherit this code and its commit

    git_commit()
    queue = list(todo)
    with ProcessPoolExecutor(max_workers=workers, initializer=_ignore_ctrl_c) as pool:
        running: set[Future[dict[str, Any]]] = set()

        def start_next() -> None:  # one run per free worker: nothing waits in the pool's own queue
            grid, config = queue.pop(0)
            log(f"run: {_name(config)}")
            running.add(pool.submit(train_one, grid, config, str(epochs)))

        for _ in range(min(workers, len(queue))):
            start_next()
        try:
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    row = future.result()  # a run stopped by Ctrl-C raises TrainingInterrupted here
                    running.discard(future)
                    if queue:
                        start_next()
                    yield row
        except KeyboardInterrupt:  # Ctrl-C (the driver's, or a worker's run stopped by it): start no other run
            queue.clear()
            for future in list(running):  # the runs under way: a finished one keeps its row
                try:
                    row = future.result()
                except KeyboardInterrupt:  # stopped at a step with a checkpoint: the same command resumes it
                    continue
                yield row
            raise
        finally:
            queue.clear()  # however the loop ends (the consumer stopped too): no other run starts


def _execute_on_cluster(todo: list[Job], epochs: Path, cluster: str,
                        log: Callable[[str], None]) -> Iterator[dict[str, Any]]:
    """Every run as a task on a dask cluster's workers. A Ctrl-C of this driver sets a cluster-wide
    event: each run under way stops at its next step with a checkpoint (as a local Ctrl-C would), a run
    not yet started does not start, and the rows of runs that finished meanwhile are kept."""
    import uuid

    from distributed import Client, Event
    from distributed import as_completed as dask_completed

    with Client(cluster) as client:
        stop = Event(f"blackprop-bench-stop-{uuid.uuid4().hex}", client=client)
        futures = [client.submit(_train_on_worker, grid, config, str(epochs), stop.name, pure=False)
                   for grid, config in todo]
        collected: set[str] = set()
        try:
            for future in dask_completed(futures):
                collected.add(future.key)
                yield future.result()
        except KeyboardInterrupt:
            log("Ctrl-C: the cluster's runs under way stop at their next step with a checkpoint; no other run "
                "starts (Ctrl-C again to leave them running)")
            stop.set()
            for future in dask_completed([f for f in futures if f.key not in collected]):
                row = future.result()
                if "_stopped" not in row:
                    yield row
                elif row["_stopped"]:
                    log(f"stopped: {row['_stopped']}")
            raise
        finally:
            stop.set()  # however the loop ends (the consumer stopped too): no other run starts


def _train_on_worker(grid: str | None, config: RunConfig, epochs: str, stop_event: str) -> dict[str, Any]:
    """``train_one`` as a dask task, stopped when the driver sets the event named ``stop_event``: returns
    ``{"_stopped": message}`` (empty for a run that never started) instead of raising the interrupt,
    since a ``KeyboardInterrupt`` raised in a task takes its dask worker down."""
    from distributed import Event

    from .interrupt import TrainingInterrupted

    stop = Event(stop_event)
    if stop.is_set():
        return {"_stopped": ""}
    try:
        return train_one(grid, config, epochs, stop_when=stop.is_set)
    except TrainingInterrupted as stopped:
        return {"_stopped": f"{_name(config)}: {stopped}"}


def _ignore_ctrl_c() -> None:
    """A worker between runs ignores Ctrl-C (it would die and break the pool); during a run,
    ``deferred_interrupt`` handles it, stopping the run at a step with a checkpoint."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def train_one(grid: str | None, config: RunConfig, epochs: str,
              stop_when: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Train one run (in any process); its epochs are appended to ``epochs`` as they finish."""
    from .train import train

    tag = {"run": run_id(config), "task": config.task, "method": config.method, "seed": config.seed}
    row = train(config, on_epoch=epoch_writer(Path(epochs), tag), stop_when=stop_when)
    return {**({"grid": grid} if grid else {}), **row, "_checkpoint": config.checkpoint}


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one JSON line and fsync; a line cut by an earlier crash is ended first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(f.tell() - 1)
            if f.read(1) != "\n":
                f.write("\n")
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def epoch_writer(path: Path, ident: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """A callback appending each epoch's metrics, tagged with ``ident``, as one JSON line to ``path``."""

    def write(row: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:  # one short line per write: appends from several workers stay whole
            f.write(json.dumps({**ident, **row}) + "\n")

    return write


@contextmanager
def _driver_lock(results: Path) -> Iterator[None]:
    lock = results.with_name(results.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            with open(lock, "x") as f:
                f.write(str(os.getpid()))
            break
        except FileExistsError:
            pid = _holder(lock)
            if pid and pid != os.getpid() and _alive(pid):
                raise RuntimeError(f"{results} is being written by process {pid} (blackprop bench); wait for it, "
                                   f"or stop it; remove {lock} if that process is not a blackprop bench") from None
            lock.unlink(missing_ok=True)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _holder(lock: Path) -> int:
    try:
        return int(lock.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _weights(results: Path) -> Path:
    """Where finished runs keep their networks: a study's ``weights/``, or ``<results file>.weights/``."""
    return results.parent / "weights" if results.name == "results.jsonl" else results.with_name(results.name + ".weights")


def _checkpoints(results: Path) -> Path:
    """A study's ``checkpoints/`` folder, or ``<results file>.ckpt/`` for a results file outside a study."""
    return results.parent / "checkpoints" if results.name == "results.jsonl" else results.with_name(results.name + ".ckpt")


def _name(config: RunConfig) -> str:
    return f"{config.task} {config.method} seed {config.seed}"
