"""BatchedProgram: the same outputs and failures as Program, the same estimator results, clear errors."""

from __future__ import annotations

import pytest
import torch

import blackprop as bp
from blackprop.tasks import get_task

DIGIT = bp.Discrete(range(10))


def both(fn, inputs, output):
    return bp.Program(fn, inputs, output, cache=False), bp.BatchedProgram(fn, inputs, output)


def test_outputs_and_failures_match_program():
    """a - b over digits into 0..9: negative differences are outside the output space, hence failures."""
    tuples = torch.randint(0, 10, (500, 2), generator=torch.Generator().manual_seed(0))
    with pytest.warns(RuntimeWarning):  # Program reports its first failure
        expected = both(lambda a, b: a - b, (DIGIT, DIGIT), DIGIT)[0].evaluate(tuples)
    batched = bp.BatchedProgram(lambda a, b: a - b, (DIGIT, DIGIT), DIGIT)
    got = batched.evaluate(tuples.reshape(50, 10, 2))
    assert torch.equal(got.reshape(-1), expected)
    assert (expected == bp.FAILED).any() and (expected >= 0).any()
    assert batched.stats.queries == batched.stats.calls == 500
    assert batched.stats.failures == int((expected == bp.FAILED).sum())


def test_float_values_and_nan_are_handled():
    halves = bp.Discrete([0.5, 1.5, 2.5])
    program = bp.BatchedProgram(lambda a, b: torch.where(a > 2, torch.nan, a + b), (halves, halves),
                                bp.Discrete([1.0, 2.0, 3.0, 4.0]))
    out = program.evaluate(torch.tensor([[0, 0], [0, 1], [1, 2], [2, 0], [2, 2]]))
    assert out.tolist() == [0, 1, 3, -1, -1]  # 1.0, 2.0, 4.0, NaN, NaN (5.0 would also fail)


def test_ised_gives_the_same_loss_and_gradient_with_either_program():
    program, batched = both(lambda *xs: sum(xs), (DIGIT,) * 4, bp.Discrete(range(37)))
    results = []
    for p in (program, batched):
        logits = torch.randn(8, 4, 10, generator=torch.Generator().manual_seed(1)).requires_grad_()
        layer = bp.BlackBox(p, bp.ISED(num_samples=50, weights="importance"), seed=3)
        loss = layer.loss(*torch.softmax(logits, dim=2).unbind(1), target=torch.arange(8) + 10)
        loss.backward()
        results.append((loss.detach(), logits.grad))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.allclose(results[0][1], results[1][1], atol=1e-7)


def test_sum_n_tasks_use_a_batched_program():
    program = get_task("sum16").make_program()
    assert isinstance(program, bp.BatchedProgram)
    assert program.evaluate(torch.full((3, 16), 9)).tolist() == [144] * 3


@pytest.mark.parametrize("make, message", [
    (lambda: bp.BatchedProgram(lambda xs: xs, (bp.Sequence(bp.Discrete("ab"), 3),), DIGIT), "non-numeric"),
    (lambda: bp.BatchedProgram(lambda a: a, (bp.Discrete("ab"),), DIGIT), "non-numeric"),
    (lambda: bp.BatchedProgram(lambda a: a, (bp.Discrete([True, False]),), DIGIT), "non-numeric"),
    (lambda: bp.BatchedProgram(lambda a: a, (DIGIT,), bp.Product(DIGIT, DIGIT)), "Product"),
])
def test_unsupported_spaces_are_refused(make, message):
    with pytest.raises(TypeError, match=message):
        make()


def test_a_wrong_number_of_returned_values_is_an_error():
    program = bp.BatchedProgram(lambda a: a[:1], (DIGIT,), DIGIT)
    with pytest.raises(ValueError, match="returned 1 values for 4 tuples"):
        program.evaluate(torch.tensor([[1], [2], [3], [4]]))


def test_a_non_numeric_return_is_an_error_naming_the_program():
    program = bp.BatchedProgram(lambda a: ["x"] * len(a), (DIGIT,), DIGIT, name="words")
    with pytest.raises(TypeError, match="words: fn returned list that is not a tensor of numbers"):
        program.evaluate(torch.tensor([[1], [2]]))
