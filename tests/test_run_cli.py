"""The CLI around runs: output paths checked before training, results never lost, reports of any
results file, no writes into the working directory unless asked, and runs continued with more epochs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from blackprop.cli import main
from blackprop.run import RunConfig, train
from blackprop.run.files import save_result

TINY = ["--epochs", "1", "--train-size", "48", "--valid-size", "16", "--test-size", "16", "--threads", "1", "--quiet"]


@pytest.mark.parametrize("flag", ["--json", "--metrics", "--checkpoint"])
def test_unwritable_destination_fails_before_training(flag, capsys):
    code = main(["train", "sum2", *TINY, flag, "/dev/null/folder/out"])
    out, err = capsys.readouterr()
    assert code == 2 and f"{flag} /dev/null/folder/out: cannot write there" in err and "pick a writable path" in err
    assert "epoch 1" not in out  # refused before the first epoch


def test_destination_folders_are_created_before_training(tmp_path):
    out = tmp_path / "new" / "deeper" / "run.json"
    assert main(["train", "sum2", *TINY, "--json", str(out), "--metrics", str(tmp_path / "m" / "epochs.jsonl")]) == 0
    result = json.loads(out.read_text())
    assert result["task"] == "sum2" and result["command"].startswith("blackprop train sum2")
    assert 0 <= result["valid_accuracy"] <= 1 and result["valid_size"] == 16 and result["threads"] == 1
    assert len((tmp_path / "m" / "epochs.jsonl").read_text().splitlines()) == 1


def test_a_result_that_cannot_be_written_goes_beside_the_checkpoint_or_to_a_temp_file(tmp_path, capsys):
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where a folder is needed: every write below it fails
    checkpoint = tmp_path / "run.pt"
    kept = save_result({"task": "sum2", "test_accuracy": 0.5}, blocked / "out.json", checkpoint)
    assert kept == tmp_path / "run.pt.result.json" and json.loads(kept.read_text())["test_accuracy"] == 0.5
    assert f"the result is in {kept}" in capsys.readouterr().err
    kept = save_result({"task": "sum2", "test_accuracy": 0.25}, blocked / "out.json", None)
    assert json.loads(kept.read_text())["test_accuracy"] == 0.25
    assert f"the result is in {kept}" in capsys.readouterr().err
    kept.unlink()


def test_report_on_a_missing_file_is_one_line_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing.jsonl: no such file" in err
    assert main(["report", str(tmp_path / "no-study")]) == 2


def test_report_shows_the_run_train_json_wrote_and_writes_nothing_unasked(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run.json"
    assert main(["train", "sum2", *TINY, "--json", str(out)]) == 0
    accuracy = json.loads(out.read_text())["test_accuracy"]
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    assert main(["report", "run.json"]) == 0
    text = capsys.readouterr().out
    assert "| ised (epochs=1, test_size=16, train_size=48) |" in text and f"{100 * accuracy:.2f} ± 0.00 (1)" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]  # markdown went to stdout only
    assert main(["bench", "--tasks", "sum2"]) == 2  # no study and no --out: refused, nothing written
    assert "give a study folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_report_without_matplotlib_writes_the_markdown_and_says_plots_were_skipped(tmp_path, monkeypatch):
    study = tmp_path / "study"
    study.mkdir()
    (study / "spec.toml").write_text('title = "one run"\n')
    row = {"task": "sum2", "method": "ised", "seed": 0, "epochs": 1, "test_accuracy": 0.75, "seconds": 2.0,
           "program_calls": 10, "history": [{"epoch": 1, "valid_accuracy": 0.5}]}
    (study / "results.jsonl").write_text(json.dumps(row) + "\n")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    assert main(["report", str(study)]) == 0
    text = (study / "report.md").read_text()
    assert "75.00 ± 0.00 (1)" in text and "Plots skipped: matplotlib is not installed" in text
    assert not (study / "plots").exists()


def tiny(**changes) -> RunConfig:
    # a constant lr (not the MNIST-R default's low-start-cosine), so that a finished run can be extended
    settings = dict(task="sum2", epochs=1, lr=1e-4, lr_schedule="constant", train_size=48, valid_size=16, test_size=16,
                    threads=1, progress=False)
    return RunConfig(**{**settings, **changes})


def test_a_finished_run_continues_with_more_epochs_like_an_uninterrupted_run(tmp_path):
    checkpoint = str(tmp_path / "run.pt")
    first = train(tiny(checkpoint=checkpoint))
    continued = train(tiny(epochs=2, checkpoint=checkpoint))
    reference = train(tiny(epochs=2))
    assert len(first["history"]) == 1 and len(continued["history"]) == 2
    for key in ("train_loss", "valid_accuracy", "program_calls", "train_queries"):
        assert [h[key] for h in continued["history"]] == [h[key] for h in reference["history"]]
    assert continued["test_accuracy"] == reference["test_accuracy"]


def test_resuming_another_run_names_the_fields_that_differ(tmp_path):
    checkpoint = str(tmp_path / "run.pt")
    train(tiny(checkpoint=checkpoint))
    with pytest.raises(ValueError, match=r"differs in lr: 0\.0001 -> 0\.002; seed: 0 -> 1\. Pass the checkpoint's"):
        train(tiny(checkpoint=checkpoint, lr=0.002, seed=1))
    with pytest.raises(ValueError, match=r"differs in epochs: 2 -> 1 \(a run cannot be shortened"):
        train(tiny(epochs=2, checkpoint=checkpoint))
        train(tiny(epochs=1, checkpoint=checkpoint))
    cosine = str(tmp_path / "cosine.pt")
    train(tiny(checkpoint=cosine, lr_schedule="cosine"))
    with pytest.raises(ValueError, match=r"differs in epochs: 1 -> 2 \(a cosine schedule depends on the epoch count"):
        train(tiny(epochs=2, checkpoint=cosine, lr_schedule="cosine"))
    assert Path(cosine).exists()


def test_metrics_that_stop_being_writable_mid_run_go_to_a_temp_file(tmp_path, monkeypatch, capsys):
    from blackprop.run import grid

    real = grid.epoch_writer

    def failing(path, ident):
        if path.name == "epochs.jsonl":
            def write(row):
                raise OSError(28, "No space left on device")
            return write
        return real(path, ident)

    monkeypatch.setattr(grid, "epoch_writer", failing)
    out = tmp_path / "run.json"
    assert main(["train", "sum2", *TINY, "--metrics", str(tmp_path / "epochs.jsonl"), "--json", str(out)]) == 0
    err = capsys.readouterr().err
    assert "cannot append to --metrics" in err and "No space left on device" in err
    kept = Path(err.split("epochs go to ")[1].split()[0])
    assert json.loads(kept.read_text().splitlines()[0])["epoch"] == 1 and out.exists()
    kept.unlink()
