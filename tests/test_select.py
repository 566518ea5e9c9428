"""``select="best-valid"``: the test set scores the weights of the epoch with the highest validation
accuracy; the choice survives a checkpoint, and the training itself is the same run. The network
that scored the test set is saved (``--save-weights``, a grid's ``weights/``) and rebuilt by
``load_model``."""

from __future__ import annotations

import json

import pytest
import torch

import blackprop as bp
from blackprop.cli import main
from blackprop.run import load_model
from blackprop.run.config import run_id
from blackprop.run.train import evaluate
from blackprop.tasks import get_task

# at lr 2e-3 this small sum2 run peaks on validation at epoch 7 of 8 (0.72, then 0.60): pinned below
RUN = ["train", "sum2", "--train-size", "300", "--valid-size", "100", "--test-size", "100", "--lr", "2e-3",
       "--lr-schedule", "constant", "--threads", "1", "--quiet"]


def run(tmp_path, name: str, *argv: str) -> dict:
    out = tmp_path / f"{name}.json"
    assert main([*RUN, *argv, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_best_valid_scores_the_test_set_on_the_best_epochs_weights(tmp_path):
    best = run(tmp_path, "best", "--epochs", "8", "--select", "best-valid")
    last = run(tmp_path, "last", "--epochs", "8")
    curve = [h["valid_accuracy"] for h in best["history"]]
    assert curve == [h["valid_accuracy"] for h in last["history"]]  # selection does not touch training
    assert best["selected_epoch"] == curve.index(max(curve)) + 1 == 7  # the first epoch at the maximum
    assert best["valid_accuracy"] == max(curve) > last["valid_accuracy"]
    # the same weights as a run that stopped at that epoch (constant lr: its first epochs are the same)
    stopped = run(tmp_path, "stopped", "--epochs", str(best["selected_epoch"]))
    for key in ("test_accuracy", "symbol_accuracy", "valid_accuracy"):
        assert best[key] == stopped[key]
    assert best["test_accuracy"] != last["test_accuracy"]
    assert best["select"] == "best-valid" and "select" not in last


def test_the_best_epoch_is_kept_in_the_checkpoint(tmp_path):
    checkpoint = str(tmp_path / "run.pt")
    first = run(tmp_path, "first", "--epochs", "7", "--select", "best-valid", "--checkpoint", checkpoint)
    assert first["selected_epoch"] == 7
    extended = run(tmp_path, "extended", "--epochs", "8", "--select", "best-valid", "--checkpoint", checkpoint)
    whole = run(tmp_path, "whole", "--epochs", "8", "--select", "best-valid")
    for key in ("selected_epoch", "test_accuracy", "valid_accuracy", "symbol_accuracy"):
        assert extended[key] == whole[key]
    # the run's identity includes the selection: the same checkpoint is refused for another one
    assert main([*RUN, "--epochs", "8", "--select", "last", "--checkpoint", checkpoint]) != 0


def test_select_rejects_unknown_choices():
    with pytest.raises(SystemExit) as error:
        main([*RUN, "--select", "best"])
    assert error.value.code == 2


def test_saved_weights_rebuild_the_network_that_scored_the_test_set(tmp_path):
    weights = tmp_path / "w" / "net.pt"
    best = run(tmp_path, "best", "--epochs", "8", "--select", "best-valid", "--save-weights", str(weights))
    model = load_model(weights)
    assert not model.training
    task = get_task("sum2")
    layer = bp.BlackBox(task.make_program(), bp.ISED())
    scores = evaluate(model, layer, task.data("test", 100), torch.device("cpu"))
    assert scores["test_accuracy"] == best["test_accuracy"]  # the selected epoch's weights, not the last's
    assert scores["test_symbol_accuracy"] == best["symbol_accuracy"]
    with pytest.raises(ValueError, match="holds no saved network"):
        torch.save({"model": {}}, tmp_path / "not.pt")
        load_model(tmp_path / "not.pt")


def test_bench_keeps_each_finished_runs_network(tmp_path):
    out = tmp_path / "grid.jsonl"
    assert main(["bench", "--tasks", "sum2", "--methods", "ised", "--seeds", "0", "--epochs", "1", "--train-size",
                 "64", "--valid-size", "32", "--test-size", "32", "--threads", "1", "--quiet", "--out", str(out)]) == 0
    row = json.loads(out.read_text().splitlines()[0])
    kept = tmp_path / "grid.jsonl.weights" / f"{run_id(row)}.pt"
    assert kept.exists() and not list((tmp_path / "grid.jsonl.ckpt").glob("*.pt"))
    assert load_model(kept).training is False


def test_evaluate_scores_a_saved_network_again_with_another_decoding(tmp_path, capsys):
    weights = tmp_path / "net.pt"
    row = run(tmp_path, "row", "--epochs", "2", "--save-weights", str(weights))
    capsys.readouterr()
    assert main(["evaluate", str(weights), "--split", "test", "--size", "100", "--marginal", "100"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["test_accuracy"] == row["test_accuracy"] and again["test_symbol_accuracy"] == row["symbol_accuracy"]
    assert 0 < again["test_marginal_accuracy"] <= 1 and again["size"] == 100
    assert main(["evaluate", str(weights), "--size", "300"]) == 0  # the validation split by default
    valid = json.loads(capsys.readouterr().out)
    assert valid["split"] == "valid" and "valid_accuracy" in valid
    assert main(["evaluate", str(tmp_path / "missing.pt")]) == 2
    assert "cannot read weights" in capsys.readouterr().err
    assert main(["evaluate", str(weights), "--marginal", "-1"]) == 2
