"""Core behaviour: the worked example, Exact, ISED == Exact when samples cover all tuples,
gradients, the cache, failures, and clear errors on bad input."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import blackprop as bp
from blackprop.beliefs import Beliefs
from blackprop.tasks import get_task

DIGIT3 = bp.Discrete(range(3))
P_A = torch.tensor([[0.1, 0.6, 0.3]])
P_B = torch.tensor([[0.2, 0.1, 0.7]])


def add3() -> bp.Program:
    return bp.Program(lambda a, b: a + b, inputs=(DIGIT3, DIGIT3), output=bp.Discrete(range(5)))


def test_worked_example_add_mult():
    program = add3()
    beliefs = Beliefs.from_inputs(program.inputs, (P_A, P_B))
    tuples = torch.tensor([[[1, 2], [1, 0], [2, 1]]])
    outputs = program.evaluate(tuples)
    assert outputs.tolist() == [[3, 1, 3]]
    w = bp.ISED(weights="probability", normalize="none").summarise(program, beliefs, tuples, outputs).exp()
    assert w[0, 3].item() == pytest.approx(0.45)
    assert w[0, 1].item() == pytest.approx(0.12)
    assert w[0, [0, 2, 4]].tolist() == [0.0, 0.0, 0.0]


def test_worked_example_other_semirings():
    program = add3()
    beliefs = Beliefs.from_inputs(program.inputs, (P_A, P_B))
    tuples = torch.tensor([[[1, 2], [1, 0], [2, 1]]])
    outputs = program.evaluate(tuples)
    min_max = bp.ISED(weights="probability", semiring="min-max", normalize="none").summarise(program, beliefs, tuples, outputs).exp()
    assert min_max[0, 3].item() == pytest.approx(max(min(0.6, 0.7), min(0.3, 0.1)))
    max_mult = bp.ISED(weights="probability", semiring="max-mult", normalize="none").summarise(program, beliefs, tuples, outputs).exp()
    assert max_mult[0, 3].item() == pytest.approx(0.42)


def test_exact_on_worked_example():
    probs = bp.BlackBox(add3(), bp.Exact())(P_A, P_B)
    assert probs[0].tolist() == pytest.approx([0.02, 0.13, 0.19, 0.45, 0.21])


def test_exact_on_dense_inputs_equals_the_per_pattern_path_bit_for_bit():
    """Dense inputs take one cached enumeration; the same beliefs marked not dense take the general path."""
    import dataclasses

    from blackprop.estimators.exact import all_tuples

    g = torch.Generator().manual_seed(3)
    program = bp.Program(lambda a, b, c: (a * b + c) % 4, (DIGIT3, bp.Discrete(range(4)), DIGIT3), bp.Discrete(range(4)))
    inputs = [torch.softmax(torch.randn(6, n, generator=g), -1) for n in (3, 4, 3)]
    beliefs = Beliefs.from_inputs(program.inputs, inputs)
    assert beliefs.dense
    fast = bp.Exact().log_probs(program, beliefs)
    general = bp.Exact().log_probs(program, dataclasses.replace(beliefs, dense=False))
    assert torch.equal(fast, general)
    assert all_tuples((3, 4, 3), torch.device("cpu")) is all_tuples((3, 4, 3), torch.device("cpu"))  # kept
    with pytest.raises(bp.TooLargeToEnumerate, match="36 tuples, above max_tuples=35"):
        bp.Exact(max_tuples=35).log_probs(program, beliefs)


def test_ised_with_dedup_and_full_coverage_equals_exact():
    program = add3()
    ised = bp.BlackBox(program, bp.ISED(weights="probability", num_samples=2000, dedup=True, normalize="none"), seed=0)
    g = torch.Generator().manual_seed(0)  # not the global RNG: the result must not depend on the tests run before
    p_a = torch.softmax(torch.randn(5, 3, generator=g), -1)
    p_b = torch.softmax(torch.randn(5, 3, generator=g), -1)
    exact = bp.BlackBox(program, bp.Exact())(p_a, p_b)
    # 2000 draws over 9 tuples (each with p >= min(p_a)*min(p_b)) cover all of them with overwhelming probability
    assert torch.allclose(ised(p_a, p_b), exact, atol=1e-6)


def test_normalisations():
    program = add3()
    beliefs = Beliefs.from_inputs(program.inputs, (P_A, P_B))
    tuples = torch.tensor([[[1, 2], [1, 0], [2, 1]]])
    outputs = program.evaluate(tuples)
    l1 = bp.ISED(weights="probability", normalize="l1").summarise(program, beliefs, tuples, outputs).exp()
    l2 = bp.ISED(weights="probability", normalize="l2").summarise(program, beliefs, tuples, outputs).exp()
    assert l1.sum().item() == pytest.approx(1.0)
    assert l1[0, 3].item() == pytest.approx(0.45 / 0.57)
    assert l2.pow(2).sum().item() == pytest.approx(1.0)
    assert l2[0, 3].item() == pytest.approx(0.45 / (0.45**2 + 0.12**2) ** 0.5)


def test_multiplicity_counts_duplicates_and_dedup_does_not():
    program = add3()
    beliefs = Beliefs.from_inputs(program.inputs, (P_A, P_B))
    tuples = torch.tensor([[[1, 2], [1, 2], [2, 1]]])
    outputs = program.evaluate(tuples)
    counted = bp.ISED(weights="probability", normalize="none").summarise(program, beliefs, tuples, outputs).exp()
    assert counted[0, 3].item() == pytest.approx(min(1.0, 0.42 * 2 + 0.03))
    from blackprop.estimators.ised import first_occurrences

    assert first_occurrences(tuples).tolist() == [[True, False, True]]


@pytest.mark.parametrize("estimator", [bp.ISED(weights="probability", num_samples=50), bp.Exact()], ids=["ised", "exact"])
def test_gradients_reach_only_the_network(estimator):
    torch.manual_seed(0)
    network = torch.nn.Linear(4, 3)
    x = torch.randn(6, 2, 4)
    layer = bp.BlackBox(add3(), estimator, seed=0)
    probs = torch.softmax(network(x), dim=-1)
    loss = layer.loss(probs[:, 0], probs[:, 1], target=torch.tensor([0, 1, 2, 3, 4, 2]))
    loss.backward()
    assert network.weight.grad is not None and network.weight.grad.abs().sum() > 0
    assert list(layer.parameters()) == []


def test_cache_on_and_off_give_equal_results():
    p_a = torch.softmax(torch.randn(8, 3), -1)
    p_b = torch.softmax(torch.randn(8, 3), -1)
    calls = {"on": 0, "off": 0}

    def counted(tag):
        def fn(a, b):
            calls[tag] += 1
            return a + b

        return fn

    on = bp.BlackBox(bp.Program(counted("on"), (DIGIT3, DIGIT3), bp.Discrete(range(5))), bp.ISED(weights="probability", num_samples=40), seed=3)
    off = bp.BlackBox(
        bp.Program(counted("off"), (DIGIT3, DIGIT3), bp.Discrete(range(5)), cache=False), bp.ISED(weights="probability", num_samples=40), seed=3
    )
    for _ in range(3):
        assert torch.equal(on(p_a, p_b), off(p_a, p_b))
    assert calls["on"] <= 9 < calls["off"] == 3 * 8 * 40
    assert on.program.stats.calls == calls["on"] and on.program.stats.hits > 0


def test_program_that_raises_on_some_tuples_still_trains():
    def fragile(a, b):
        if a == 2:
            raise ZeroDivisionError("no 2s")
        return a + b

    program = bp.Program(fragile, (DIGIT3, DIGIT3), bp.Discrete(range(5)))
    logits = torch.zeros(2, 3, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=0.1)
    layer = bp.BlackBox(program, bp.ISED(weights="probability", num_samples=30), seed=0)
    with pytest.warns(RuntimeWarning, match="raised ZeroDivisionError: no 2s"):
        for _ in range(60):
            probs = torch.softmax(logits, -1)
            loss = layer.loss(probs[:1], probs[1:], target=[2])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert program.stats.failures > 0
    assert torch.isfinite(logits).all()
    probs = torch.softmax(logits, -1)
    assert (probs[0, 1] * probs[1, 1]).item() > 0.5  # learnt 1 + 1 = 2, the only way without a 2


def test_output_outside_discrete_space_is_a_failure_with_clear_message():
    program = bp.Program(lambda a, b: a * 10 + b, (DIGIT3, DIGIT3), bp.Discrete(range(5)))
    with pytest.warns(RuntimeWarning, match=r"value 10 is not in Discrete"):
        out = program.evaluate(torch.tensor([[1, 0], [0, 1]]))
    assert out.tolist() == [bp.FAILED, 1]
    assert program.stats.failures == 1


def test_open_output_vocabulary_is_stable_across_batches():
    rooms = bp.Open()
    program = bp.Program(lambda a: ["x", "y", "z"][a], (DIGIT3,), rooms)
    layer = bp.BlackBox(program, bp.ISED(weights="probability", num_samples=20), seed=0)
    first = layer(torch.tensor([[0.0, 1.0, 0.0]]))
    assert rooms.values == ["y"] and first.shape == (1, 1)
    second = layer(torch.tensor([[1.0, 0.0, 0.0]]))
    assert rooms.values == ["y", "x"] and second.shape == (1, 2)
    assert second[0, 1].item() == pytest.approx(1.0)
    loss = layer.loss(torch.tensor([[0.5, 0.5, 0.0]]), target=["w"])  # a label never produced
    assert torch.isfinite(loss) and rooms.values[-1] == "w"


def test_open_remembers_raw_values_without_merging_distinct_ones():
    calls = []

    def canonical(value):
        calls.append(value)
        return (type(value).__name__, math.copysign(1.0, value) if isinstance(value, float) else 0, value)

    space = bp.Open(canonical=canonical)
    assert [space.index(v) for v in (2.5, 2.5, 1, 1.0, 1, "a", "a", 0.0, -0.0, 0.0, True)] == [0, 0, 1, 2, 1, 3, 3, 4, 5, 4, 6]
    assert calls.count(2.5) == 1 and calls.count("a") == 1  # seen before: canonical not asked again
    assert len([c for c in calls if c == 0]) == 3  # 0.0 and -0.0 are canonicalised every time


def test_sequence_padding_never_changes_the_result():
    symbol = bp.Discrete(range(4))
    program = bp.Program(lambda xs: sum(xs), (bp.Sequence(symbol, 3),), bp.Open())
    probs = torch.softmax(torch.randn(2, 3, 4), -1)
    other = probs.clone()
    other[:, 2] = torch.softmax(torch.randn(2, 4), -1)  # change the padded position only
    lengths = torch.tensor([2, 2])
    exact = bp.BlackBox(program, bp.Exact())
    assert torch.allclose(exact(bp.padded(probs, lengths)), exact(bp.padded(other, lengths)))
    ised_a = bp.BlackBox(program, bp.ISED(weights="probability", num_samples=30), seed=1)
    ised_b = bp.BlackBox(program, bp.ISED(weights="probability", num_samples=30), seed=1)
    assert torch.allclose(ised_a((probs, lengths)), ised_b((other, lengths)))


def test_exact_with_sequences_of_different_lengths():
    symbol = bp.Discrete(range(2))
    program = bp.Program(lambda xs: len(xs) * 10 + sum(xs), (bp.Sequence(symbol, 3),), bp.Open())
    probs = torch.tensor([[[0.5, 0.5]] * 3, [[0.25, 0.75]] * 3])
    out = bp.BlackBox(program, bp.Exact())(bp.padded(probs, torch.tensor([1, 2])))
    values = program.output.values
    first = {v: out[0, i].item() for i, v in enumerate(values) if out[0, i] > 0}
    second = {v: out[1, i].item() for i, v in enumerate(values) if out[1, i] > 0}
    assert first == pytest.approx({10: 0.5, 11: 0.5})
    assert second == pytest.approx({20: 0.0625, 21: 0.375, 22: 0.5625})


def test_long_inputs_do_not_underflow():
    """81 variables with p=0.01 each: the product 1e-162 underflows float32, not in log space."""
    cells = bp.Discrete(range(100))
    program = bp.Program(lambda *xs: sum(xs) % 7, (cells,) * 81, bp.Discrete(range(7)))
    probs = torch.full((2, 100), 0.01, requires_grad=True)
    layer = bp.BlackBox(program, bp.ISED(weights="probability", num_samples=10), seed=0)
    loss = layer.loss(*([probs] * 81), target=[3, 4])
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(probs.grad).all() and probs.grad.abs().sum() > 0


def test_several_input_kinds_in_one_program():
    program = bp.Program(
        lambda op, xs: op * sum(xs), (bp.Discrete([1, -1]), bp.Sequence(bp.Discrete(range(3)), 2)), bp.Open()
    )
    out = bp.BlackBox(program, bp.Exact())(torch.tensor([[1.0, 0.0]]), bp.padded(torch.tensor([[[0, 0, 1.0], [0, 1.0, 0]]])))
    assert program.output.values[int(out[0].argmax())] == 3


def test_predict_uses_argmax_symbols():
    layer = bp.BlackBox(add3())
    assert layer.predict(P_A, P_B) == [3]


# --- bad input gets a clear error ------------------------------------------------------------


def test_wrong_shape():
    with pytest.raises(ValueError, match=r"must have shape \[batch, 3\], got \[1, 4\]"):
        bp.BlackBox(add3())(torch.tensor([[0.25] * 4]), P_B)


def test_not_summing_to_one():
    with pytest.raises(ValueError, match="must sum to 1.*softmax"):
        bp.BlackBox(add3())(torch.tensor([[0.5, 0.6, 0.3]]), P_B)


def test_nan_probabilities():
    with pytest.raises(ValueError, match="NaN"):
        bp.BlackBox(add3())(torch.tensor([[float("nan"), 0.6, 0.3]]), P_B)


def test_wrong_number_of_inputs():
    with pytest.raises(TypeError, match=r"takes 2 input\(s\).*but 1 probability"):
        bp.BlackBox(add3())(P_A)


def test_target_outside_output_space():
    with pytest.raises(ValueError, match="target: value 9 is not in Discrete"):
        bp.BlackBox(add3()).loss(P_A, P_B, target=[9])


def test_num_samples_below_one():
    with pytest.raises(ValueError, match=r"ISED\(num_samples=...\): must be an int >= 1, got 0"):
        bp.ISED(weights="probability", num_samples=0)


def test_unknown_semiring_lists_valid_ones():
    with pytest.raises(ValueError, match=r"ISED\(semiring=...\): must be one of add-mult, max-mult, min-max, got 'add-max'"):
        bp.ISED(weights="probability", semiring="add-max")


def test_exact_too_large_names_the_size():
    program = bp.Program(lambda *xs: sum(xs), (bp.Discrete(range(10)),) * 7, bp.Discrete(range(64)))
    probs = [torch.full((1, 10), 0.1)] * 7
    with pytest.raises(bp.TooLargeToEnumerate, match="10,000,000 tuples, above max_tuples=1,000,000"):
        bp.BlackBox(program, bp.Exact())(*probs)


def test_unknown_estimator_name():
    with pytest.raises(ValueError, match=r"unknown estimator 'isd' \(did you mean 'ised'\?\); valid: .*ised"):
        bp.estimator("isd")


def test_lambda_with_process_pool_is_rejected_clearly():
    with pytest.raises(TypeError, match="module-level function"):
        bp.Program(lambda a: a, (DIGIT3,), DIGIT3, executor="process")


def test_timeout_marks_failure():
    import time

    def slow(a):
        if a == 1:
            time.sleep(2)
        return a

    program = bp.Program(slow, (DIGIT3,), DIGIT3, timeout=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = program.evaluate(torch.tensor([[0], [1], [2]]))
    assert out.tolist() == [0, bp.FAILED, 2]
    assert program.stats.timeouts == 1


def test_thread_pool_executor_gives_same_results():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        program = bp.Program(lambda a, b: a + b, (DIGIT3, DIGIT3), bp.Discrete(range(5)), executor=pool)
        tuples = torch.randint(0, 3, (50, 2))
        assert program.evaluate(tuples).tolist() == tuples.sum(1).tolist()


def test_exploration_gives_a_gradient_where_a_collapsed_network_has_none():
    """Both digits sure of class 0, label "not equal": plain ISED samples only (0, 0), so no tuple
    gives the label and the gradient is zero; with exploration some tuples do, and the gradient
    lowers p(0)."""
    equal = bp.Program(lambda a, b: a == b, (DIGIT3, DIGIT3), bp.Discrete([False, True]))
    logits = torch.tensor([[20.0, 0.0, 0.0]], requires_grad=True)
    for exploration, expect_gradient in ((0.0, False), (0.2, True)):
        logits.grad = None
        probs = torch.softmax(logits, -1)
        layer = bp.BlackBox(equal, bp.ISED(weights="probability", num_samples=50, normalize="l1", exploration=exploration), seed=0)
        layer.loss(probs, probs, target=[False]).backward()
        moved = logits.grad.abs().sum().item() > 1e-6
        assert moved == expect_gradient
        if expect_gradient:
            assert logits.grad[0, 0] > 0  # gradient descent lowers the collapsed class


def test_exploration_samples_every_class_and_is_validated():
    beliefs = Beliefs.from_inputs((DIGIT3,), (torch.tensor([[1.0, 0.0, 0.0]]),))
    draws = beliefs.sample(3000, torch.Generator().manual_seed(0), exploration=0.3)
    shares = torch.bincount(draws.flatten(), minlength=3).float() / 3000
    assert shares.tolist() == pytest.approx([0.8, 0.1, 0.1], abs=0.03)  # sd of a share ~0.007
    with pytest.raises(ValueError, match=r"exploration=...\): must be a number in \[0, 1\), got 1"):
        bp.ISED(weights="probability", exploration=1)


def test_cache_limit_drops_the_oldest_entries_and_results_stay_equal():
    runs = []

    def add(a, b):
        runs.append((a, b))
        return a + b

    program = bp.Program(add, (DIGIT3, DIGIT3), bp.Discrete(range(5)), cache_limit=4)
    first = torch.tensor([[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]])
    assert program.evaluate(first).tolist() == [0, 1, 2, 1, 2, 3]
    assert program.cache_size() == 4 and program.stats.calls == 6  # (0, 0) and (0, 1) were dropped
    assert program.evaluate(torch.tensor([[1, 2], [0, 0]])).tolist() == [3, 0]
    assert runs[-1] == (0, 0) and program.stats.calls == 7 and program.stats.hits == 1
    assert program.cache_size() == 4
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="cache_limit"):
            bp.Program(add, (DIGIT3, DIGIT3), bp.Discrete(range(5)), cache_limit=bad)
    assert isinstance(get_task("count-3-4").make_program(), bp.BatchedProgram)  # 10^8 tuples: no memo at all
    assert get_task("sum4").make_program().cache_limit is None
