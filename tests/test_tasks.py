"""MNIST-R tasks: labels from an independent formula, data fixed by the task seed, a learning smoke test."""

from __future__ import annotations

import json

import pytest
import torch

from blackprop.cli import main
from blackprop.run import RunConfig, train
from blackprop.tasks import MNIST_R, get_task

# Each task's label written independently of the task module, on a [N, n] tensor of true digits.
INDEPENDENT = {
    "sum2": lambda d: d.sum(1),
    "sum3": lambda d: d.sum(1),
    "sum4": lambda d: d.sum(1),
    "mult2": lambda d: d[:, 0] * d[:, 1],
    "mod2": lambda d: torch.remainder(d[:, 0], d[:, 1] + 1),
    "add-mod-3": lambda d: (d[:, 0] + d[:, 1]) % 3,
    "add-sub": lambda d: d[:, 0] + d[:, 1] - d[:, 2],
    "less-than": lambda d: d[:, 0] < d[:, 1],
    "equal": lambda d: d[:, 0] == d[:, 1],
    "not-3-or-4": lambda d: (d[:, 0] != 3) & (d[:, 0] != 4),
    "count-3-4": lambda d: ((d == 3) | (d == 4)).sum(1),
}


def test_all_eleven_tasks_are_registered():
    assert sorted(MNIST_R) == sorted(INDEPENDENT)


@pytest.mark.parametrize("name", sorted(INDEPENDENT))
def test_program_on_true_digits_reproduces_labels(name):
    task = get_task(name)
    data = task.data("test", 300)
    expected = INDEPENDENT[name](data.symbols).tolist()
    assert data.labels == expected
    program = task.make_program()
    assert program.evaluate(data.symbols).tolist() == [program.output.index(v) for v in expected]
    # the images really are of those digits
    pool_labels = __import__("blackprop.data.mnist", fromlist=["mnist_pool"]).mnist_pool("test")[1]
    assert torch.equal(pool_labels[data.index], data.symbols)


def test_data_is_class_balanced():
    data = get_task("count-3-4").data("train", 2000)
    counts = torch.bincount(data.symbols.flatten(), minlength=10).float()
    assert (counts / counts.sum() - 0.1).abs().max() < 0.01  # 16,000 digits: sd of a share is 0.0024


def test_same_task_seed_same_data_whatever_the_global_seed():
    torch.manual_seed(1)
    first = get_task("sum3").data("train", 50)
    torch.manual_seed(2)
    import random

    import numpy as np

    random.seed(5)
    np.random.seed(5)
    second = get_task("sum3").data("train", 50)
    assert torch.equal(first.index, second.index) and first.labels == second.labels
    assert not torch.equal(get_task("sum3").data("test", 50).index, first.index)


def test_sum_n_for_any_n():
    task = get_task("sum16")
    assert task.family == "sum-n" and task.defaults.num_samples == 160 and task.defaults.train_size == 3750
    assert task.make_program().output.size == 145
    with pytest.raises(ValueError, match="unknown task 'sum'"):
        get_task("sum")


def test_learning_smoke_sum2():
    """1,500 pairs, one epoch at lr 1e-3: ISED must be far above chance (chance is ~10%). Two digits span
    100 tuples, within k = 100: the default evaluates each once per batch (exact p(y)), not 100 draws an example."""
    result = train(RunConfig(task="sum2", epochs=1, lr=1e-3, lr_schedule="constant", train_size=1500, test_size=300,
                             threads=1, progress=False))
    assert result["test_accuracy"] > 0.6
    assert result["symbol_accuracy"] > 0.75
    assert result["program_calls"] <= 100  # each distinct digit pair runs once
    batches = -(-1500 // result["batch_size"])
    assert result["program_queries_per_example"] == round(100 * batches / 1500, 2)  # test queries not counted


def test_train_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(["train", "not-3-or-4", "--epochs", "1", "--train-size", "64", "--test-size", "32", "--seed", "0",
                 "--json", str(out), "--threads", "1", "--quiet"])
    assert code == 0
    result = json.loads(out.read_text())
    for key in ("task", "method", "seed", "epochs", "test_accuracy", "seconds", "program_calls"):
        assert key in result
    assert 0.0 <= result["test_accuracy"] <= 1.0 and result["program_calls"] == 10
    assert "test accuracy" in capsys.readouterr().out


def test_train_cli_rejects_bad_settings(capsys):
    assert main(["train", "sum2", "--epochs", "0", "--quiet"]) == 2
    assert "epochs must be an int >= 1, got 0" in capsys.readouterr().err
    assert main(["train", "sum2", "--method", "magic", "--quiet"]) == 2
    assert "unknown method 'magic'" in capsys.readouterr().err
    assert main(["train", "sum2", "--set", "normalise=l2", "--epochs", "1", "--train-size", "16", "--quiet"]) == 2
    assert "normalise" in capsys.readouterr().err


def test_bench_appends_and_resumes_and_report_renders(tmp_path):
    out = tmp_path / "grid.jsonl"
    argv = ["bench", "--tasks", "not-3-or-4", "--methods", "ised,exact", "--seeds", "0", "--epochs", "1",
            "--train-size", "48", "--test-size", "16", "--threads", "1", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["method"] for r in rows] == ["ised", "exact"]
    epochs = [json.loads(line) for line in (tmp_path / "grid.epochs.jsonl").read_text().splitlines()]
    assert [(e["method"], e["epoch"]) for e in epochs] == [("ised", 1), ("exact", 1)]
    assert main(argv) == 0  # everything done: nothing appended
    assert len(out.read_text().splitlines()) == 2
    md = tmp_path / "R.md"
    assert main(["report", str(out), "--out", str(md)]) == 0
    text = md.read_text()
    assert "| ised (epochs=1, test_size=16, train_size=48) |" in text and "[98.08]" in text and "(1)" in text
    assert "| paper, best of any method | 99.28 (reinforce) |" in text
    assert (tmp_path / "plots" / "grid_not-3-or-4.png").exists()


def test_cosine_lr_schedule_is_set_per_epoch_and_labelled(tmp_path):
    from blackprop.run import epoch_lr
    from blackprop.run import identity as run_key

    assert [epoch_lr(1e-3, "constant", e, 3) for e in range(3)] == [1e-3] * 3
    assert [round(epoch_lr(1e-3, "cosine", e, 4), 6) for e in range(4)] == [0.001, 0.000854, 0.0005, 0.000146]
    assert [round(epoch_lr(1e-3, "low-start-cosine", e, 3), 6) for e in range(3)] == [0.0001, 0.001, 0.0005]
    assert epoch_lr(1e-3, "low-start-cosine", 0, 1) == 1e-4  # one epoch: only the low start
    with pytest.raises(ValueError, match="lr_schedule must be one of constant, cosine, low-start-cosine, got 'step'"):
        RunConfig(task="sum2", lr_schedule="step").resolved(get_task("sum2")).validate()
    # rows written before the option (no lr_schedule) keep their identity; cosine rows get their own
    row = {"task": "sum2", "method": "ised", "seed": 0}
    assert run_key(row) == run_key({**row, "lr_schedule": "constant"}) != run_key({**row, "lr_schedule": "cosine"})
    out = tmp_path / "grid.jsonl"
    argv = ["bench", "--tasks", "not-3-or-4", "--methods", "ised", "--seeds", "0", "--epochs", "2", "--lr-schedule",
            "cosine", "--train-size", "32", "--test-size", "16", "--threads", "1", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    assert json.loads(out.read_text())["lr_schedule"] == "cosine"
    md = tmp_path / "R.md"
    assert main(["report", str(out), "--out", str(md), "--no-plots"]) == 0
    assert "lr_schedule=cosine" in md.read_text()
