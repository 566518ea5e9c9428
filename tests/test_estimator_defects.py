"""Estimator defects found in review (issue 17), each pinned by a test."""

from __future__ import annotations

import pytest
import torch

import blackprop as bp

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

DIGIT3 = bp.Discrete(range(3))


def add3() -> bp.Program:
    return bp.Program(lambda a, b: a + b, inputs=(DIGIT3, DIGIT3), output=bp.Discrete(range(5)))


ALL = {
    "ised": bp.ISED(num_samples=8),
    "ised-importance": bp.ISED(num_samples=8, weights="importance", site_exploration=0.5),
    "ised-bce": bp.ISED(num_samples=8, normalize="l2", loss_fn="bce"),
    "exact": bp.Exact(),
    "reinforce": bp.REINFORCE(num_samples=4, baseline="leave-one-out"),
    "indecater": bp.IndeCateR(num_samples=3),
    "indecater+": bp.IndeCateRPlus(num_samples=3),
    "nasr": bp.NASR(),
    "anesi": bp.ANeSI(num_samples=16, hidden_size=8, warmup_steps=0),
}


def test_importance_weights_with_a_redrawn_zero_probability_class_are_finite():
    """p = softmax of logits 200 apart: exact zeros in float32; the one-site redraw picks them (two
    classes stay positive, so each digit is explorable, not a point mass)."""
    logits = torch.tensor([[200.0, 199.0, 0.0], [0.0, 200.0, 199.0]], requires_grad=True)
    probs = torch.softmax(logits, -1)
    assert (probs == 0).sum() == 2
    estimator = bp.ISED(num_samples=40, weights="importance", site_exploration=0.5, exploration=0.0,
                        enumerate_within_budget=False)
    layer = bp.BlackBox(add3(), estimator, seed=0)
    beliefs = layer.beliefs(probs, probs)
    tuples = beliefs.sample(40, torch.Generator().manual_seed(0))
    from blackprop.estimators.ised import redraw_one_site

    tuples = redraw_one_site(beliefs, tuples, estimator.site_draws(beliefs), torch.Generator().manual_seed(1))
    scores = estimator.tuple_scores(beliefs, tuples)
    impossible = (beliefs.log_prob_terms(tuples) == float("-inf")).any(dim=2)
    assert impossible.any() and not torch.isnan(scores).any()
    assert (scores[impossible] == float("-inf")).all()  # such a draw weighs 0
    loss = layer.loss(probs, probs, target=[1, 1])
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_importance_weights_without_normalisation_are_not_capped_at_one():
    """One variable, P = identity, k = 1, draws from 0.1 p + 0.9 uniform: a hit on class 1 weighs
    p/q = .95 / .395 > 1. Capped at 1 it had no gradient; uncapped, -log w(1) lowers as p(1) rises."""
    identity = bp.Program(lambda a: a, inputs=(bp.Discrete(range(2)),), output=bp.Discrete(range(2)))
    estimator = bp.ISED(num_samples=1, weights="importance", normalize="none", exploration=0.9, site_exploration=0.0)
    hits = 0
    for seed in range(20):
        logits = torch.tensor([[0.0, 2.944]], requires_grad=True)  # p = [.05, .95]
        layer = bp.BlackBox(identity, estimator, seed=seed)
        summary = layer(torch.softmax(logits, -1)).detach()
        if summary[0, 1] == 0:  # this seed drew class 0: no hit
            continue
        hits += 1
        assert summary[0, 1].item() == pytest.approx(0.95 / (0.1 * 0.95 + 0.45), rel=1e-3)  # 2.4 > 1
        layer = bp.BlackBox(identity, estimator, seed=seed)
        loss = layer.loss(torch.softmax(logits, -1), target=[1])
        loss.backward()
        assert loss.item() < 0 and logits.grad[0, 1] < 0 < logits.grad[0, 0]
    assert hits >= 5


@pytest.mark.filterwarnings("ignore:.*a is zero")
def test_anesi_surrogate_learns_the_failure_mass():
    """P(a, b) = a + b fails where a == 0: a third of the tuples under uniform beliefs. The surrogate's
    q(y | uniform) must approach p(y) = [0, 1, 2, 2, 1] / 9 (failure mass 3/9), not p(y | success)."""

    def fragile(a, b):
        if a == 0:
            raise ValueError("a is zero")
        return a + b

    program = bp.Program(fragile, inputs=(DIGIT3, DIGIT3), output=bp.Discrete(range(5)))
    torch.manual_seed(0)
    layer = bp.BlackBox(program, bp.ANeSI(num_samples=256, hidden_size=32, num_layers=2, warmup_steps=10_000), seed=0)
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-2)
    uniform = torch.full((8, 3), 1 / 3)
    for _ in range(300):
        loss = layer.loss(uniform, uniform, target=[1] * 8)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    q = layer(uniform[:1], uniform[:1]).detach().squeeze(0)
    p_y = torch.tensor([0, 1, 2, 2, 1]) / 9
    assert (q - p_y).abs().sum().item() < 0.08, q
    assert (q - p_y * 9 / 6).abs().sum().item() > 0.25  # far from p(y | success)
    assert q.sum().item() == pytest.approx(6 / 9, abs=0.04)


@pytest.mark.parametrize("name", sorted(ALL))
def test_empty_batch_gives_zero_loss_and_zero_gradient(name):
    logits = torch.zeros(0, 3, requires_grad=True)
    probs = torch.softmax(logits, -1)
    layer = bp.BlackBox(add3(), ALL[name], seed=0)
    loss = layer.loss(probs, probs, target=[])
    loss.backward()
    assert loss.item() == 0.0 and logits.grad is not None and logits.grad.shape == (0, 3)
    assert layer(probs, probs).shape == (0, 5)
    seq = bp.Program(lambda xs: sum(xs), inputs=(bp.Sequence(DIGIT3, 2),), output=bp.Discrete(range(5)))
    assert bp.BlackBox(seq, ALL[name], seed=0).loss(bp.padded(torch.zeros(0, 2, 3), torch.zeros(0)),
                                                     target=torch.zeros(0, dtype=torch.long)).item() == 0.0


def test_empty_batch_with_targets_is_refused():
    probs = torch.zeros(0, 3)
    with pytest.raises(ValueError, match=r"target: expected 0 values \(one per example\)"):
        bp.BlackBox(add3()).loss(probs, probs, target=[1, 2])


def test_ised_docstring_states_what_the_default_estimates_and_no_experiment_log():
    doc = bp.estimators.ised.__doc__
    assert "Q2(y) = sum_{x : P(x) = y} p(x)^2" in doc and "*half* the gradient" in doc
    assert "measured" not in doc.lower() and "results/" not in doc
