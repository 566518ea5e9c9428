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


# --- marginal decoding: the most probable output -------------------------------------------------------
def brute_force_output_probs(fn, probs: list[torch.Tensor], outputs: list) -> torch.Tensor:
    """p(y) per example by looping over every tuple in Python: [B, |outputs|]."""
    result = torch.zeros(probs[0].shape[0], len(outputs), dtype=torch.float64)
    for b in range(probs[0].shape[0]):
        for row in itertools.product(*(range(p.shape[1]) for p in probs)):
            weight = 1.0
            for p, c in zip(probs, row, strict=True):
                weight *= float(p[b, c])
            value = fn(*row)
            if value is not None:
                result[b, outputs.index(value)] += weight
    return result


def test_marginal_decoding_is_the_argmax_of_the_exact_output_distribution():
    torch.manual_seed(1)
    outputs = list(range(-2, 3))
    sub = bp.Program(lambda a, b: a - b if a != b or a == 0 else None, (DIGIT3, DIGIT3), bp.Discrete(outputs))
    probs = [torch.softmax(2 * torch.randn(64, 3), -1) for _ in range(2)]
    truth = brute_force_output_probs(sub.fn, probs, outputs).argmax(dim=1)
    layer = bp.BlackBox(sub, bp.ISED(num_samples=4), seed=0)
    assert layer.predict(*probs, marginal=9) == [outputs[i] for i in truth.tolist()]
    argmax = layer.predict(*probs)
    assert argmax != layer.predict(*probs, marginal=9)  # on 64 random examples the two decodings differ somewhere


def test_sampled_marginal_decoding_estimates_the_same_argmax_and_leaves_training_draws_alone():
    torch.manual_seed(2)
    digit = bp.Discrete(range(10))
    add = bp.Program(lambda a, b, c: a + b + c, (digit,) * 3, bp.Discrete(range(28)))
    probs = [torch.softmax(3 * torch.randn(200, 10), -1) for _ in range(3)]
    exact = brute_force_output_probs(add.fn, probs, list(range(28)))
    top2 = exact.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1] > 0.1).nonzero().flatten()  # a margin that 20,000 draws resolve
    assert len(clear) > 50
    layer = bp.BlackBox(add, bp.ISED(num_samples=4), seed=0)
    before = layer.generator(torch.device("cpu")).get_state().clone()
    assert layer.predict(*probs, marginal=1_000) == exact.argmax(dim=1).tolist()  # 1,000 tuples: summed exactly
    drawn = layer.predict(*probs, marginal=500)  # 500 < 1,000 tuples: estimated from 500 draws
    assert drawn == layer.predict(*probs, marginal=500)  # its own generator, seeded on each call
    assert torch.equal(layer.generator(torch.device("cpu")).get_state(), before)
    # the estimated margin's standard error with 500 draws is at most 1/sqrt(500) = 0.045, so a true margin
    # of 0.1 flips an example with probability under 1.4%; 90% is a loose bound (the draws are seeded)
    hits = sum(drawn[i] == int(exact[i].argmax()) for i in clear.tolist())
    assert hits >= 0.9 * len(clear)


def test_marginal_decoding_with_sequence_inputs_failures_and_bad_requests():
    seq = bp.Program(lambda xs: sum(xs) if sum(xs) != 3 else None, inputs=(bp.Sequence(DIGIT3, 2),),
                     output=bp.Discrete(range(5)))
    probs = torch.tensor([[[0.1, 0.2, 0.7], [0.1, 0.2, 0.7]], [[0.0, 0.0, 1.0], [0.2, 0.8, 0.0]]])
    layer = bp.BlackBox(seq, bp.ISED(num_samples=4), seed=0)
    # example 0, two digits: p(4) = .49 against p(2) = .18 (3 fails); example 1, one digit: p(2) = 1
    assert layer.predict(bp.padded(probs, torch.tensor([2, 1])), marginal=9) == [4, 2]
    # every tuple fails (the only one is 1 + 2 = 3): no output, scored as wrong (None)
    only = torch.tensor([[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    assert layer.predict(bp.padded(only, torch.tensor([2])), marginal=9) == [None]
    assert layer.predict(bp.padded(only, torch.tensor([2])), marginal=3) == [None]  # sampled: all draws fail
    with pytest.raises(ValueError, match="not both"):
        layer.predict(bp.padded(probs, torch.tensor([2, 1])), marginal=9, search=4)
    pair = bp.Program(lambda a, b: (a, b), (DIGIT3, DIGIT3), bp.Product(DIGIT3, DIGIT3))
    with pytest.raises(ValueError, match="Product output"):
        bp.BlackBox(pair, bp.ISED()).predict(probs[:, 0], probs[:, 1], marginal=9)
    with pytest.raises(ValueError, match="int >= 1"):
        layer.predict(bp.padded(probs, torch.tensor([2, 1])), marginal=-1)


def test_train_reports_marginal_accuracy_without_changing_the_run(tmp_path):
    argv = ["train", "less-than", "--epochs", "1", "--train-size", "600", "--valid-size", "300", "--test-size", "300",
            "--threads", "1", "--quiet", "--json"]
    assert main([*argv, str(tmp_path / "plain.json"), "--marginal", "100"]) == 0
    assert main([*argv, str(tmp_path / "base.json")]) == 0
    marginal, base = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("plain", "base"))
    assert marginal["marginal"] == 100 and 0.5 < marginal["marginal_accuracy"] <= 1
    assert 0.5 < marginal["valid_marginal_accuracy"] <= 1
    for key in ("test_accuracy", "valid_accuracy", "program_calls"):  # decoding after training: same run
        assert marginal[key] == base[key]
    assert [h["train_loss"] for h in marginal["history"]] == [h["train_loss"] for h in base["history"]]
    grid = tmp_path / "grid.jsonl"
    grid.write_text(json.dumps(marginal) + "\n" + json.dumps(base) + "\n")
    md = tmp_path / "R.md"
    assert main(["report", str(grid), "--out", str(md), "--no-plots"]) == 0
    text = md.read_text()
    assert "marginal decoding" in text and "marginal=100" in text
    assert main([*argv, str(tmp_path / "x.json"), "--marginal", "-1"]) == 2
    # a Product output (sudoku's board) has no marginal decoding: refused before any training, not after it
    sudoku = ["train", "sudoku-partial", "--epochs", "1", "--train-size", "4", "--valid-size", "4", "--test-size", "4",
              "--marginal", "10", "--quiet", "--json", str(tmp_path / "s.json")]
    assert main(sudoku) == 2 and not (tmp_path / "s.json").exists()
