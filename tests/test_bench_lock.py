"""Two grids sharing a results file never train the same run at once (``bench.run_grid``'s lock files)."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys

import pytest

from blackprop.bench import acquire, run_grid, run_key
from blackprop.tasks import get_task
from blackprop.train import RunConfig


@pytest.fixture
def other_process():
    """A live process that is not this one."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def lock_of(config: RunConfig, out) -> tuple[str, object]:
    key = run_key(dataclasses.asdict(config.resolved(get_task(config.task))))
    run_id = hashlib.sha1(key.encode()).hexdigest()[:16]
    return key, out.with_name(out.name + ".ckpt") / f"{run_id}.lock"


def test_acquire_refuses_a_live_holder_and_takes_over_from_a_dead_one(tmp_path, other_process):
    lock = tmp_path / "run.lock"
    assert acquire(lock) and lock.read_text() == str(__import__("os").getpid())
    lock.write_text(str(other_process.pid))
    assert not acquire(lock)
    assert lock.read_text() == str(other_process.pid)  # left alone
    other_process.kill()
    other_process.wait()
    assert acquire(lock)  # the holder is gone: taken over


def test_run_grid_skips_a_run_locked_by_another_process(tmp_path, other_process):
    out = tmp_path / "grid.jsonl"
    config = RunConfig(task="sum2", method="ised", seed=0, epochs=1, train_size=16, test_size=16)
    _, lock = lock_of(config, out)
    lock.parent.mkdir(parents=True)
    lock.write_text(str(other_process.pid))
    lines: list[str] = []
    assert run_grid([config], out, log=lines.append) == []
    assert lines == [f"skip (running in process {other_process.pid}): sum2 ised seed 0"]
    assert not out.exists() and lock.exists()


def test_run_grid_rereads_the_results_file_before_each_run(tmp_path):
    out = tmp_path / "grid.jsonl"
    first, second = (RunConfig(task="sum2", method="ised", seed=seed, epochs=1, train_size=16, test_size=16)
                     for seed in (0, 1))
    (first_key, _), (second_key, second_lock) = lock_of(first, out), lock_of(second, out)
    out.write_text(first_key + "\n")  # rows with these identities, as another grid would write them
    lines: list[str] = []

    def log(line: str) -> None:  # while this grid skips the first run, another one finishes the second
        lines.append(line)
        with open(out, "a") as f:
            f.write(second_key + "\n")

    assert run_grid([first, second], out, log=log) == []
    assert lines == ["skip (done): sum2 ised seed 0", "skip (done): sum2 ised seed 1"]
    assert not second_lock.exists()
