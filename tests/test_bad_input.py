"""Bad inputs a new user gives (issue 20): each is a clear error naming the argument, the constraint,
the value and a fix, or a correct result; nothing is lost. The table of every case probed, with the
behaviour before and after: docs/bad-inputs.md.

The issue's own rows and where each is tested end to end:

| row | test |
|---|---|
| --set dedup=False parsed, recorded False | test_cli_set_dedup_false_trains_without_dedup_and_records_false (here) |
| transient failures not memoised | test_program_policy.py::test_transient_failures_are_counted_not_memoised_and_asked_again, test_llm_client.py::test_retries_exhausted_are_a_transient_failure_and_not_cached |
| every sample fails -> clear error | test_program_policy.py::test_training_on_a_program_that_always_fails_stops_with_the_reason |
| empty batch | test_estimator_defects.py::test_empty_batch_gives_zero_loss_and_zero_gradient |
| BatchedProgram raising | test_program_policy.py::test_batched_program_that_raises_fails_the_batch_and_is_counted |
| target=3 for a batch of one | test_blackbox_inputs.py::test_a_single_target_value_for_a_batch_of_one |
| seed=torch.Generator() | test_blackbox_inputs.py::test_a_generator_as_seed_is_used_as_is |
| bfloat16 softmax over 100 classes | test_blackbox_inputs.py::test_a_low_precision_softmax_over_100_classes_is_accepted |
| from_logits=True | test_blackbox_inputs.py::test_logits_are_taken_with_from_logits |
| unwritable --json/--metrics/--checkpoint | test_run_cli.py::test_unwritable_destination_fails_before_training and the two after it |
| report on a missing file | test_run_cli.py::test_report_on_a_missing_file_is_one_line_exit_2 |
| report on train --json's file | test_run_cli.py::test_report_shows_the_run_train_json_wrote_and_writes_nothing_unasked |
| report without matplotlib | test_run_cli.py::test_report_without_matplotlib_writes_the_markdown_and_says_plots_were_skipped |
| bench/report defaults | test_run_cli.py::test_report_shows_the_run_train_json_wrote_and_writes_nothing_unasked |
| resume with more epochs | test_run_cli.py::test_a_finished_run_continues_with_more_epochs_like_an_uninterrupted_run |
| MNIST offline | test_mnist_data.py::test_offline_error_is_fast_and_gives_each_reason |
| LLM client: budget variable, httpx | test_llm_client.py::test_budget_is_read_from_the_environment, ::test_requests_reuse_one_connection |
| executors on public APIs | test_faults.py (pool replacement, timeouts in workers) |
| layer state_dict | test_blackbox_inputs.py::test_a_restored_layer_draws_the_same_samples, test_program_policy.py::test_torch_save_of_a_layer_with_a_lambda_says_what_to_save_instead |
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import warnings

import numpy as np
import pytest
import torch

import blackprop as bp
from blackprop.cli import main
from blackprop.run import RunConfig, train
from blackprop.run.interrupt import TrainingInterrupted
from blackprop.run.spec import load_study
from blackprop.tasks import TaskData, carve, get_task, register, unregister

TINY = ["--epochs", "1", "--train-size", "32", "--valid-size", "16", "--test-size", "16", "--threads", "1", "--quiet"]
digit = bp.Discrete(range(10))


def _add() -> bp.Program:
    return bp.Program(lambda a, b: a + b, (digit, digit), bp.Discrete(range(19)))


def _p(batch: int = 2, classes: int = 10) -> torch.Tensor:
    return torch.softmax(torch.randn(batch, classes, generator=torch.Generator().manual_seed(batch)), -1)


def _layer(**kwargs) -> bp.BlackBox:
    return bp.BlackBox(_add(), bp.ISED(num_samples=8), seed=0, **kwargs)


# --- the row not yet tested end to end -------------------------------------------------------
def test_cli_set_dedup_false_trains_without_dedup_and_records_false(tmp_path):
    for word in ("False", "no", "0"):
        out = tmp_path / f"{word}.json"
        assert main(["train", "sum2", *TINY, "--set", f"dedup={word}", "--json", str(out)]) == 0
        row = json.loads(out.read_text())
        assert row["estimator"]["dedup"] is False and row["estimator_settings"] == {"dedup": False}


# --- probabilities ------------------------------------------------------------------------------------
def test_inputs_on_different_devices_are_named():
    with pytest.raises(ValueError, match=r"input 1: on meta but input 0 is on cpu; every input must be on one "
                                         r"device, e.g. move it with .to\('cpu'\)"):
        _layer().loss(_p(), _p().to("meta"), target=[1, 2])


def test_non_finite_logits_are_named_as_logits():
    with pytest.raises(ValueError, match="input 0: logits contain NaN or infinite values"):
        _layer(from_logits=True).loss(torch.full((2, 10), float("inf")), torch.randn(2, 10), target=[1, 2])


@pytest.mark.parametrize("value", [np.full((2, 10), 0.1), [[0.1] * 10] * 2])
def test_numpy_arrays_and_lists_say_how_to_convert(value):
    with pytest.raises(TypeError, match=r"input 0 .*expected a float tensor \[batch, 10\], got (ndarray|list); "
                                        r"convert with torch.as_tensor"):
        _layer().loss(value, _p(), target=[1, 2])


def test_integer_probabilities_say_how_to_convert():
    one_hot = torch.nn.functional.one_hot(torch.tensor([1, 2]), 10)
    with pytest.raises(TypeError, match=r"input 0: probabilities must be a float tensor, got torch.int64; convert"):
        _layer().loss(one_hot, _p(), target=[1, 2])


# --- targets ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", [None, {1: 2, 2: 3}, {1, 2}])
def test_targets_that_are_not_values_per_example_are_refused(target):
    with pytest.raises(TypeError, match=r"target: expected the output values, one per example .*got "):
        _layer().loss(_p(), _p(), target=target)


def test_a_column_of_targets_is_refused_with_its_shape():
    with pytest.raises(ValueError, match=r"target: expected one value per example, a tensor of shape \[2\], got "
                                         r"shape \[2, 1\]; flatten it"):
        _layer().loss(_p(), _p(), target=torch.tensor([[1], [2]]))


def test_whole_float_targets_are_the_int_values_and_fractions_are_refused():
    assert torch.equal(_layer().encode_target(torch.tensor([1.0, 2.0]), 2), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"target: value 2.5 is not in Discrete"):
        _layer().loss(_p(), _p(), target=[1, 2.5])


# --- seeds --------------------------------------------------------------------------------------------
def test_a_seed_outside_the_generator_range_is_refused_at_construction():
    with pytest.raises(ValueError, match=r"BlackBox\(seed=...\): expected an int in -2\*\*63..2\*\*64-1"):
        bp.BlackBox(_add(), seed=2**70)


def test_a_numpy_integer_seed_is_the_same_seed():
    a, b = bp.BlackBox(_add(), bp.ISED(num_samples=8), seed=np.int64(3)), _layer()
    b.seed = 3
    assert a.seed == 3 and type(a.seed) is int
    assert torch.equal(a(_p(), _p()), b(_p(), _p()))


# --- spaces and programs --------------------------------------------------------------------------------
def test_discrete_of_a_number_suggests_a_range():
    with pytest.raises(TypeError, match=r"Discrete\(values\): expected an iterable of symbols, got int 10; did you "
                                        r"mean Discrete\(range\(10\)\)\?"):
        bp.Discrete(10)


def test_sequence_max_len_true_is_refused():
    with pytest.raises(ValueError, match=r"max_len must be an int >= 1, got True"):
        bp.Sequence(digit, True)


def test_fractional_sequence_lengths_are_refused():
    with pytest.raises(TypeError, match=r"padded: lengths must be whole numbers .*got \[1.5, 2.0\]"):
        bp.padded(torch.softmax(torch.randn(2, 3, 10), -1), [1.5, 2.0])
    assert bp.padded(torch.softmax(torch.randn(2, 3, 10), -1), torch.tensor([1.0, 2.0])).lengths.tolist() == [1, 2]


def test_a_generator_program_fails_its_samples_and_never_grows_an_open_space():
    def pairs(a, b):
        yield a + b

    program = bp.Program(pairs, (digit, digit), bp.Open())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = program.evaluate(torch.tensor([[1, 2], [3, 4]]))
    assert out.tolist() == [-1, -1] and program.output.size == 0
    assert "is a generator, not a symbol" in program.stats.errors["outside-output"]


def test_predictions_that_all_fail_are_a_score_not_a_broken_program():
    program = bp.Program(lambda a, b: 1 / 0, (digit, digit), digit, max_failed_batches=2)
    layer = bp.BlackBox(program, bp.ISED(num_samples=4), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(5):  # evaluation of an untrained network: every argmax tuple fails
            assert layer.predict(_p(3), _p(3)) == [None, None, None]
        layer.loss(_p(), _p(), target=[1, 2])
        with pytest.raises(bp.ProgramFailedError, match=r"every sample of the last 2 evaluate calls failed"):
            layer.loss(_p(), _p(), target=[1, 2])  # training still stops


# --- estimator settings and names ------------------------------------------------------------------------
@pytest.mark.parametrize(("make", "message"), [
    (lambda: bp.ANeSI(broad_std=float("inf")), r"ANeSI\(broad_std=...\): must be a finite number, got inf"),
    (lambda: bp.NASR(eps=float("inf")), r"NASR\(eps=...\): must be a finite number, got inf"),
])
def test_infinite_settings_are_refused_for_every_estimator(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(("name", "close"), [("ISED", "ised"), ("indecater_plus", "indecater+"),
                                              ("reinforc", "reinforce"), (" exact", "exact")])
def test_a_misspelt_estimator_name_suggests_the_close_one(name, close):
    with pytest.raises(ValueError, match=rf"unknown estimator '{name}' \(did you mean '{re.escape(close)}'\?\); valid: "):
        bp.estimator(name)


# --- tasks --------------------------------------------------------------------------------------------------
def test_a_misspelt_task_suggests_the_close_one():
    with pytest.raises(ValueError, match=r"unknown task 'summ2' \(did you mean 'sum2'\?\)"):
        get_task("summ2")
    with pytest.raises(ValueError, match=r"'mnist-r' names the 11 MNIST-R tasks for bench --tasks"):
        get_task("mnist-r")


def test_a_task_factory_that_fails_is_named():
    with pytest.raises(ValueError, match=r"task 'json:loads': calling loads\(\) to build the task failed "
                                         r"\(TypeError: .*\); the attribute must be a Task or a function of no"):
        get_task("json:loads")


def test_more_examples_than_the_data_holds_are_refused():
    with pytest.raises(ValueError, match=r"train split: 11 items asked for but there are 10 photos; pass "
                                         r"--train-size 10 or less"):
        carve("train", 11, 0, 10, 0, 0, "photos")
    short = dataclasses.replace(get_task("sum2"), name="short-data", load_data=lambda split, size, seed: TaskData(
        pool=torch.zeros(4, 1, 28, 28), index=torch.arange(4).unsqueeze(1), labels=[0] * 4))
    with pytest.raises(ValueError, match=r"short-data: 9 test examples were asked for but the data gives 4; pass "
                                         r"--test-size 4 or less"):
        short.data("test", 9)


# --- the command line ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("argv", "message"), [
    (["--method", "ISED"], "--method: unknown method 'ISED' (did you mean 'ised'?); valid: "),
    (["-k", "7", "--set", "num_samples=5"], "-k/--num-samples 7 and --set num_samples=5 both give k; give one"),
    (["--llm"], "--llm: task 'sum2' has no language-model program; tasks with one: "),
])
def test_cli_mistakes_are_one_line_exit_2(capsys, argv, message):
    assert main(["train", "sum2", *TINY, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_bad_llm_budget_variable_is_named(monkeypatch):
    from blackprop.tasks.scene import make_llm_program

    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    for value in ("abc", "-1"):
        monkeypatch.setenv("BLACKPROP_LLM_BUDGET", value)
        with pytest.raises(ValueError, match=rf"BLACKPROP_LLM_BUDGET='{value}': expected a whole number of HTTP "
                                             r"requests >= 0"):
            make_llm_program()


# --- study specs: every mistake found before the first run trains ---------------------------------------------
GRID = """
[[grid]]
name = "g"
tasks = ["sum2"]
methods = ["ised"]
recipe = {epochs = 1, train_size = 16, valid_size = 8, test_size = 8}
"""


@pytest.mark.parametrize(("spec", "message"), [
    ("titel = 'x'\n" + GRID, r"spec.toml: the top level: unknown key 'titel' \(did you mean 'title'\?\)"),
    (GRID + "recipie = {epochs = 1}\n", r"spec.toml: grid 'g': unknown key 'recipie' \(did you mean 'recipe'\?\)"),
    (GRID + "[[grid.overide]]\ntasks = ['sum2']\n", r"grid 'g': unknown key 'overide' \(did you mean 'override'\?\)"),
    (GRID.replace('["ised"]', '[{method = "ised", setings = {}}]'), r"grid 'g': method 'ised': unknown key 'setings'"),
    (GRID.replace('["sum2"]', '["summ2"]'), r"grid 'g', task 'summ2', method 'ised': unknown task 'summ2' \(did you"),
    (GRID.replace('["ised"]', '["ISED"]'), r"grid 'g', task 'sum2', method 'ISED': unknown method 'ISED' \(did you"),
    (GRID + "settings = {dedupe = true}\n", r"grid 'g', task 'sum2', method 'ised': estimator 'ised': unknown "
                                            r"setting\(s\) dedupe"),
    (GRID.replace("epochs = 1", 'epochs = "1"'), r"grid 'g', task 'sum2', method 'ised': epochs must be an int >= 1"),
    (GRID + GRID.replace('"g"', '"h"') + "[[grid.override]]\nrecipe = {lr = -1}\n",
     r"grid 'h', task 'sum2', method 'ised': lr must be a number > 0, got -1"),
    ("grid = 3\n", r"spec.toml: grid must be a list of tables \(\[\[grid\]\] sections\), got 3"),
])
def test_spec_mistakes_name_the_file_and_the_key_before_training(tmp_path, capsys, spec, message):
    (tmp_path / "spec.toml").write_text(spec)
    with pytest.raises(ValueError, match=message):
        load_study(tmp_path)
    assert main(["bench", str(tmp_path)]) == 2
    assert "spec.toml" in capsys.readouterr().err and not (tmp_path / "results.jsonl").exists()


def test_bench_on_a_spec_without_grids_says_there_is_nothing_to_run(tmp_path, capsys):
    (tmp_path / "spec.toml").write_text('title = "empty"\n')
    assert main(["bench", str(tmp_path)]) == 2
    assert "no [[grid]] section, so nothing to run" in capsys.readouterr().err


# --- reports of damaged results files -------------------------------------------------------------------------
def test_report_names_the_lines_it_skips_and_refuses_binary_files(tmp_path, capsys):
    good = {"task": "sum2", "method": "ised", "seed": 0, "epochs": 1, "test_accuracy": 0.5, "seconds": 1.0,
            "program_calls": 10, "history": []}
    results = tmp_path / "r.jsonl"
    results.write_text("\n".join([json.dumps(good), '{"task": "sum2", "meth', json.dumps({"task": "sum2"})]) + "\n")
    assert main(["report", str(results)]) == 0
    out = capsys.readouterr().out
    assert "| ised" in out and "50.0" in out
    assert "Skipped 2 line(s) that are not results rows: r.jsonl:2 (not JSON), r.jsonl:3 (missing method, seed" in out
    (tmp_path / "b.jsonl").write_bytes(b"\x00\xff\xfe")
    assert main(["report", str(tmp_path / "b.jsonl")]) == 2
    assert "b.jsonl: not a results file (not UTF-8 text)" in capsys.readouterr().err


# --- Ctrl-C ---------------------------------------------------------------------------------------------------
_CALLS = [0, 0]  # [calls so far, call at which the program sends SIGINT to this process (0: never)]


def _add_then_interrupt(a: int, b: int) -> int:
    _CALLS[0] += 1
    if _CALLS[0] == _CALLS[1]:
        os.kill(os.getpid(), signal.SIGINT)  # as a Ctrl-C in the terminal would
    return a + b


@pytest.fixture
def interruptible():
    task = dataclasses.replace(get_task("sum2"), name="sum2-ctrl-c", make_program=lambda: bp.Program(
        _add_then_interrupt, (digit, digit), bp.Discrete(range(19))))
    register(task)
    yield lambda checkpoint=None: RunConfig(task="sum2-ctrl-c", epochs=2, train_size=64, valid_size=16, test_size=16,
                                            batch_size=16, num_samples=8, threads=1, progress=False,
                                            checkpoint=checkpoint)
    unregister("sum2-ctrl-c")


def _same(a, b):
    keep = ("test_accuracy", "valid_accuracy", "program_calls")
    history = [[{k: v for k, v in h.items() if k != "seconds"} for h in r["history"]] for r in (a, b)]
    return all(a[k] == b[k] for k in keep) and history[0] == history[1]


def test_ctrl_c_mid_epoch_saves_a_checkpoint_that_resumes_exactly(interruptible, tmp_path):
    _CALLS[:] = [0, 0]
    uninterrupted = train(interruptible())
    _CALLS[:] = [0, 40]  # within the first epoch's steps
    checkpoint = tmp_path / "run.pt"
    with pytest.raises(TrainingInterrupted, match=rf"interrupted \(sum2-ctrl-c ised epoch 1/2, step \d/4\); the run "
                                                  rf"is saved in {checkpoint}: the same command resumes it"):
        train(interruptible(str(checkpoint)))
    assert torch.load(checkpoint, weights_only=False)["partial"]["step"] < 4
    _CALLS[:] = [0, 0]
    assert _same(train(interruptible(str(checkpoint))), uninterrupted)


def test_ctrl_c_without_a_checkpoint_saves_to_a_temporary_file(interruptible):
    _CALLS[:] = [0, 40]
    with pytest.raises(TrainingInterrupted, match=r"the run is saved in (\S+\.pt): the same command with "
                                                  r"--checkpoint \S+ resumes it") as stopped:
        train(interruptible())
    saved = str(stopped.value).split("saved in ")[1].split(":")[0]
    assert os.path.getsize(saved) > 0
    os.unlink(saved)


def test_stop_when_stops_a_run_in_a_thread_at_a_step_that_resumes_exactly(interruptible, tmp_path):
    """Where no SIGINT arrives (a run in a worker thread, as on a dask worker), ``stop_when`` asks for the
    same stop: at a step, with a checkpoint that resumes to the uninterrupted run's figures."""
    import threading

    _CALLS[:] = [0, 0]
    uninterrupted = train(interruptible())
    checkpoint, outcome = tmp_path / "run.pt", {}

    def asked() -> bool:
        return _CALLS[0] >= 40  # after some program calls of the first epoch

    def run() -> None:
        try:
            outcome["row"] = train(interruptible(str(checkpoint)), stop_when=asked)
        except TrainingInterrupted as stopped:
            outcome["stopped"] = str(stopped)

    _CALLS[:] = [0, 0]
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=120)
    assert "row" not in outcome and "epoch 1/2, step" in outcome["stopped"]
    assert torch.load(checkpoint, weights_only=False)["partial"]["step"] < 4
    assert _same(train(interruptible(str(checkpoint))), uninterrupted)


def test_an_interrupts_predicate_is_polled_at_most_every_poll_seconds_and_then_holds(monkeypatch):
    from blackprop.run import interrupt

    now, answers, polls = [100.0], iter([False, True]), []
    monkeypatch.setattr(interrupt.time, "monotonic", lambda: now[0])

    def also() -> bool:
        polls.append(now[0])
        return next(answers)

    stop = interrupt.Interrupt(also, poll_seconds=10.0)
    assert stop.requested is False
    now[0] = 109.0
    assert stop.requested is False and polls == [100.0]  # within 10 s of the last poll: not asked again
    now[0] = 110.0
    assert stop.requested is True and polls == [100.0, 110.0]
    now[0] = 200.0
    assert stop.requested is True and polls == [100.0, 110.0]  # once asked, always asked (no more polls)
