"""``blackprop bench``: a study's spec runs, resumes, and runs in parallel workers with one writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blackprop.cli import main
from blackprop.run import RunConfig
from blackprop.run.grid import _driver_lock, finished, run_grid, why_rerun
from blackprop.run.spec import load_study

SRC = str(Path(__file__).resolve().parents[1] / "src")
SPEC = """
title = "tiny"

[[grid]]
name = "tiny"
tasks = ["not-3-or-4"]
methods = ["exact", {method = "ised", settings = {dedup = true, weights = "probability"}}]
seeds = [0, 1]
recipe = {epochs = 1, train_size = 32, valid_size = 16, test_size = 16, threads = 1}

[[grid.override]]
methods = ["ised"]
recipe = {lr = 0.002}
"""


@pytest.fixture
def study(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "spec.toml").write_text(SPEC)
    return folder


def test_spec_expands_methods_settings_and_overrides(study):
    configs = [c for _, c in load_study(study).configs()]
    assert [(c.method, c.seed, c.lr) for c in configs] == [("exact", 0, None), ("ised", 0, 0.002),
                                                           ("exact", 1, None), ("ised", 1, 0.002)]
    assert configs[1].estimator_settings == {"dedup": True, "weights": "probability"} and configs[1].valid_size == 16


def test_bad_spec_names_the_field(study):
    (study / "spec.toml").write_text(SPEC.replace("threads = 1", "threads = 1, epoch = 3"))
    with pytest.raises(ValueError, match=r"grid 'tiny': unknown recipe field\(s\) epoch; valid: epochs"):
        load_study(study)
    assert main(["bench", str(study.parent / "missing")]) == 2


def test_bench_grids_runs_only_the_named_grids(study, capsys):
    second = SPEC.split("[[grid.override]]")[0].replace('name = "tiny"', 'name = "other"').split("\n\n", 1)[1]
    (study / "spec.toml").write_text(SPEC + "\n" + second.replace("seeds = [0, 1]", "seeds = [5]"))
    assert [g.name for g in load_study(study).grids] == ["tiny", "other"]
    assert main(["bench", str(study), "--grids", "tiny,otter"]) == 2  # a typo runs nothing
    assert "no grid 'otter' (did you mean 'other'?); its grids: tiny, other" in capsys.readouterr().err
    assert not (study / "results.jsonl").exists()
    assert main(["bench", str(study), "--grids", "other"]) == 0
    rows = [json.loads(line) for line in (study / "results.jsonl").read_text().splitlines()]
    assert sorted((r["grid"], r["method"], r["seed"]) for r in rows) == [("other", "exact", 5), ("other", "ised", 5)]


def test_study_runs_in_two_workers_resumes_and_reports(study, capsys):
    assert main(["bench", str(study), "--workers", "2"]) == 0
    rows = [json.loads(line) for line in (study / "results.jsonl").read_text().splitlines()]
    assert sorted((r["method"], r["seed"]) for r in rows) == [("exact", 0), ("exact", 1), ("ised", 0), ("ised", 1)]
    for row in rows:  # provenance of every new row
        assert "_checkpoint" not in row
        assert row["grid"] == "tiny" and row["spec"].endswith("tiny/spec.toml")
        assert row["threads"] == 1 and row["torch"] and row["device"] == "cpu" and "data_source" in row
        assert 0 <= row["valid_accuracy"] <= 1 and 0 <= row["test_accuracy"] <= 1 and row["valid_size"] == 16
    assert [r["estimator"]["dedup"] for r in rows if r["method"] == "ised"] == [True, True]
    epochs = (study / "epochs.jsonl").read_text().splitlines()
    assert len(epochs) == 4 and all("valid_accuracy" in json.loads(e) for e in epochs)
    assert not list((study / "checkpoints").glob("*.pt"))  # finished runs leave no checkpoint
    assert main(["bench", str(study)]) == 0  # all done: nothing appended
    assert len((study / "results.jsonl").read_text().splitlines()) == 4
    assert "skip (done): not-3-or-4 exact seed 1" in capsys.readouterr().out
    assert main(["report", str(study)]) == 0
    text = (study / "report.md").read_text()
    assert "Validation accuracy (%)" in text
    assert "| ised (dedup=True, epochs=1, lr=0.002, test_size=16, train_size=32, weights=probability) | " in text
    assert "| exact (epochs=1, test_size=16, train_size=32) | " in text and " (2) [98.08] |" in text
    assert (study / "plots" / "tiny_not-3-or-4.png").exists()


def test_a_row_that_no_longer_stands_for_its_run_is_run_again(study, capsys):
    """A row from before the validation split, or built by other estimator defaults, is not 'done'."""
    (study / "spec.toml").write_text(SPEC.replace("seeds = [0, 1]", "seeds = [0]"))
    assert main(["bench", str(study)]) == 0
    rows = [json.loads(line) for line in (study / "results.jsonl").read_text().splitlines()]
    ised = next(r for r in rows if r["method"] == "ised")
    assert why_rerun(ised, ised["estimator"]) is None
    assert "weights 'probability' -> 'importance'" in why_rerun(ised, {**ised["estimator"], "weights": "importance"})
    assert why_rerun(ised, {**ised["estimator"], "new_option": 1}) is None  # an option the row predates
    old = {k: v for k, v in ised.items() if k != "valid_accuracy"}
    edited = {**next(r for r in rows if r["method"] == "exact"), "estimator": {"name": "exact", "max_tuples": 7}}
    (study / "results.jsonl").write_text(json.dumps(old) + "\n" + json.dumps(edited) + "\n")
    capsys.readouterr()
    assert main(["bench", str(study)]) == 0
    out = capsys.readouterr().out
    assert "run again: not-3-or-4 ised seed 0: its row has no validation accuracy" in out
    assert "run again: not-3-or-4 exact seed 0: its row's estimator differs: max_tuples 7 -> " in out
    assert len((study / "results.jsonl").read_text().splitlines()) == 4  # the old rows stay, the new appended
    assert main(["bench", str(study)]) == 0
    assert out.count("run again") == 2 and "run again" not in capsys.readouterr().out


def test_dry_run_lists_what_would_train_and_trains_nothing(study, capsys):
    (study / "spec.toml").write_text(SPEC.replace("seeds = [0, 1]", "seeds = [0]"))
    assert main(["bench", str(study), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would run: not-3-or-4 exact seed 0" in out and "would run: not-3-or-4 ised seed 0" in out
    assert "dry run: 2 of 2 runs would train" in out and not (study / "results.jsonl").exists()
    assert main(["bench", str(study)]) == 0
    rows = (study / "results.jsonl").read_text().splitlines()
    exact = json.loads(rows[0] if '"exact"' in rows[0] else rows[1])
    capsys.readouterr()
    (study / "results.jsonl").write_text(next(r for r in rows if '"ised"' in r) + "\n" + json.dumps(
        {**exact, "estimator": {"name": "exact", "max_tuples": 7}}) + "\n")
    assert main(["bench", str(study), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "skip (done): not-3-or-4 ised seed 0" in out and "dry run: 1 of 2 runs would train" in out
    assert "run again: not-3-or-4 exact seed 0: its row's estimator differs: max_tuples 7 -> " in out
    assert len((study / "results.jsonl").read_text().splitlines()) == 2


def test_a_second_driver_on_the_same_results_is_refused(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        results = tmp_path / "results.jsonl"
        (tmp_path / "results.jsonl.lock").write_text(str(other.pid))
        with pytest.raises(RuntimeError, match=f"is being written by process {other.pid}"):
            run_grid([(None, RunConfig(task="sum2", epochs=1, train_size=8, test_size=8))], results, record={},
                     log=lambda line: None)
    finally:
        other.kill()
        other.wait()
    with _driver_lock(results):  # the holder is gone: taken over
        assert (tmp_path / "results.jsonl.lock").read_text().strip().isdigit()
    assert finished(results) == {}


def test_study_runs_on_a_dask_cluster(study):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        assert main(["bench", str(study), "--cluster", cluster.scheduler_address]) == 0
    rows = [json.loads(line) for line in (study / "results.jsonl").read_text().splitlines()]
    assert sorted((r["method"], r["seed"]) for r in rows) == [("exact", 0), ("exact", 1), ("ised", 0), ("ised", 1)]
    assert all(r["grid"] == "tiny" and 0 <= r["test_accuracy"] <= 1 for r in rows)


def test_an_archived_study_trains_nothing_and_still_reports(study, capsys):
    (study / "spec.toml").write_text(SPEC.replace('title = "tiny"', 'title = "tiny"\narchived = "rows of an older library"'))
    assert load_study(study).archived == "rows of an older library"
    for extra in ([], ["--dry-run"]):
        assert main(["bench", str(study), *extra]) == 2
        assert "is archived, so nothing trains: rows of an older library" in capsys.readouterr().err
    assert not (study / "results.jsonl").exists()
    (study / "results.jsonl").write_text("")
    assert main(["report", str(study)]) == 0 and (study / "report.md").exists()
    (study / "spec.toml").write_text(SPEC.replace('title = "tiny"', 'title = "tiny"\narchived = true'))
    with pytest.raises(ValueError, match="archived = True: give the reason as text"):
        load_study(study)


def test_the_legacy_studies_are_archived():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "experiments"
    for name in ("mnist_r", "ablations"):
        assert "before the validation split" in (load_study(root / name, check_runs=False).archived or "")


def test_ctrl_c_stops_a_two_worker_bench_and_loses_nothing(study):
    """Ctrl-C in the terminal (SIGINT to the process group) stops the runs under way at a step, with
    their checkpoints, starts no other run, and the same command then finishes every run once."""
    (study / "spec.toml").write_text(SPEC.replace("seeds = [0, 1]", "seeds = [0, 1, 2, 3]")
                                     .replace("epochs = 1, train_size = 32", "epochs = 3, train_size = 512"))
    command = [sys.executable, "-m", "blackprop.cli", "bench", str(study), "--workers", "2"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                               env=env)
    epochs, results = study / "epochs.jsonl", study / "results.jsonl"
    deadline = time.monotonic() + 120
    while not (epochs.exists() and epochs.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the grid ended before the first epoch could be seen"
    finished_before = len(results.read_text().splitlines()) if results.exists() else 0
    os.killpg(process.pid, signal.SIGINT)  # as a Ctrl-C in the terminal would
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err.decode()[-2000:]
    started = [line for line in out.decode().splitlines() if line.startswith("run: ")]
    assert len(started) <= finished_before + 2 < 8  # the two under way, and none after the Ctrl-C
    rows = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    saved = list((study / "checkpoints").glob("*.pt"))
    assert len(rows) + len(saved) == len(started)  # every run that started has its row or its checkpoint
    assert main(["bench", str(study), "--workers", "2"]) == 0
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted((r["method"], r["seed"]) for r in rows) == sorted(
        (m, s) for m in ("exact", "ised") for s in range(4))  # each run once
    assert not list((study / "checkpoints").glob("*.pt"))


CLUSTER_DRIVER = """
import sys
import distributed
from blackprop.cli import main
if __name__ == "__main__":
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        code = main(["bench", sys.argv[1], "--cluster", cluster.scheduler_address])
    sys.exit(code)
"""


def test_ctrl_c_stops_a_cluster_bench_at_a_step_and_loses_nothing(study):
    """On a dask cluster no signal reaches the workers: the driver's Ctrl-C sets a cluster-wide event,
    and the runs under way stop at their next step with a checkpoint, as they do in local workers."""
    pytest.importorskip("distributed")
    # runs of about 2.5 s an epoch (one thread alone): a run polls the event every 2 s, and after the first
    # epoch seen, two remain, so no run can end before it is asked to stop
    (study / "spec.toml").write_text(SPEC
                                     .replace("epochs = 1, train_size = 32", "epochs = 3, train_size = 2048"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-c", CLUSTER_DRIVER, str(study)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True, env=env)
    epochs, results = study / "epochs.jsonl", study / "results.jsonl"
    deadline = time.monotonic() + 120
    while not (epochs.exists() and epochs.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the grid ended before the first epoch could be seen"
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err.decode()[-2000:]
    rows = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    saved = list((study / "checkpoints").glob("*.pt"))
    stopped = [line for line in out.decode().splitlines() if line.startswith("stopped: ")]
    assert saved and len(stopped) == len(saved) and len(rows) + len(saved) <= 2  # no run started after the Ctrl-C
    assert all(", step " in line for line in stopped)  # within an epoch, not at its end
    assert main(["bench", str(study)]) == 0
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted((r["method"], r["seed"]) for r in rows) == sorted(
        (m, s) for m in ("exact", "ised") for s in range(2))  # each run once
    assert not list((study / "checkpoints").glob("*.pt"))
