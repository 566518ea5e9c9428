"""bp.Fold and the ExactFold estimator: exact agreement with enumeration, folds beyond sums, pruning
bounded by the reported mass, failures, errors, and cost linear in n."""

from __future__ import annotations

import time

import pytest
import torch

import blackprop as bp

DIGIT = bp.Discrete(range(10))
pytestmark = pytest.mark.usefixtures("one_thread")


def random_probs(batch: int, n: int, classes: int = 10, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, n, classes, generator=generator, dtype=torch.float64) * 2
    return [p for p in torch.softmax(logits, -1).unbind(1)]


def leaves(probs: list[torch.Tensor]) -> list[torch.Tensor]:
    return [p.detach().clone().requires_grad_(True) for p in probs]


def add(state: int, digit: int) -> int:
    return state + digit


def count_3_4(state: int, digit: int) -> int:
    return state + (digit in (3, 4))


def running_max(state: int, digit: int) -> int:
    return max(state, digit)


def mod7(state: int, digit: int) -> int:
    """A digit string read left to right, as a number mod 7 (Horner's rule)."""
    return (10 * state + digit) % 7


def bracket(depth: int | str, symbol: str) -> int | str:
    """Balanced-bracket depth; 'broken' once a ')' closes nothing (an absorbing state)."""
    if depth == "broken":
        return depth
    assert isinstance(depth, int)
    depth = depth + (1 if symbol == "(" else -1)
    return "broken" if depth < 0 else depth


def whole(step, init, finish=None):
    """The same program as one opaque function of all n symbols, for bp.Exact."""

    def program(*symbols):
        state = init
        for symbol in symbols:
            state = step(state, symbol)
        return state if finish is None else finish(state)

    return program


FOLDS = {
    "sum": (add, 0, DIGIT, bp.Discrete(range(46)), None),
    "count-3-4": (count_3_4, 0, DIGIT, bp.Discrete(range(6)), None),
    "running-max": (running_max, 0, DIGIT, bp.Discrete(range(10)), None),
    "mod7": (mod7, 0, DIGIT, bp.Discrete(range(7)), None),
    "balanced": (bracket, 0, bp.Discrete(["(", ")"]), bp.Discrete([False, True]), lambda depth: depth == 0),
}


@pytest.mark.parametrize("name", list(FOLDS))
def test_fold_equals_enumeration_in_value_and_gradient(name):
    step, init, element, output, finish = FOLDS[name]
    n = 5
    fold = bp.Fold(step, init, element=element, length=n, output=output, finish=finish)
    plain = bp.Program(whole(step, init, finish), inputs=(element,) * n, output=output)
    probs = random_probs(3, n, element.size, seed=1)
    fold_in, exact_in = leaves(probs), leaves(probs)
    fold_p = bp.BlackBox(fold, bp.ExactFold())(*fold_in)
    exact_p = bp.BlackBox(plain, bp.Exact())(*exact_in)
    torch.testing.assert_close(fold_p, exact_p, rtol=1e-9, atol=1e-12)
    target = exact_p.argmax(1).tolist()
    values = [output.values[i] for i in target]
    bp.BlackBox(fold, bp.ExactFold()).loss(*fold_in, target=values).backward()
    bp.BlackBox(plain, bp.Exact()).loss(*exact_in, target=values).backward()
    for a, b in zip(fold_in, exact_in, strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-7, atol=1e-10)
    # the table holds one call per reached (state, symbol) pair, far fewer than the 10^5 tuples
    assert fold.stats.calls <= fold.num_states * element.size + fold.num_states
    assert fold.stats.calls < element.size**n


def test_balanced_brackets_exact_probability():
    fold = bp.Fold(bracket, 0, element=bp.Discrete(["(", ")"]), length=4, output=bp.Discrete([False, True]),
                   finish=lambda depth: depth == 0)
    half = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    p = bp.BlackBox(fold, bp.ExactFold())(*[half] * 4)
    assert p[0, 1].item() == pytest.approx(2 / 16)  # (()) and ()() of 16 strings
    assert fold.evaluate(torch.tensor([[0, 0, 1, 1], [1, 0, 0, 1], [0, 1, 0, 1]])).tolist() == [1, 0, 1]


def test_evaluate_matches_the_plain_program_on_random_tuples():
    fold = bp.Fold(mod7, 0, element=DIGIT, length=12, output=bp.Discrete(range(7)))
    tuples = torch.randint(0, 10, (500, 12), generator=torch.Generator().manual_seed(3))
    expected = [int("".join(map(str, row))) % 7 for row in tuples.tolist()]
    assert fold.evaluate(tuples).tolist() == expected
    assert fold.num_states == 7 and fold.stats.calls == 70  # 7 states x 10 digits, each called once
    fold.evaluate(tuples)
    assert fold.stats.calls == 70


def test_sampling_estimators_run_on_a_fold():
    fold = bp.Fold(add, 0, element=DIGIT, length=8, output=bp.Discrete(range(73)))
    probs = leaves(random_probs(4, 8, seed=2))
    for estimator in (bp.ISED(num_samples=40, weights="importance", site_exploration=0.5), bp.REINFORCE(num_samples=40),
                      bp.IndeCateRPlus(num_samples=4)):
        loss = bp.BlackBox(fold, estimator, seed=0).loss(*probs, target=[10, 20, 30, 40])
        loss.backward()
        assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in probs)


@pytest.mark.parametrize("settings", [{"min_mass": 1e-6}, {"max_states": 60}, {"min_mass": 1e-9, "max_states": 80}])
def test_pruning_error_is_bounded_by_the_reported_truncated_mass(settings):
    n = 40
    fold = bp.Fold(add, 0, element=DIGIT, length=n, output=bp.Discrete(range(9 * n + 1)))
    probs = torch.stack(random_probs(4, n, seed=4), 1)
    exact, none_lost = fold.log_distribution(probs)
    exact_states = fold.trace.max_live_states
    assert float(none_lost.max()) == 0.0
    pruned, truncated = fold.log_distribution(probs, **settings)
    assert fold.trace.max_live_states < exact_states  # pruning did drop states
    assert fold.trace.max_live_states <= settings.get("max_states", exact_states)
    assert float(truncated.min()) > 0.0
    gap = exact.exp() - pruned.exp()
    assert float(gap.min()) >= -1e-12  # pruning only removes mass
    assert bool((gap.max(1).values <= truncated + 1e-12).all())  # every p(y) within the reported mass
    total_gap = 1.0 - pruned.exp().sum(1)
    torch.testing.assert_close(total_gap, truncated, rtol=1e-6, atol=1e-9)


def test_failures_lose_their_mass_and_are_counted():
    def fragile(state, digit):
        if digit == 7:
            raise ZeroDivisionError("seven")
        return state + digit

    fold = bp.Fold(fragile, 0, element=DIGIT, length=3, output=bp.Discrete(range(28)))
    uniform = torch.full((1, 10), 0.1, dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="raised ZeroDivisionError"):
        p = bp.BlackBox(fold, bp.ExactFold())(*[uniform] * 3)
    assert p.sum().item() == pytest.approx(0.9**3)
    assert fold.stats.failures > 0 and "raised" in fold.stats.errors
    assert fold.evaluate(torch.tensor([[1, 7, 1], [1, 2, 3]])).tolist() == [-1, 6]


def test_declared_states_refuse_a_step_outside_them():
    fold = bp.Fold(add, 0, element=DIGIT, length=2, output=bp.Discrete(range(19)), states=bp.Discrete(range(10)))
    with pytest.warns(RuntimeWarning, match="not a declared state"):
        assert fold.evaluate(torch.tensor([[4, 5], [5, 5]])).tolist() == [9, -1]


def test_errors_name_the_argument_and_a_fix():
    with pytest.raises(ValueError, match=r"Fold\(length=...\): .* >= 1, got 0"):
        bp.Fold(add, 0, element=DIGIT, length=0, output=bp.Discrete(range(5)))
    with pytest.raises(TypeError, match=r"Fold\(element=...\): give a Discrete"):
        bp.Fold(add, 0, element=range(10), length=2, output=bp.Discrete(range(5)))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Fold\(init=...\): states must be hashable"):
        bp.Fold(add, [0], element=DIGIT, length=2, output=bp.Discrete(range(5)))
    with pytest.raises(ValueError, match=r"ExactFold\(min_mass=...\): must be a number in \[0.0, 1.0\), got 1.5"):
        bp.ExactFold(min_mass=1.5)
    with pytest.raises(ValueError, match=r"ExactFold\(max_states=...\): must be an int >= 1, got 0"):
        bp.ExactFold(max_states=0)
    plain = bp.Program(lambda a, b: a + b, inputs=(DIGIT, DIGIT), output=bp.Discrete(range(19)))
    with pytest.raises(TypeError, match="ExactFold: the program must be a bp.Fold"):
        bp.BlackBox(plain, bp.ExactFold())
    assert isinstance(bp.estimator("fold", min_mass=1e-9), bp.ExactFold)


def test_cost_per_example_grows_linearly_in_n():
    """Exact sums are quadratic (the states grow with n); running-max has 10 states, so its exact
    propagation must cost linear time: time(256) / time(64) near 4, far below 16."""

    def seconds(n: int) -> float:
        fold = bp.Fold(running_max, 0, element=DIGIT, length=n, output=bp.Discrete(range(10)))
        probs = torch.stack(random_probs(16, n, seed=5), 1).float().requires_grad_(True)
        fold.log_distribution(probs)  # fills the table
        best = float("inf")
        for _ in range(5):  # CPU time of this process, best of 5: other jobs on the machine do not count
            began = time.process_time()
            log_p, _ = fold.log_distribution(probs)
            log_p[:, 9].sum().backward()
            best = min(best, time.process_time() - began)
        return best

    ratio = seconds(256) / seconds(64)
    assert 2.0 < ratio < 8.0, f"time(256) / time(64) = {ratio:.2f}; linear cost gives about 4"


@pytest.mark.parametrize("max_states", [None, 12])
def test_hand_written_backward_passes_gradcheck_with_failures_and_a_cap(max_states):
    def fragile(state, digit):
        if state + digit == 13:
            raise ValueError("thirteen")
        return state + digit

    with pytest.warns(RuntimeWarning, match="thirteen"):
        fold = bp.Fold(fragile, 0, element=DIGIT, length=4, output=bp.Discrete(range(37)))
        fold.evaluate(torch.cartesian_prod(*[torch.arange(10)] * 4))  # fills the table (and warns once)
    probs = torch.stack(random_probs(2, 4, seed=6), 1).requires_grad_(True)
    weights = torch.rand(2, 37, generator=torch.Generator().manual_seed(7), dtype=torch.float64)

    def loss(p):
        return (fold.log_distribution(p, max_states=max_states)[0].exp() * weights).sum()

    assert torch.autograd.gradcheck(loss, (probs,), eps=1e-6, atol=1e-8)
    if max_states is not None:
        assert fold.trace.max_live_states == max_states and fold.trace.max_truncated > 0


@pytest.mark.parametrize("min_mass", [0.0, 1e-12])
def test_impossible_target_gives_a_finite_loss_and_no_nan_gradient(min_mass):
    """p(y) = 0 exactly (the true digit has probability 0 in float32, or its state was pruned): the
    loss is clamped and the gradient is finite, so one such example cannot turn the network to NaN."""
    digit = bp.Discrete(range(10))
    total = bp.Fold(lambda s, x: s + x, 0, element=digit, length=4, output=bp.Discrete(range(37)))
    layer = bp.BlackBox(total, bp.ExactFold(min_mass=min_mass))
    logits = torch.zeros(2, 4, 10)
    logits[:, :, 1] = 200.0  # softmax puts exactly 0 on every other digit: every sum is 4
    logits = logits.requires_grad_()
    probs = torch.softmax(logits, dim=-1)
    loss = layer.loss(*probs.unbind(1), target=torch.tensor([4, 7]))  # 7 is impossible
    loss.backward()
    assert torch.isfinite(loss) and float(loss.detach()) == pytest.approx(50.0)  # (0 + 100) / 2: -log p clamped at 100
    assert torch.isfinite(logits.grad).all()
