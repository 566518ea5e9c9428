"""A row records the commit of the code the run imported: the commit is read when the run starts, so a
commit made while a long run trains (rows of other runs, notes) is not written into its row."""

from __future__ import annotations

import importlib

from blackprop.run.config import RunConfig

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
