"""Substitution ISED: exact when its contexts cover the space, unbiased with uniform weighting,
the call budget it promises, clear errors, and a learning smoke test on sum2."""

from __future__ import annotations

import pytest
import torch

import blackprop as bp
from blackprop.beliefs import Beliefs
from blackprop.estimators.substitution_ised import calls_per_context

DIGIT3 = bp.Discrete(range(3))


def add_program(*inputs: bp.Discrete) -> bp.Program:
    top = sum(s.size - 1 for s in inputs)
    return bp.Program(lambda *xs: sum(xs), inputs=inputs, output=bp.Discrete(range(top + 1)))


def random_logits(batch: int, *sizes: int, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, size, generator=generator, requires_grad=True) for size in sizes]


def covering(num_contexts: int, program: bp.Program, beliefs: Beliefs) -> bp.SubstitutionISED:
    """Probability weighting with enough contexts that every rest tuple is drawn (checked by the caller)."""
    return bp.SubstitutionISED(num_samples=num_contexts * calls_per_context(beliefs), weighting="probability")


def test_worked_example_equals_exact_distribution():
    program = add_program(DIGIT3, DIGIT3)
    p_a, p_b = torch.tensor([[0.1, 0.6, 0.3]]), torch.tensor([[0.2, 0.1, 0.7]])
    layer = bp.BlackBox(program, bp.SubstitutionISED(num_samples=500, weighting="probability"), seed=0)
    assert layer(p_a, p_b)[0].tolist() == pytest.approx([0.02, 0.13, 0.19, 0.45, 0.21], abs=1e-6)


@pytest.mark.parametrize("sizes", [(3, 3), (2, 3, 4)], ids=["two-equal", "three-unequal"])
def test_full_coverage_equals_exact_distribution_and_gradient(sizes):
    """With every rest tuple among the contexts, q_d(y) = p(y) and the loss gradient is Exact's."""
    program = add_program(*(bp.Discrete(range(s)) for s in sizes))
    logits = random_logits(4, *sizes)
    target = torch.tensor([0, 2, 3, 1])

    def distribution_and_grads(estimator: bp.Estimator) -> tuple[torch.Tensor, list[torch.Tensor]]:
        layer = bp.BlackBox(program, estimator, seed=1)
        probs = [torch.softmax(x, dim=-1) for x in logits]
        distribution = layer(*probs).detach()
        grads = torch.autograd.grad(layer.loss(*probs, target=target), logits)
        return distribution, list(grads)

    beliefs = Beliefs.from_inputs(program.inputs, [torch.softmax(x, -1) for x in logits])
    estimator = covering(2000, program, beliefs)
    contexts = estimator.contexts(beliefs, torch.Generator().manual_seed(1))
    for example in contexts:  # the premise: every rest tuple of every variable is among the contexts
        for d in range(len(sizes)):
            rest = [j for j in range(len(sizes)) if j != d]
            seen = {tuple(row) for row in example[:, rest].tolist()}
            assert len(seen) == torch.Size([s for j, s in enumerate(sizes) if j != d]).numel()

    ours, our_grads = distribution_and_grads(estimator)
    exact, exact_grads = distribution_and_grads(bp.Exact())
    assert torch.allclose(ours, exact, atol=1e-6)
    for mine, theirs in zip(our_grads, exact_grads, strict=True):
        assert torch.allclose(mine, theirs, atol=1e-5)


def test_padded_sequences_equal_exact():
    """Padded positions are never substituted nor evaluated; the result matches Exact per length."""
    element = bp.Discrete(range(3))
    program = bp.Program(lambda xs: sum(xs), inputs=(bp.Sequence(element, max_len=3),), output=bp.Discrete(range(7)))
    probs = torch.softmax(torch.randn(3, 3, 3, generator=torch.Generator().manual_seed(2)), dim=-1)
    lengths = torch.tensor([3, 1, 2])
    layer = bp.BlackBox(program, bp.SubstitutionISED(num_samples=3000, weighting="probability"), seed=0)
    ours = layer(bp.padded(probs, lengths=lengths))
    exact = bp.BlackBox(program, bp.Exact())(bp.padded(probs, lengths=lengths))
    assert torch.allclose(ours, exact, atol=1e-6)
    assert program.stats.failures == 0


def test_uniform_weighting_is_unbiased():
    """E[q_d(y)] = p(y) with one sampled context: the mean over 4,000 draws is within 5 standard errors."""
    program = add_program(DIGIT3, DIGIT3, DIGIT3)
    probs = [torch.softmax(x.detach(), -1) for x in random_logits(1, 3, 3, 3, seed=3)]
    many = [p.expand(4000, -1) for p in probs]
    estimates = bp.BlackBox(program, bp.SubstitutionISED(num_samples=7), seed=0)(*many).detach()
    exact = bp.BlackBox(program, bp.Exact())(*probs).detach()[0]
    standard_error = estimates.std(dim=0) / 4000**0.5
    assert ((estimates.mean(dim=0) - exact).abs() <= 5 * standard_error + 1e-6).all()


def test_budget_contexts_and_calls():
    """sum16: one context is 1 + 16*9 = 145 distinct tuples, so k=160 buys 1 context, k=1600 buys 11."""
    digit = bp.Discrete(range(10))
    program = add_program(*(digit,) * 16)
    probs = [torch.softmax(torch.randn(8, 10), -1) for _ in range(16)]
    beliefs = Beliefs.from_inputs(program.inputs, probs)
    assert calls_per_context(beliefs) == 145
    assert bp.SubstitutionISED(num_samples=160).num_contexts(beliefs) == 1
    assert bp.SubstitutionISED(num_samples=1600).num_contexts(beliefs) == 11
    layer = bp.BlackBox(program, bp.SubstitutionISED(num_samples=1600), seed=0)
    layer.loss(*probs, target=torch.full((8,), 70))
    assert program.stats.calls <= 8 * 1600  # distinct tuples, at most the budget per example


def test_mode_context_is_the_argmax():
    program = add_program(DIGIT3, DIGIT3)
    probs = [torch.tensor([[0.1, 0.6, 0.3]]), torch.tensor([[0.2, 0.1, 0.7]])]
    beliefs = Beliefs.from_inputs(program.inputs, probs)
    estimator = bp.SubstitutionISED(num_samples=15, include_mode=True)
    contexts = estimator.contexts(beliefs, torch.Generator().manual_seed(0))
    assert contexts.shape == (1, 3, 2) and contexts[0, 0].tolist() == [1, 2]


def test_gradient_points_to_the_completing_value():
    """One context (1, 1) and label 4 = 2 + 2 under a+b: each digit's loss gradient favours 2 only."""
    program = add_program(DIGIT3, DIGIT3)
    logits = [torch.zeros(1, 3, requires_grad=True), torch.zeros(1, 3, requires_grad=True)]
    probs = [torch.softmax(x, -1) for x in logits]
    layer = bp.BlackBox(program, bp.SubstitutionISED(num_samples=5, include_mode=True), seed=0)
    # uniform beliefs: the mode context is (0, 0); substituting 2 into it gives 2, never 4 -> no signal
    layer.loss(*probs, target=torch.tensor([4])).backward()
    assert all(x.grad is not None and x.grad.abs().sum() == 0 for x in logits)
    logits = [torch.tensor([[0.0, 0.0, 1.0]], requires_grad=True) for _ in range(2)]
    probs = [torch.softmax(x, -1) for x in logits]
    layer.loss(*probs, target=torch.tensor([4])).backward()  # mode (2, 2): completes only with 2
    for x in logits:
        assert x.grad is not None and x.grad[0, 2] < 0 and (x.grad[0, :2] > 0).all()


def test_too_small_budget_names_the_minimum():
    digit = bp.Discrete(range(10))
    program = add_program(*(digit,) * 4)
    probs = [torch.softmax(torch.randn(2, 10), -1) for _ in range(4)]
    with pytest.raises(ValueError, match=r"needs 37 program calls.*num_samples=20.*>= 37"):
        bp.BlackBox(program, bp.SubstitutionISED(num_samples=20))(*probs)


def test_bad_settings():
    with pytest.raises(ValueError, match=r"SubstitutionISED\(weighting=...\): unknown value 'mc'"):
        bp.SubstitutionISED(weighting="mc")
    with pytest.raises(ValueError, match=r"SubstitutionISED\(num_samples=...\): must be an int >= 1"):
        bp.SubstitutionISED(num_samples=0)
    assert isinstance(bp.estimator("ised-sub", num_samples=50), bp.SubstitutionISED)


def test_learning_smoke_sum2():
    """sum2 over 200 'images' with one learnable logit row each (no MNIST, a few seconds): 300 Adam steps
    with two contexts per example (k=38) recover the digits. (Measured on the same proxy: at sum4, k=40,
    it reaches only ~20% where ISED reaches ~30% and Exact 100%; see results/efficiency.md.)"""
    torch.manual_seed(0)
    digit = bp.Discrete(range(10))
    truth = torch.randint(0, 10, (200,))
    program = add_program(digit, digit)
    layer = bp.BlackBox(program, bp.SubstitutionISED(num_samples=38), seed=0)
    logits = torch.zeros(200, 10, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=0.05)
    for _ in range(300):
        images = torch.randint(0, 200, (32, 2))
        probs = torch.softmax(logits[images], dim=-1)
        loss = layer.loss(probs[:, 0], probs[:, 1], target=truth[images].sum(1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert (logits.argmax(dim=1) == truth).float().mean() > 0.95
