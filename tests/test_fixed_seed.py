"""Fixed-seed results of every estimator, pinned (issue 19: speed work must not change results).

Each case runs one seeded layer (``BlackBox(..., seed=0)``) on fixed probabilities and records the
loss and the gradient with respect to the network's logits. ``tests/data/fixed_seed_results.json``
holds the figures the code gave before the round-3 speed changes (commit 64d84ee); the same draws
must give the same loss and gradient. The comparison allows float rounding (rtol 1e-6, and 1e-5 of
the gradient's L1 norm for entries that cancel to about 0 or sum many entries, which differ at that
level between CPUs with other vector kernels): a change of the draws moves the figures by far more. Regenerate (only when a result is
meant to change, saying why in the commit) with

    PYTHONPATH=src python tests/test_fixed_seed.py > tests/data/fixed_seed_results.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import blackprop as bp
from blackprop.spaces import Product, padded
from blackprop.tasks.hwf.formula import formula_value, tolerance_key
from blackprop.tasks.hwf.task import SYMBOLS
from blackprop.tasks.sudoku.solver import generate, solve_cells

PINNED = Path(__file__).parent / "data" / "fixed_seed_results.json"
DIGIT = bp.Discrete(range(10))


def _sum(*digits: Any) -> Any:
    return sum(digits)


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a + b) % 3, a * b % 3


def _digits_case(program: Any, n: int, batch: int = 4) -> tuple[Any, list[Any], Any]:
    generator = torch.Generator().manual_seed(n)
    logits = [torch.randn(batch, 10, generator=generator) for _ in range(n)]
    target = torch.randint(0, 9 * n + 1, (batch,), generator=generator)
    return program, logits, target


def sum_program(n: int) -> tuple[Any, list[Any], Any]:
    return _digits_case(bp.Program(_sum, (DIGIT,) * n, bp.Discrete(range(9 * n + 1))), n)


def sum_batched(n: int) -> tuple[Any, list[Any], Any]:
    return _digits_case(bp.BatchedProgram(_sum, (DIGIT,) * n, bp.Discrete(range(9 * n + 1))), n)


def formula_case() -> tuple[Any, list[Any], Any]:
    """hwf's program (Open output, Sequence input, most draws raise) on formulas of 1-5 symbols."""
    generator = torch.Generator().manual_seed(5)
    logits = torch.randn(4, 5, 14, generator=generator)
    lengths = torch.tensor([1, 3, 5, 3])
    program = bp.Program(formula_value, inputs=(bp.Sequence(SYMBOLS, 5),), output=bp.Open(canonical=tolerance_key))
    return program, [(logits, lengths)], [1.0, 2.0, 3.0, 5.0]


def product_case() -> tuple[Any, list[Any], Any]:
    generator = torch.Generator().manual_seed(6)
    program = bp.Program(_pair, (bp.Discrete(range(3)),) * 2, Product(bp.Discrete(range(3)), bp.Discrete(range(3))))
    return program, [torch.randn(4, 3, generator=generator) for _ in range(2)], [(0, 1), (2, 2), (1, 0), (0, 0)]


def sudoku_case() -> tuple[Any, list[Any], Any]:
    """The sudoku task's program (Product of 81 cells, cache="batch") on two boards, digits about 99.7% right."""
    puzzles, solutions = generate(2, seed=0)
    digits, positions, lengths = [], [], []
    for puzzle in puzzles:
        cells = [i for i in range(81) if puzzle[i]]
        digits.append([int(puzzle[i]) - 1 for i in cells] + [0] * (81 - len(cells)))
        positions.append(cells + [0] * (81 - len(cells)))
        lengths.append(len(cells))
    generator = torch.Generator().manual_seed(7)
    digit_logits = torch.randn(2, 81, 9, generator=generator) + 8.0 * torch.nn.functional.one_hot(torch.tensor(digits), 9)
    cell_logits = 1e4 * torch.nn.functional.one_hot(torch.tensor(positions), 81).float()
    board = Product(*([bp.Discrete(range(1, 10))] * 81))
    program = bp.Program(solve_cells, inputs=(bp.Sequence(bp.Discrete(range(1, 10)), 81), bp.Sequence(bp.Discrete(range(81)), 81)),
                         output=board, cache="batch")
    lengths_t = torch.tensor(lengths)
    return program, [(digit_logits, lengths_t), (cell_logits, lengths_t)], [tuple(s.tolist()) for s in solutions]


CASES: dict[str, Callable[[], tuple[Any, list[Any], Any]]] = {
    "sum2": lambda: sum_program(2),
    "sum4": lambda: sum_program(4),
    "sum3-batched": lambda: sum_batched(3),
    "formula": formula_case,
    "product": product_case,
    "sudoku": sudoku_case,
}
ESTIMATORS: dict[str, dict[str, Any]] = {
    "ised": {"num_samples": 30},
    "ised-paper": {"num_samples": 30},
    "ised-site": {"num_samples": 30, "site_exploration": 0.3},
    "ised-explore": {"num_samples": 30, "exploration": 0.1},
    "reinforce": {"num_samples": 30},
    "indecater": {"num_samples": 5},
    "nasr": {},
}
SKIP = {("indecater", "sudoku"), ("indecater", "formula"), ("nasr", "product"), ("nasr", "sudoku")}


def _estimator(name: str) -> Any:
    settings = ESTIMATORS[name]
    if name.startswith("ised-") and name != "ised-paper":
        return bp.estimator("ised", **settings)
    return bp.estimator(name, **settings)


def run_case(case: str, estimator: str) -> dict[str, Any]:
    """Loss and gradient (w.r.t. the logits) of one seeded layer step, as plain floats."""
    program, beliefs, target = CASES[case]()
    leaves = [(b[0] if isinstance(b, tuple) else b).clone().requires_grad_() for b in beliefs]
    inputs = [padded(leaf.softmax(-1), b[1]) if isinstance(b, tuple) else leaf.softmax(-1)
              for leaf, b in zip(leaves, beliefs, strict=True)]
    layer = bp.BlackBox(program, _estimator(estimator), seed=0)
    try:
        loss = layer.loss(*inputs, target=target)
    except (ValueError, TypeError) as error:  # a combination the estimator refuses: pinned as refused
        return {"refused": type(error).__name__}
    loss.backward()
    grads = [leaf.grad if leaf.grad is not None else torch.zeros_like(leaf) for leaf in leaves]
    return {"loss": float(loss), "grad": [_digest(g) for g in grads]}


def _digest(grad: torch.Tensor) -> list[float]:
    """The gradient's values, or for a large one its sum, absolute sum and four fixed random projections."""
    flat = grad.double().flatten()
    if flat.numel() <= 800:
        return flat.tolist()
    directions = torch.randn(4, flat.numel(), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return [float(flat.sum()), float(flat.abs().sum()), *(directions @ flat).tolist()]


def all_results() -> dict[str, Any]:
    return {f"{e}/{c}": run_case(c, e) for e in ESTIMATORS for c in CASES if (e, c) not in SKIP}


@pytest.fixture(scope="module")
def pinned() -> dict[str, Any]:
    return json.loads(PINNED.read_text())


@pytest.mark.parametrize("key", [f"{e}/{c}" for e in ESTIMATORS for c in CASES if (e, c) not in SKIP])
def test_fixed_seed_loss_and_gradient_are_unchanged(key: str, pinned: dict[str, Any]) -> None:
    estimator, case = key.split("/")
    got, want = run_case(case, estimator), pinned[key]
    assert got.keys() == want.keys()
    if "refused" in want:
        assert got == want
        return
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-6, abs=1e-9)
    for g, w in zip(got["grad"], want["grad"], strict=True):
        # float32 rounding is relative to the gradient's scale, not to each entry: an entry that cancels
        # to ~0, or a projection summing hundreds of entries, moves by ~1e-6 of the L1 norm between
        # CPUs whose vector kernels differ (measured: at most 1.2e-6 of it, sudoku); other draws move
        # entries by 1e-3 of it and more
        scale = float(torch.tensor(w, dtype=torch.float64).abs().sum())
        assert torch.allclose(torch.tensor(g), torch.tensor(w), rtol=1e-6, atol=1e-5 * scale + 1e-9), key


if __name__ == "__main__":
    json.dump(all_results(), sys.stdout, indent=None)
    sys.stdout.write("\n")
