"""BatchedProgram with Open outputs and index arguments; hwf's formula evaluated in tensors.

The tensor evaluator is checked exactly against the per-tuple parser: every sequence of up to 4 of
hwf's 14 symbols (41,371 sequences, well-formed or not), and 60,000 random sequences of 5-7 symbols
(half of them alternating digits and operators, so that most evaluate).
"""

from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch

import blackprop as bp
from blackprop.program.batched import Column
from blackprop.program.open_index import OpenIndex
from blackprop.tasks.hwf import MAX_LEN, SYMBOLS, make_hwf_program
from blackprop.tasks.hwf.formula import FormulaError, formula_value, tolerance_key
from blackprop.tasks.hwf.tensor_formula import formula_values, make_hwf_batched_program


def _sequences(seed: int = 0) -> torch.Tensor:
    """Rows of symbol indices padded with -1: all of length <= 4, and random ones of length 5-7."""
    short = [list(s) + [-1] * (MAX_LEN - n) for n in range(5) for s in itertools.product(range(14), repeat=n)]
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randint(0, 14, (30_000, MAX_LEN), generator=generator)
    formulas = torch.randint(0, 10, (30_000, MAX_LEN), generator=generator)
    formulas[:, 1::2] = torch.randint(10, 14, (30_000, MAX_LEN // 2), generator=generator)
    long = torch.cat([noise, formulas])
    lengths = torch.randint(5, MAX_LEN + 1, (long.shape[0],), generator=generator)
    long = torch.where(torch.arange(MAX_LEN) < lengths.unsqueeze(1), long, -1)
    return torch.cat([torch.tensor(short), long])


def _python_value(row: list[int]) -> float:
    try:
        return formula_value([SYMBOLS.values[i] for i in row if i >= 0])
    except FormulaError:
        return math.nan


def test_tensor_formulas_equal_the_parser_exactly():
    rows = _sequences()
    valid = rows >= 0
    got = formula_values(Column(torch.where(valid, rows, 0), valid.sum(dim=1))).tolist()
    expected = [_python_value(row) for row in rows.tolist()]
    mismatched = [(row, e, g) for row, e, g in zip(rows.tolist(), expected, got, strict=True)
                  if not (e == g or (math.isnan(e) and math.isnan(g)))]
    assert not mismatched, mismatched[:5]
    failed = sum(math.isnan(v) for v in got)
    assert 0.3 * len(got) < failed < 0.9 * len(got)  # both outcomes are exercised


def test_both_hwf_programs_give_the_same_outputs_and_failures():
    rows = _sequences(seed=1)
    rows = rows[: rows.shape[0] // 8 * 8]
    python, batched = make_hwf_program(), make_hwf_batched_program()
    with pytest.warns(RuntimeWarning):
        expected = python.evaluate(rows)
    got = batched.evaluate(rows.reshape(-1, 8, MAX_LEN)).reshape(-1)
    assert torch.equal(expected == bp.FAILED, got == bp.FAILED)
    keep = got != bp.FAILED
    to_key = [tolerance_key(v) for v in python.output.values], [tolerance_key(v) for v in batched.output.values]
    assert [to_key[0][i] for i in expected[keep].tolist()] == [to_key[1][i] for i in got[keep].tolist()]
    assert sorted(to_key[0]) == sorted(to_key[1])  # the same vocabulary, maybe in another order
    assert batched.stats.calls == batched.stats.queries == rows.shape[0]
    assert batched.stats.failures == int((got == bp.FAILED).sum())


def test_ised_loss_and_gradient_agree_across_the_hwf_programs():
    generator = torch.Generator().manual_seed(2)
    lengths = torch.tensor([1, 3, 5, 7, 7, 5, 3, 1])
    truth = torch.randint(0, 10, (8, MAX_LEN), generator=generator)
    truth[:, 1::2] = torch.randint(10, 14, (8, MAX_LEN // 2), generator=generator)
    targets = [_python_value(row[:n]) for row, n in zip(truth.tolist(), lengths.tolist(), strict=True)]
    targets = [0.0 if math.isnan(t) else t for t in targets]
    results = []
    for program in (make_hwf_program(), make_hwf_batched_program()):
        logits = (torch.randn(8, MAX_LEN, 14, generator=torch.Generator().manual_seed(3))
                  + 4 * torch.nn.functional.one_hot(truth, 14)).requires_grad_()
        layer = bp.BlackBox(program, bp.ISED(num_samples=60), seed=5)
        with warnings.catch_warnings():  # the Python program warns of its first malformed formula
            warnings.simplefilter("ignore", RuntimeWarning)
            loss = layer.loss(bp.padded(torch.softmax(logits, dim=2), lengths), target=targets)
        loss.backward()
        results.append((loss.detach(), logits.grad))
    assert torch.allclose(results[0][0], results[1][0], rtol=1e-6)
    assert torch.allclose(results[0][1], results[1][1], rtol=1e-5, atol=1e-7)
    assert results[0][1].abs().sum() > 0


def test_open_index_calls_canonical_once_per_new_value():
    calls = []
    space = bp.Open(canonical=lambda v: calls.append(v) or round(v))
    lookup = OpenIndex(space)
    first = lookup(torch.tensor([1.2, 0.9, 1.2, float("nan"), 3.0], dtype=torch.float64)).tolist()
    assert first == [0, 0, 0, bp.FAILED, 1] and sorted(calls) == [0.9, 1.2, 3.0]
    assert lookup(torch.tensor([3.0, 1.2], dtype=torch.float64)).tolist() == [1, 0] and len(calls) == 3
    assert lookup(torch.tensor([3, 7])).tolist() == [1, 2]  # ints are their own values (canonical: 3 -> 3)


def test_values_canonical_rejects_are_failures():
    lookup = OpenIndex(bp.Open(canonical=tolerance_key))
    assert lookup(torch.tensor([math.inf, 0.5, -math.inf], dtype=torch.float64)).tolist() == [bp.FAILED, 0, bp.FAILED]


def test_indices_argument_passes_class_indices_of_any_symbols():
    letters = bp.Discrete("abc")
    program = bp.BatchedProgram(lambda word: word.values.sum(dim=1), (bp.Sequence(letters, 3),), bp.Discrete(range(7)),
                                indices=True)
    assert program.evaluate(torch.tensor([[2, 2, -1], [0, 1, 2], [-1, -1, -1]])).tolist() == [4, 3, 0]
    with pytest.raises(TypeError, match="non-numeric"):
        bp.BatchedProgram(lambda word: word.values.sum(dim=1), (bp.Sequence(letters, 3),), bp.Discrete(range(7)))
    with pytest.raises(TypeError, match="indices"):
        bp.BatchedProgram(lambda a: a, (letters,), bp.Discrete(range(3)), indices=1)


def test_an_open_vocabulary_survives_a_checkpoint():
    rows = torch.tensor([[2, 10, 3, -1, -1, -1, -1], [7, 13, 2, -1, -1, -1, -1]])
    program = make_hwf_batched_program()
    before = program.evaluate(rows).tolist()
    restored = make_hwf_batched_program()
    restored.load_state_dict(program.state_dict())
    assert restored.output.values == program.output.values
    assert restored.evaluate(rows.flip(0)).tolist() == before[::-1]
    clash = make_hwf_batched_program()
    clash.evaluate(rows[:1])  # 5 first: index 0 (the program has 3.5 at 0)
    with pytest.raises(ValueError, match="another index"):
        clash.load_state_dict(program.state_dict())


def test_a_boolean_return_is_refused_for_an_open_output():
    program = bp.BatchedProgram(lambda a: a > 1, (bp.Discrete(range(4)),), bp.Open(), name="flags")
    with pytest.raises(TypeError, match="flags: fn returned Tensor that is not a tensor of numbers"):
        program.evaluate(torch.tensor([[1], [2]]))
