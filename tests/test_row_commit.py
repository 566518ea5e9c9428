"""A row records the machine it ran on (CPU model and instruction set, below) and the commit of the code
the run imported: the commit is read when the run starts, so a commit made while a long run trains (rows
of other runs, notes) is not written into its row; a run resumed from its checkpoint under other code
keeps its first commit and lists them all (``commits``)."""

from __future__ import annotations

import importlib
import os
import signal

import pytest
import torch

from blackprop.run.config import RunConfig
from blackprop.run.interrupt import TrainingInterrupted

train_module = importlib.import_module("blackprop.run.train")  # the module (the package exports the function)


def test_the_row_records_the_commit_read_at_the_start(monkeypatch):
    head = {"commit": "before"}
    monkeypatch.setattr(train_module, "git_commit", lambda: head["commit"])

    def someone_commits(_epoch: dict) -> None:  # HEAD moves while the run trains
        head["commit"] = "after"

    row = train_module.train(RunConfig(task="sum2", method="ised", epochs=2, train_size=64, valid_size=32,
                                       test_size=32, threads=1, progress=False), on_epoch=someone_commits)
    assert head["commit"] == "after"  # the callback ran
    assert row["commit"] == "before"
    assert row["processor"] == train_module.processor("cpu")


def test_a_run_resumed_on_another_kind_of_cpu_lists_both(monkeypatch, tmp_path):
    machine = {"name": "cpu A, AVX2"}
    monkeypatch.setattr(train_module, "processor", lambda device="cpu": machine["name"])
    config = RunConfig(task="sum2", method="ised", epochs=2, train_size=64, valid_size=32, test_size=32, threads=1,
                       progress=False, checkpoint=str(tmp_path / "run.pt"))

    def ctrl_c_after_the_first_epoch(row: dict) -> None:
        if row["epoch"] == 1:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted):
        train_module.train(config, on_epoch=ctrl_c_after_the_first_epoch)
    machine["name"] = "cpu B, AVX512"  # the checkpoint was copied to another machine
    row = train_module.train(config)
    assert row["processor"] == "cpu A, AVX2"
    assert row["processors"] == ["cpu A, AVX2", "cpu B, AVX512"]


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="reads the model from Linux's /proc/cpuinfo")
def test_the_row_names_the_processor_and_the_instruction_set_torch_uses():
    """A fixed seed repeats its figures on one kind of CPU only (AVX2 and AVX512 kernels sum in other
    orders), so a row names both: the model as the kernel reports it, and torch's dispatch level."""
    described = train_module.processor("cpu")
    capability = torch.backends.cpu.get_cpu_capability()
    assert described.endswith(f", {capability}") and capability
    models = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
    assert described == f"{models[0]}, {capability}"


def test_a_resumed_run_keeps_the_commit_it_started_with_and_lists_every_commit(monkeypatch, tmp_path):
    head = {"commit": "first"}
    monkeypatch.setattr(train_module, "git_commit", lambda: head["commit"])
    config = RunConfig(task="sum2", method="ised", epochs=2, train_size=64, valid_size=32, test_size=32, threads=1,
                       progress=False, checkpoint=str(tmp_path / "run.pt"))

    def ctrl_c_after_the_first_epoch(row: dict) -> None:
        if row["epoch"] == 1:
            os.kill(os.getpid(), signal.SIGINT)  # as a Ctrl-C in the terminal would

    with pytest.raises(TrainingInterrupted):
        train_module.train(config, on_epoch=ctrl_c_after_the_first_epoch)
    head["commit"] = "second"  # the code changed before the run was resumed
    row = train_module.train(config)
    assert [h["epoch"] for h in row["history"]] == [1, 2]
    assert row["commit"] == "first"
    assert row["commits"] == ["first", "second"]

    head["commit"] = "first"  # a run resumed at the commit it started with lists no commits
    (tmp_path / "run.pt").unlink()
    with pytest.raises(TrainingInterrupted):
        train_module.train(config, on_epoch=ctrl_c_after_the_first_epoch)
    row = train_module.train(config)
    assert row["commit"] == "first" and "commits" not in row


def test_the_commit_is_read_once_per_process(monkeypatch):
    """A process runs the code it imported: a later HEAD (a commit made while a grid's workers train)
    is not what it runs, so the first reading stands."""
    heads = iter(["abc1234\n", "def5678\n"])

    class Done:
        def __init__(self) -> None:
            self.stdout = next(heads)

    monkeypatch.setattr(train_module.subprocess, "run", lambda *args, **kwargs: Done())
    train_module.git_commit.cache_clear()
    try:
        assert train_module.git_commit() == "abc1234"
        assert train_module.git_commit() == "abc1234"  # HEAD moved; the process's code did not
    finally:
        train_module.git_commit.cache_clear()  # the other tests read the real checkout again
