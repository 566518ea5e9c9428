"""Program-checked decoding: exact k-best order, the most probable accepted tuple, budgets, Product outputs."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

import blackprop as bp
from blackprop.cli import main
from blackprop.decoding import ranked_tuples, search_accepted

DIGIT3 = bp.Discrete(range(3))


def brute_force_order(log_probs: torch.Tensor, sizes: list[int]) -> list[tuple[float, list[int]]]:
    ranges = [range(s) if s > 0 else [-1] for s in sizes]
    scored = []
    for row in itertools.product(*ranges):
        score = sum(float(log_probs[v, c]) for v, c in enumerate(row) if c >= 0)
        scored.append((score, list(row)))
    return sorted(scored, key=lambda t: -t[0])


def test_ranked_tuples_are_the_most_probable_in_order_without_duplicates():
    torch.manual_seed(0)
    sizes = [3, 0, 2, 4]  # variable 1 is padding
    probs = torch.zeros(4, 4)
    for v, s in enumerate(sizes):
        if s:
            probs[v, :s] = torch.softmax(torch.randn(s), -1)
    log_probs = probs.log()
    truth = brute_force_order(log_probs, sizes)
    ranked = ranked_tuples(log_probs, sizes, 100)
    assert len(ranked) == 24 and len({tuple(r) for r in ranked}) == 24  # all 3*2*4, each once
    scores = [sum(float(log_probs[v, c]) for v, c in enumerate(r) if c >= 0) for r in ranked]
    assert scores == sorted(scores, reverse=True)
    torch.testing.assert_close(torch.tensor(scores), torch.tensor([s for s, _ in truth]))
    assert all(r[1] == -1 for r in ranked)
    assert ranked_tuples(log_probs, sizes, 5) == ranked[:5]


def test_search_returns_the_most_probable_accepted_tuple_within_the_budget():
    """P fails on odd sums; each example's answer is checked against brute force over all 9 pairs."""
    program = bp.Program(lambda a, b: (a + b) // 2 if (a + b) % 2 == 0 else None, (DIGIT3, DIGIT3), DIGIT3)
    generator = torch.Generator().manual_seed(1)
    p_a = torch.softmax(3 * torch.randn(64, 3, generator=generator), -1)
    p_b = torch.softmax(3 * torch.randn(64, 3, generator=generator), -1)
    beliefs = bp.Beliefs.from_inputs(program.inputs, (p_a, p_b))
    with pytest.warns(RuntimeWarning):
        found = search_accepted(program, beliefs, budget=9)
    for b in range(64):
        pairs = sorted(itertools.product(range(3), range(3)), key=lambda ab: -float(p_a[b, ab[0]] * p_b[b, ab[1]]))
        best = next(ab for ab in pairs if sum(ab) % 2 == 0)
        assert tuple(found[b].tolist()) == best
    argmax = torch.stack([p_a.argmax(1), p_b.argmax(1)], dim=1)
    assert torch.equal(search_accepted(program, beliefs, budget=1), argmax)
    # budget 2: only the second most probable pair is tried; an example whose best accepted pair ranks
    # lower keeps its argmax pair
    two = search_accepted(program, beliefs, budget=2)
    for b in range(64):
        pairs = sorted(itertools.product(range(3), range(3)), key=lambda ab: -float(p_a[b, ab[0]] * p_b[b, ab[1]]))
        expected = next((ab for ab in pairs[:2] if sum(ab) % 2 == 0), pairs[0])
        assert tuple(two[b].tolist()) == expected
    with pytest.raises(ValueError, match="search budget must be an int >= 1"):
        search_accepted(program, beliefs, budget=0)


def test_product_output_with_an_unknown_component_is_not_accepted_and_predict_searches():
    """(a+b, a*b if a != b else unknown): the argmax (1, 1) leaves a component unknown; (1, 2) is accepted."""
    output = bp.Product(bp.Discrete(range(5)), bp.Discrete([0, 1, 2, 4]))
    program = bp.Program(lambda a, b: (a + b, a * b if a != b else None), (DIGIT3, DIGIT3), output)
    layer = bp.BlackBox(program, bp.ISED(num_samples=10), seed=0)
    p_a = torch.tensor([[0.1, 0.6, 0.3]])
    p_b = torch.tensor([[0.1, 0.5, 0.4]])
    assert layer.predict(p_a, p_b) == [(2, None)]
    assert layer.predict(p_a, p_b, search=4) == [(3, 2)]  # (1, 2): 0.24 beats (2, 1): 0.15


def test_train_reports_search_accuracy_at_least_argmax_accuracy(tmp_path):
    out = tmp_path / "r.json"
    argv = ["train", "sudoku-partial", "--epochs", "1", "--train-size", "32", "--test-size", "16", "--num-samples", "4",
            "--search", "8", "--threads", "1", "--quiet", "--json", str(out)]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["search"] == 8 and result["search_accuracy"] >= result["test_accuracy"]
    assert "valid_search_accuracy" in result["history"][-1]  # per epoch on the validation split
    plain = tmp_path / "plain.json"  # decoding is evaluation only: training and argmax accuracy are unchanged
    without_search = [a for a in argv if a not in ("--search", "8")]
    assert main([*without_search[:-1], str(plain)]) == 0
    unsearched = json.loads(plain.read_text())
    assert "search_accuracy" not in unsearched
    assert [h["train_loss"] for h in unsearched["history"]] == [h["train_loss"] for h in result["history"]]
    assert unsearched["test_accuracy"] == result["test_accuracy"]
    grid = tmp_path / "grid.jsonl"
    grid.write_text(json.dumps(result) + "\n")
    md = tmp_path / "R.md"
    assert main(["report", str(grid), "--out", str(md), "--no-plots"]) == 0
    text = md.read_text()
    assert "program-checked decoding" in text and "search=8" in text
