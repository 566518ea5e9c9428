"""The program layer's failure policy, public state and input validation (issue 20 rows of blackprop.program):
transient failures are not memoised, timeouts get one more chance, a program failing batch after
batch stops with a clear error, BatchedProgram follows the same policy, state_dict round-trips,
executor specs, pickling, final classes and the typed settings parser."""

from __future__ import annotations

import concurrent.futures as cf
import io
import math
import time
import warnings

import pytest
import torch

import blackprop as bp
from blackprop.program import BaseProgram, ProgramFailedError, TransientProgramError, parse_executor_spec

DIGIT = bp.Discrete(range(10))
SUMS = bp.Discrete(range(19))
ALL = torch.arange(10).unsqueeze(1)


def identity(a):
    return a


def add(a, b):
    return a + b


def sleep_on_1(a):
    if a == 1:
        time.sleep(10)
    return a


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def flaky(error: BaseException, on: int = 3):
    """A program whose call on ``on`` raises ``error`` the first time only."""
    raised = []

    def fn(a):
        if a == on and not raised:
            raised.append(a)
            raise error
        return a

    return fn


# --- transient failures -------------------------------------------------------------------------
@pytest.mark.parametrize("error", [ConnectionError("reset by peer"), TimeoutError("read timed out"),
                                   TransientProgramError("HTTP 503 after 3 attempts"), ConnectionRefusedError(111, "x")])
def test_transient_failures_are_counted_not_memoised_and_asked_again(error):
    program = bp.Program(flaky(error), (DIGIT,), DIGIT)
    with pytest.warns(RuntimeWarning, match=r"\(3,\): raised .*transient: not memoised"):
        out = program.evaluate(ALL)
    assert out[3].item() == bp.FAILED and out.tolist()[:3] == [0, 1, 2]
    assert program.stats.transient == 1 and program.stats.failures == 1
    assert program.cache_size() == 9 and (3,) not in program.memo_dict()  # nor in a checkpoint
    assert program.evaluate(torch.tensor([[3]])).tolist() == [3]  # asked again: it answers now
    assert program.stats.calls == 11 and program.memo_dict()[(3,)] == 3


def test_deterministic_failures_stay_memoised():
    program = bp.Program(flaky(KeyError("three")), (DIGIT,), DIGIT)
    quiet(program.evaluate, ALL)
    assert program.stats.transient == 0 and program.memo_dict()[(3,)] == bp.FAILED
    assert program.evaluate(torch.tensor([[3]])).tolist() == [bp.FAILED]  # not asked again
    assert program.stats.calls == 10 and program.stats.hits == 1


def test_a_timeout_is_retried_once_then_memoised():
    program = bp.Program(sleep_on_1, (DIGIT,), DIGIT, timeout=0.1)
    for expected_calls, expected_memo in ((1, 0), (2, 1), (2, 1)):
        assert quiet(program.evaluate, torch.tensor([[1]])).tolist() == [bp.FAILED]
        assert program.stats.calls == expected_calls and program.cache_size() == expected_memo
    assert program.stats.timeouts == 2 and program.stats.hits == 1


# --- a program failing batch after batch --------------------------------------------------------
def test_every_sample_failing_batch_after_batch_is_a_clear_error():
    program = bp.Program(lambda a: 1 / (a - a), (DIGIT,), DIGIT, max_failed_batches=3, name="broken")
    quiet(program.evaluate, ALL[:4])
    quiet(program.evaluate, ALL[4:])
    with pytest.raises(ProgramFailedError, match=r"broken: every sample of the last 3 evaluate calls failed "
                                                 r"\(11 tuples\); failures seen: raised ZeroDivisionError"):
        quiet(program.evaluate, ALL[:1])


def test_one_success_resets_the_count_and_none_never_stops():
    program = bp.Program(lambda a: a if a == 0 else None, (DIGIT,), DIGIT, max_failed_batches=2)
    for _ in range(3):
        quiet(program.evaluate, ALL[1:])
        quiet(program.evaluate, ALL[:2])  # (0,) succeeds
    patient = bp.Program(lambda a: None, (DIGIT,), DIGIT, max_failed_batches=None)
    for _ in range(10):
        quiet(patient.evaluate, ALL)
    assert patient.stats.failures == 10 and patient.stats.calls == 10 and patient.stats.hits == 90  # memoised


def test_training_on_a_program_that_always_fails_stops_with_the_reason():
    program = bp.Program(lambda a, b: {}["key"], (DIGIT, DIGIT), SUMS, max_failed_batches=4)
    layer = bp.BlackBox(program, bp.ISED(num_samples=8), seed=0)
    logits = torch.zeros(4, 10, requires_grad=True)
    with pytest.raises(ProgramFailedError, match=r"last 4 evaluate calls failed .*raised KeyError: 'key'"):
        for _ in range(10):
            quiet(layer.loss, torch.softmax(logits, -1), torch.softmax(logits, -1), target=[1, 2, 3, 4])


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "5"])
def test_bad_max_failed_batches(bad):
    with pytest.raises(ValueError, match=r"max_failed_batches=...\): give an int >= 1 or None"):
        bp.Program(add, (DIGIT, DIGIT), SUMS, max_failed_batches=bad)


# --- BatchedProgram: the same policy ------------------------------------------------------------
def test_batched_program_that_raises_fails_the_batch_and_is_counted():
    program = bp.BatchedProgram(lambda a, b: a.no_such_method(b), (DIGIT, DIGIT), SUMS, name="tensor_add",
                                max_failed_batches=2)
    with pytest.warns(RuntimeWarning, match=r"tensor_add on a batch of 3 tuples \(the first \(1, 2\)\): raised "
                                            r"AttributeError.*every tuple of the batch failed"):
        out = program.evaluate(torch.tensor([[1, 2], [3, 4], [5, 6]]))
    assert out.tolist() == [bp.FAILED] * 3 and program.stats.failures == 3 and program.stats.calls == 3
    with pytest.raises(ProgramFailedError, match="tensor_add: every sample of the last 2 evaluate calls failed"):
        quiet(program.evaluate, torch.tensor([[1, 2]]))


def test_batched_program_transient_error_is_counted_as_transient():
    calls = []

    def service(a):
        calls.append(a)
        if len(calls) == 1:
            raise ConnectionError("service down")
        return a

    program = bp.BatchedProgram(service, (DIGIT,), DIGIT)
    assert quiet(program.evaluate, ALL[:3]).tolist() == [bp.FAILED] * 3
    assert program.stats.transient == 1 and program.stats.failures == 3
    assert program.evaluate(ALL[:3]).tolist() == [0, 1, 2]


def test_batched_program_takes_no_executor():
    program = bp.BatchedProgram(add, (DIGIT, DIGIT), SUMS)
    assert program.use_executor("serial") is program
    with pytest.raises(ValueError, match=r"takes no executor, got 'process:2'; drop the executor"):
        program.use_executor("process:2")


# --- public state -------------------------------------------------------------------------------
def test_state_dict_round_trip_restores_memo_and_counters():
    first = bp.Program(add, (DIGIT, DIGIT), bp.Open())
    tuples = torch.randint(0, 10, (50, 2), generator=torch.Generator().manual_seed(0))
    expected = first.evaluate(tuples)
    state = first.state_dict()
    assert set(state) == {"memo", "values", "stats"} and state["stats"]["calls"] == first.stats.calls
    second = bp.Program(add, (DIGIT, DIGIT), bp.Open())
    second.load_state_dict(state)
    assert torch.equal(second.evaluate(tuples), expected)
    assert second.stats.calls == first.stats.calls  # every tuple came from the restored memo
    assert second.output.values == first.output.values


def test_batched_state_dict_holds_the_counters():
    program = bp.BatchedProgram(add, (DIGIT, DIGIT), SUMS)
    program.evaluate(torch.tensor([[1, 2]]))
    other = bp.BatchedProgram(add, (DIGIT, DIGIT), SUMS)
    other.load_state_dict(program.state_dict())
    assert other.stats == program.stats and set(program.state_dict()) == {"stats"}


def test_load_state_dict_refuses_state_of_another_program():
    program = bp.Program(add, (DIGIT, DIGIT), SUMS)
    program.evaluate(torch.tensor([[1, 2]]))
    with pytest.raises(ValueError, match=r"saved with output values \[0, 1, 2, 3, 4, \.\.\.\], but this program's"):
        bp.Program(add, (DIGIT, DIGIT), bp.Discrete(range(20))).load_state_dict(program.state_dict())
    with pytest.raises(ValueError, match="tuples of 3 class indices; this state belongs to another program"):
        bp.Program(lambda a, b, c: a, (DIGIT,) * 3, SUMS).load_state_dict(program.state_dict())
    with pytest.raises(ValueError, match=r"expected the dict program.state_dict\(\) returns"):
        program.load_state_dict({"memo": {}})
    with pytest.raises(ValueError, match=r"unknown stats \['bogus'\]"):
        program.load_state_dict({"stats": {"bogus": 1}})


def test_torch_save_of_a_layer_with_a_lambda_says_what_to_save_instead():
    layer = bp.BlackBox(bp.Program(lambda a, b: a + b, (DIGIT, DIGIT), SUMS), bp.ISED())
    with pytest.raises(TypeError, match=r"cannot be pickled: its fn .*save layer.state_dict\(\) \(weights\) and "
                                        r"program.state_dict\(\)"):
        torch.save(layer, io.BytesIO())
    batched = bp.BatchedProgram(lambda a: a, (DIGIT,), DIGIT)
    with pytest.raises(TypeError, match="BatchedProgram '<lambda>' cannot be pickled"):
        torch.save(batched, io.BytesIO())


def test_torch_save_of_a_layer_with_a_module_level_program_works():
    with bp.Program(add, (DIGIT, DIGIT), SUMS, executor="thread:2") as program:
        program.evaluate(torch.tensor([[1, 2], [3, 4]]))
        buffer = io.BytesIO()
        torch.save(bp.BlackBox(program, bp.ISED()), buffer)
    buffer.seek(0)
    copy = torch.load(buffer, weights_only=False).program
    assert copy.executor is None and copy.memo_dict() == {(1, 2): 3, (3, 4): 7}
    assert copy.evaluate(torch.tensor([[1, 2], [5, 5]])).tolist() == [3, 10] and copy.stats.hits == 1


# --- executor specs -----------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "parsed"), [
    ("serial", ("serial", None)), ("process", ("process", None)), ("process:4", ("process", 4)),
    ("thread:2", ("thread", 2)), ("dask:tcp://10.0.0.1:8786", ("dask", "tcp://10.0.0.1:8786")),
    ("dask-local:3", ("dask-local", 3)),
])
def test_executor_specs(spec, parsed):
    assert parse_executor_spec(spec) == parsed


@pytest.mark.parametrize("spec", ["proces:4", "thread:0", "thread:-1", "serial:2", "dask:", "process:2.5"])
def test_bad_executor_specs_are_refused_at_construction(spec):
    with pytest.raises(ValueError, match=f"executor '{spec}': (expected 'serial'|the worker count must be an int >= 1)"):
        bp.Program(add, (DIGIT, DIGIT), SUMS, executor=spec)


def test_spec_strings_run_the_calls():
    tuples = torch.randint(0, 10, (40, 2), generator=torch.Generator().manual_seed(2))
    expected = (tuples.sum(1)).tolist()
    for spec in ("thread:2", "process:2", "serial"):
        with bp.Program(add, (DIGIT, DIGIT), SUMS, executor=spec) as program:
            assert program.evaluate(tuples).tolist() == expected
            assert program.parallelism == (1 if spec == "serial" else 2)
    program = bp.Program(add, (DIGIT, DIGIT), SUMS).use_executor("thread:3")
    assert program.parallelism == 3 and program.evaluate(tuples).tolist() == expected
    program.close()
    assert program.executor is None


# --- classes ------------------------------------------------------------------------------------
def test_programs_are_final_and_the_base_abstract():
    with pytest.raises(TypeError, match="Program is final"):
        type("MyProgram", (bp.Program,), {})
    with pytest.raises(TypeError, match="BatchedProgram is final"):
        type("MyBatched", (bp.BatchedProgram,), {})
    with pytest.raises(TypeError, match="abstract"):
        BaseProgram(add, (DIGIT, DIGIT), SUMS)  # type: ignore[abstract]
    assert isinstance(bp.BatchedProgram(add, (DIGIT, DIGIT), SUMS), BaseProgram)


# --- memo consistency across executors -------------------------------------------------------------
def test_workers_give_the_same_results_and_memo_as_serial():
    tuples = torch.randint(0, 10, (300, 2), generator=torch.Generator().manual_seed(0))
    serial = bp.Program(add, (DIGIT, DIGIT), bp.Open())
    expected = serial.evaluate(tuples)
    with bp.Program(add, (DIGIT, DIGIT), bp.Open(), executor=2) as pooled:
        assert torch.equal(pooled.evaluate(tuples), expected)
        assert pooled.memo_dict() == serial.memo_dict() and pooled.output.values == serial.output.values


def test_dask_cluster_on_loopback_gives_the_same_results():
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    tuples = torch.randint(0, 10, (200, 2), generator=torch.Generator().manual_seed(1))
    serial = bp.Program(add, (DIGIT, DIGIT), bp.Open())
    expected = serial.evaluate(tuples)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        assert client.scheduler.address.startswith("tcp://127.0.0.1")
        program = bp.Program(lambda a, b: a + b, (DIGIT, DIGIT), bp.Open(), executor=client, timeout=0.5)
        assert torch.equal(program.evaluate(tuples), expected)
        assert program.memo_dict() == serial.memo_dict() and program.output.values == serial.output.values
        assert program.parallelism == 2
        slow = bp.Program(sleep_on_1, (DIGIT,), DIGIT, executor=client, timeout=0.2)
        assert quiet(slow.evaluate, torch.tensor([[1], [2]])).tolist() == [bp.FAILED, 2]
        with bp.Program(add, (DIGIT, DIGIT), bp.Open(), executor=f"dask:{client.scheduler.address}") as by_spec:
            assert torch.equal(by_spec.evaluate(tuples), expected) and by_spec.parallelism == 2
        assert by_spec.executor is None and client.status == "running"  # its own client closed, the cluster kept


# --- validation -------------------------------------------------------------------------------------
def test_wrong_arity_is_refused_at_construction():
    with pytest.raises(TypeError, match=r"identity\(a\) cannot be called with 2 positional argument"):
        bp.Program(identity, (DIGIT, DIGIT), DIGIT)
    bp.Program(lambda *digits: sum(digits), (DIGIT,) * 4, bp.Discrete(range(37)))  # *args is fine
    bp.Program(max, (DIGIT, DIGIT), DIGIT)  # builtins without a signature are not checked


def test_tuples_outside_the_spaces_are_refused():
    program = bp.Program(add, (DIGIT, DIGIT), SUMS)
    with pytest.raises(ValueError, match=r"index 10 in column 1, outside 0..9"):
        program.evaluate(torch.tensor([[1, 10]]))
    with pytest.raises(ValueError, match=r"index -1 in column 0, outside 0..9;"):
        program.evaluate(torch.tensor([[-1, 2]]))  # -1 is padding, allowed on Sequence positions only
    with pytest.raises(TypeError, match="integer class indices"):
        program.evaluate(torch.tensor([[1.0, 2.0]]))


@pytest.mark.parametrize("timeout", [0, -1, True, math.inf, "1"])
def test_bad_timeouts(timeout):
    with pytest.raises(ValueError, match="timeout"):
        bp.Program(identity, (DIGIT,), DIGIT, timeout=timeout)


@pytest.mark.parametrize("executor", ["threads", 0, 2.5, object()])
def test_bad_executors(executor):
    with pytest.raises(ValueError, match="executor"):
        bp.Program(identity, (DIGIT,), DIGIT, executor=executor)


@pytest.mark.parametrize("spec", ["process:0", "process:x", "dask", "cluster:3", "serial:2"])
def test_bad_executor_specs(spec):
    with pytest.raises(ValueError, match=f"executor '{spec}'"):
        parse_executor_spec(spec)


def test_use_executor_keeps_the_memo():
    program = bp.Program(add, (DIGIT, DIGIT), SUMS)
    program.evaluate(torch.tensor([[1, 2]]))
    program.use_executor(cf.ThreadPoolExecutor(1))
    assert program.evaluate(torch.tensor([[1, 2], [3, 4]])).tolist() == [3, 7]
    assert program.stats.calls == 2 and program.stats.hits == 1
