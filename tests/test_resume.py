"""Runs survive ``kill -9``: the same command resumes from the last checkpoint and finishes with the
same metrics as an uninterrupted run with the same seed.

A subprocess runs ``blackprop train sum2 --epochs 2 ...`` (or ``blackprop bench`` on the same
settings); it is killed with SIGKILL as soon as the first epoch's checkpoint file appears, then the
same command is run again to completion. Everything but wall-clock times (and the commit) must
equal the uninterrupted run, epoch by epoch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

SRC = str(Path(__file__).resolve().parents[1] / "src")
SETTINGS = ["--epochs", "2", "--train-size", "300", "--test-size", "100", "--threads", "1", "--quiet"]
TIMED = {"seconds", "commit", "command"}


def blackprop(*argv: str) -> list[str]:
    return [sys.executable, "-m", "blackprop.cli", *argv]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


def kill_when_exists(command: list[str], watched: Path, pattern: str = "") -> None:
    """Start ``command``; SIGKILL it the moment ``watched`` (or a file matching ``pattern`` in it) exists."""
    process = subprocess.Popen(command, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if (watched.is_dir() and any(watched.glob(pattern))) if pattern else watched.exists():
            break
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    _, err = process.communicate()
    assert process.returncode == -signal.SIGKILL, f"the run ended before it could be killed: {err.decode()[-2000:]}"


def comparable(result: dict) -> dict:
    """A result without wall-clock fields, per epoch too."""
    kept = {k: v for k, v in result.items() if k not in TIMED}
    kept["history"] = [{k: v for k, v in row.items() if k not in TIMED} for row in result["history"]]
    return kept


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    """The reference: the same command, run in this process without interruption."""
    from blackprop.cli import main

    folder = tmp_path_factory.mktemp("reference")
    torch.set_num_threads(1)
    code = main(["train", "sum2", *SETTINGS, "--json", str(folder / "out.json"), "--checkpoint", str(folder / "ck.pt")])
    assert code == 0
    return json.loads((folder / "out.json").read_text())


def test_train_killed_after_first_epoch_resumes_to_the_same_metrics(tmp_path, uninterrupted):
    checkpoint, out = tmp_path / "run.pt", tmp_path / "run.json"
    command = blackprop("train", "sum2", *SETTINGS, "--checkpoint", str(checkpoint), "--json", str(out))
    kill_when_exists(command, checkpoint)
    assert not out.exists()
    assert torch.load(checkpoint, weights_only=False)["epoch"] == 1  # killed during epoch 2

    finished = subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    resumed = json.loads(out.read_text())
    assert comparable(resumed) == comparable(uninterrupted)
    assert len(resumed["history"]) == 2 and resumed["history"][0]["seconds"] < resumed["history"][1]["seconds"]


@pytest.mark.slow
def test_bench_killed_mid_run_resumes_to_the_same_metrics(tmp_path, uninterrupted):
    out = tmp_path / "grid.jsonl"
    command = blackprop("bench", "--tasks", "sum2", "--methods", "ised", "--seeds", "0", *SETTINGS, "--out", str(out))
    kill_when_exists(command, out.with_name(out.name + ".ckpt"), "*.pt")
    assert not out.exists() or not out.read_text().strip()

    finished = subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    assert len(rows) == 1
    assert "_checkpoint" not in rows[0]
    assert comparable(rows[0]) == comparable(uninterrupted)
    assert not any(out.with_name(out.name + ".ckpt").glob("*.pt"))  # the finished run's checkpoint is gone
