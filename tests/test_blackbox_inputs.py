"""BlackBox on the inputs of issue 20: single targets, generators as seeds, low-precision softmax,
logits, and a state dict that resumes the layer's sampling exactly."""

from __future__ import annotations

import io

import pytest
import torch

import blackprop as bp

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

DIGIT3 = bp.Discrete(range(3))


def add3() -> bp.Program:
    return bp.Program(lambda a, b: a + b, inputs=(DIGIT3, DIGIT3), output=bp.Discrete(range(5)))


P = torch.tensor([[0.2, 0.5, 0.3]])


def test_a_single_target_value_for_a_batch_of_one():
    layer = bp.BlackBox(add3(), bp.Exact())
    assert layer.loss(P, P, target=3).item() == pytest.approx(layer.loss(P, P, target=[3]).item())
    assert layer.loss(P, P, target=torch.tensor(3)).item() == pytest.approx(layer.loss(P, P, target=[3]).item())
    two = P.repeat(2, 1)
    with pytest.raises(ValueError, match=r"target: expected one value per example \(2 values, as a list or "
                                         r"tensor\), got the single value 3"):
        layer.loss(two, two, target=3)


def test_a_generator_as_seed_is_used_as_is():
    reference = bp.BlackBox(add3(), bp.REINFORCE(num_samples=50), seed=7)(P, P)
    layer = bp.BlackBox(add3(), bp.REINFORCE(num_samples=50), seed=torch.Generator().manual_seed(7))
    assert torch.equal(layer(P, P), reference)
    p = P.clone().requires_grad_()
    layer.loss(p, p, target=[2]).backward()  # no RuntimeError at the first loss
    assert torch.isfinite(p.grad).all()


@pytest.mark.parametrize("seed", ["0", 1.5, True, object()])
def test_a_bad_seed_is_refused_at_construction(seed):
    with pytest.raises(TypeError, match=r"BlackBox\(seed=...\): expected an int, a torch.Generator or None"):
        bp.BlackBox(add3(), seed=seed)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_low_precision_softmax_over_100_classes_is_accepted(dtype):
    hundred = bp.Discrete(range(100))
    program = bp.Program(lambda a, b: (a + b) % 100, inputs=(hundred, hundred), output=hundred)
    logits = (3 * torch.randn(16, 100, generator=torch.Generator().manual_seed(0))).to(dtype).requires_grad_()

    def low_precision_softmax() -> torch.Tensor:  # normalised in the dtype itself: sums 1 +- a few eps
        exp = torch.exp(logits - logits.max(-1, keepdim=True).values)
        return exp / exp.sum(-1, keepdim=True)

    probs = low_precision_softmax()
    if dtype == torch.bfloat16:
        assert (probs.double().sum(-1) - 1).abs().max() > 1e-3  # the float32 tolerance would reject it
    estimators = (bp.ISED(num_samples=20), bp.REINFORCE(num_samples=8), bp.estimator("ised-paper", num_samples=20))
    for estimator in estimators:
        probs = low_precision_softmax()
        loss = bp.BlackBox(program, estimator, seed=0).loss(probs, probs, target=list(range(16)))
        assert torch.isfinite(loss)
        if dtype == torch.bfloat16:  # float16 cannot hold d loss / d p ~ 1/p of a rare drawn class (4.7e5 here)
            loss.backward()
            assert torch.isfinite(logits.grad).all()
    for estimator in estimators:  # logits: the softmax runs in float32, every gradient stays finite
        logits.grad = None
        loss = bp.BlackBox(program, estimator, seed=0, from_logits=True).loss(logits, logits, target=list(range(16)))
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    probs = low_precision_softmax().detach()
    with pytest.raises(ValueError, match=r"must sum to 1 .*found 1\.(49|50)"):
        bp.BlackBox(program)(probs * 1.5, probs)


def test_logits_are_taken_with_from_logits():
    logits = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    by_probs = bp.BlackBox(add3(), bp.ISED(num_samples=30), seed=0)
    by_logits = bp.BlackBox(add3(), bp.ISED(num_samples=30), seed=0, from_logits=True)
    probs = torch.softmax(logits, -1)
    target = [0, 1, 2, 3]
    assert torch.equal(by_logits.loss(logits, logits, target=target), by_probs.loss(probs, probs, target=target))
    assert by_logits.predict(logits, logits) == by_probs.predict(probs, probs)
    seq = bp.Program(lambda xs: sum(xs), inputs=(bp.Sequence(DIGIT3, 2),), output=bp.Discrete(range(5)))
    out = bp.BlackBox(seq, bp.Exact(), from_logits=True)(bp.padded(torch.zeros(1, 2, 3), torch.tensor([2])))
    assert out[0].tolist() == pytest.approx([1 / 9, 2 / 9, 3 / 9, 2 / 9, 1 / 9])
    with pytest.raises(ValueError, match=r"apply softmax first, or pass logits with BlackBox\(\.\.\., from_logits=True\)"):
        by_probs(logits, logits)
    with pytest.raises(ValueError, match=r"must sum to 1 .*BlackBox\(\.\.\., from_logits=True\)"):
        by_probs(logits.exp(), logits.exp())
    with pytest.raises(TypeError, match=r"BlackBox\(from_logits=...\): expected True or False"):
        bp.BlackBox(add3(), from_logits="yes")


def test_a_restored_layer_draws_the_same_samples():
    program = add3()
    layer = bp.BlackBox(program, bp.REINFORCE(num_samples=20), seed=3)
    for _ in range(3):
        layer(P, P)
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    expected = [layer(P, P) for _ in range(3)]

    restored = bp.BlackBox(add3(), bp.REINFORCE(num_samples=20), seed=3)
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer, weights_only=False))
    assert all(torch.equal(restored(P, P), e) for e in expected)
    fresh = bp.BlackBox(add3(), bp.REINFORCE(num_samples=20), seed=3)
    assert not torch.equal(fresh(P, P), expected[0])  # without the state, the stream restarts


def test_state_dict_includes_the_program_state_where_the_program_has_one():
    program = add3()
    saved: dict = {}
    program.state_dict = lambda: {"memo": 42}  # type: ignore[attr-defined]
    program.load_state_dict = saved.update  # type: ignore[attr-defined]
    layer = bp.BlackBox(program, seed=0)
    state = layer.state_dict()
    assert state["_extra_state"]["program"] == {"memo": 42}
    layer.load_state_dict(state)
    assert saved == {"memo": 42}


def test_a_state_dict_from_before_the_generators_were_saved_still_loads():
    layer = bp.BlackBox(add3(), bp.ANeSI(num_samples=8, hidden_size=8), seed=0)
    old = {k: v for k, v in layer.state_dict().items() if not k.endswith("_extra_state")}
    layer.load_state_dict(old)  # strict, no error


def test_one_fused_distribution_check_still_names_the_input_and_the_fault():
    """The distributions are checked once on the stacked beliefs; a failure names the first bad input,
    including NaN or negative values on padded Sequence positions and inputs of several dtypes."""
    good = torch.tensor([[0.2, 0.5, 0.3]])
    layer = bp.BlackBox(add3())
    with pytest.raises(ValueError, match=r"^input 1: probabilities contain NaN; check the network's outputs"):
        layer(good, torch.tensor([[0.2, float("nan"), 0.8]]))
    with pytest.raises(ValueError, match=r"^input 1: probabilities contain negative values; apply softmax first"):
        layer(good, torch.tensor([[-0.2, 0.4, 0.8]]))  # sums to 1: only the sign is wrong
    with pytest.raises(ValueError, match=r"^input 0: probabilities must sum to 1 over the last dimension \(found 0\.9000\)"):
        layer(torch.tensor([[0.2, 0.4, 0.3]]), good.double())
    assert layer.loss(good.half(), good.double(), target=[3]).item() >= 0  # each input within its own tolerance
    seq = bp.Program(lambda xs: sum(xs), inputs=(bp.Sequence(DIGIT3, 2),), output=bp.Discrete(range(5)))
    probs = torch.tensor([[[0.2, 0.5, 0.3], [0.0, 0.0, 0.0]]])  # the padded position need not sum to 1
    assert bp.BlackBox(seq, bp.Exact())(bp.padded(probs, torch.tensor([1])))[0].tolist() == pytest.approx(
        [0.2, 0.5, 0.3, 0.0, 0.0])
    for bad, fault in ((float("nan"), "contain NaN"), (-1.0, "contain negative values")):
        padded_bad = probs.clone()
        padded_bad[0, 1, 0] = bad
        with pytest.raises(ValueError, match=f"^input 0: probabilities {fault}"):
            bp.BlackBox(seq, bp.Exact())(bp.padded(padded_bad, torch.tensor([1])))
