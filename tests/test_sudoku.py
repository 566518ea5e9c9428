"""Sudoku solver and generator, the Product output space on a tiny program, and the sudoku tasks."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
import torch

import blackprop as bp
from blackprop.estimators.exact import enumerate_tuples
from blackprop.spaces import Product, output_matches
from blackprop.tasks.sudoku.solver import (
    Ambiguous,
    SudokuError,
    Unsolvable,
    count_solutions,
    generate,
    is_valid_solution,
    random_symmetry,
    solve,
    solve_cells,
)

# A well-known puzzle (the example in Peter Norvig's "Solving Every Sudoku Puzzle") and its solution.
NORVIG = "003020600900305001001806400008102900700000008006708200002609500800203009005010300"
NORVIG_SOLUTION = "483921657967345821251876493548132976729564138136798245372689514814253769695417382"
# Arto Inkala's "world's hardest sudoku" (21 givens, needs search), and its published solution.
INKALA = "800000000003600000070090200050007000000045700000100030001000068008500010090000400"
INKALA_SOLUTION = "812753649943682175675491283154237896369845721287169534521974368438526917796318452"


def board(text: str) -> list[int]:
    return [int(c) for c in text]


# --- solver -------------------------------------------------------------------------------------
@pytest.mark.parametrize("puzzle,solution", [(NORVIG, NORVIG_SOLUTION), (INKALA, INKALA_SOLUTION)])
def test_solver_solves_known_puzzles(puzzle, solution):
    assert solve(board(puzzle)) == tuple(board(solution))
    assert is_valid_solution(board(solution))


def test_solved_board_is_its_own_solution_and_givens_are_kept():
    full = board(NORVIG_SOLUTION)
    assert solve(full) == tuple(full)
    digits = [d for d in board(NORVIG) if d]
    positions = [i for i, d in enumerate(board(NORVIG)) if d]
    assert solve_cells(digits, positions) == tuple(board(NORVIG_SOLUTION))


def test_conflicting_givens_are_unsolvable():
    conflicting = board(NORVIG)
    conflicting[0] = 2  # a second 2 in the first row (cell 4 holds a 2)
    with pytest.raises(Unsolvable, match="no solution"):
        solve(conflicting)


def test_board_without_equal_givens_in_a_unit_can_still_be_unsolvable():
    # no two equal givens share a unit, yet no solution exists: cell 0 can hold no digit
    puzzle = [0] * 81
    for column, digit in zip(range(1, 9), range(1, 9), strict=True):
        puzzle[column] = digit  # row 0: 1..8 in columns 1..8, so cell 0 must be 9
    puzzle[9 * 4] = 9  # a 9 in column 0
    with pytest.raises(Unsolvable):
        solve(puzzle)


def test_ambiguous_board_raises_and_counting_finds_two_solutions():
    puzzle = board(NORVIG_SOLUTION)
    # blank a "deadly rectangle": two rows, two columns, same box pair, holding a/b and b/a
    rows, columns = _deadly_rectangle(puzzle)
    for r in rows:
        for c in columns:
            puzzle[9 * r + c] = 0
    assert len(count_solutions(puzzle, limit=5)) == 2
    with pytest.raises(Ambiguous, match="more than one solution"):
        solve(puzzle)
    with pytest.raises(Ambiguous):
        solve([0] * 81)
    assert isinstance(Ambiguous("x"), SudokuError) and isinstance(Unsolvable("x"), SudokuError)


def _deadly_rectangle(grid: list[int]) -> tuple[tuple[int, int], tuple[int, int]]:
    for r1, r2 in itertools.combinations(range(9), 2):
        if r1 // 3 != r2 // 3:
            continue
        for c1, c2 in itertools.combinations(range(9), 2):
            if c1 // 3 == c2 // 3:
                continue
            a, b = grid[9 * r1 + c1], grid[9 * r1 + c2]
            if grid[9 * r2 + c1] == b and grid[9 * r2 + c2] == a:
                return (r1, r2), (c1, c2)
    raise AssertionError("no deadly rectangle in this grid")


def test_malformed_boards_are_rejected_with_the_reason():
    with pytest.raises(ValueError, match="expected 81 cells"):
        solve([0] * 80)
    with pytest.raises(ValueError, match=r"digits 0\.\.9"):
        solve([10] + [0] * 80)
    with pytest.raises(ValueError, match="given twice"):
        solve_cells([1, 2], [5, 5])
    with pytest.raises(ValueError, match="2 digits but 1 positions"):
        solve_cells([1, 2], [5])


# --- generator ----------------------------------------------------------------------------------
def test_generated_puzzles_have_unique_solutions_and_realistic_givens():
    puzzles, solutions = generate(60, seed=3)
    givens = (puzzles > 0).sum(axis=1)
    assert 34 <= givens.mean() <= 38 and givens.min() >= 31  # SatNet: about 36 givens per board
    for puzzle, solution in zip(puzzles, solutions, strict=True):
        assert is_valid_solution(solution)
        assert ((puzzle == 0) | (puzzle == solution)).all()  # givens agree with the solution
        assert count_solutions(puzzle, limit=2) == [tuple(solution.tolist())]  # unique


def test_generation_is_deterministic_prefix_stable_and_seed_dependent():
    a = generate(12, seed=5)
    b = generate(12, seed=5)
    prefix = generate(7, seed=5)
    other = generate(12, seed=6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert np.array_equal(prefix[0], a[0][:7]) and np.array_equal(prefix[1], a[1][:7])
    assert not np.array_equal(a[0], other[0])
    assert len({p.tobytes() for p in a[0]}) == 12  # symmetric variants are distinct boards


def test_symmetry_keeps_validity_and_uniqueness():
    puzzle, solution = board(NORVIG), board(NORVIG_SOLUTION)
    pair = random_symmetry(np.array([puzzle, solution], dtype=np.int8), np.random.default_rng(0))
    assert is_valid_solution(pair[1]) and (pair[0] > 0).sum() == sum(1 for d in puzzle if d)
    assert solve(pair[0]) == tuple(pair[1].tolist())


def test_generation_is_fast():
    began = time.perf_counter()
    generate(400, seed=11)
    per_board = (time.perf_counter() - began) / 400
    assert per_board < 0.01  # measured about 1.3 ms per board on one loaded core: 9,500 boards in ~12 s


# --- Product outputs on a tiny, non-sudoku program ----------------------------------------------
DIGIT3 = bp.Discrete(range(3))
SUM_AND_PRODUCT = Product(bp.Discrete(range(5)), bp.Discrete([0, 1, 2, 4]))


def sum_and_product(a: int, b: int) -> tuple[int, int]:
    return a + b, a * b


def exact_marginals(p_a: torch.Tensor, p_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """p(a+b = v) and p(a*b = v) by hand, summing p_a(a) p_b(b) over the 9 pairs."""
    sums, products = torch.zeros(p_a.shape[0], 5), torch.zeros(p_a.shape[0], 4)
    for a, b in itertools.product(range(3), range(3)):
        weight = p_a[:, a] * p_b[:, b]
        sums[:, a + b] += weight
        products[:, [0, 1, 2, 4].index(a * b)] += weight
    return sums, products


def test_product_space_indexes_tuples_and_unknown_components():
    assert SUM_AND_PRODUCT.index((3, 2)) == (3, 2)
    assert SUM_AND_PRODUCT.index((4, 4)) == (4, 3)
    assert SUM_AND_PRODUCT.index((1, None)) == (1, -1)
    assert SUM_AND_PRODUCT.encode([(0, 0), (2, 1)]).tolist() == [[0, 0], [2, 1]]
    assert SUM_AND_PRODUCT.decode([4, 3]) == (4, 4) and SUM_AND_PRODUCT.decode([1, -1]) == (1, None)
    with pytest.raises(bp.OutputSpaceError, match="tuple of 2 components"):
        SUM_AND_PRODUCT.index((1, 2, 3))
    with pytest.raises(bp.OutputSpaceError, match="not in"):
        SUM_AND_PRODUCT.index((1, 3))  # 3 is no product of two digits in 0..2
    with pytest.raises(TypeError, match="Discrete spaces"):
        Product()


def test_program_with_product_output_returns_one_index_per_component():
    program = bp.Program(sum_and_product, inputs=(DIGIT3, DIGIT3), output=SUM_AND_PRODUCT)
    out = program.evaluate(torch.tensor([[[1, 2], [2, 2]], [[0, 0], [1, 2]]]))
    assert out.shape == (2, 2, 2)
    assert out.tolist() == [[[3, 2], [4, 3]], [[0, 0], [3, 2]]]
    assert program.stats.calls == 3  # (1, 2) ran once
    failing = bp.Program(lambda a, b: 1 / a if a else (a, b), inputs=(DIGIT3, DIGIT3), output=SUM_AND_PRODUCT)
    with pytest.warns(RuntimeWarning):
        assert failing.evaluate(torch.tensor([[1, 1], [0, 2]])).tolist() == [[-1, -1], [0, 2]]


def test_ised_per_component_summary_equals_exact_marginals_on_all_tuples():
    """ISED's summary over every tuple, each once, is the exact marginal of each component."""
    torch.manual_seed(0)
    p_a = torch.softmax(torch.randn(4, 3), -1)
    p_b = torch.softmax(torch.randn(4, 3), -1)
    program = bp.Program(sum_and_product, inputs=(DIGIT3, DIGIT3), output=SUM_AND_PRODUCT)
    beliefs = bp.Beliefs.from_inputs(program.inputs, (p_a, p_b))
    tuples = enumerate_tuples([3, 3], [True, True], torch.device("cpu")).unsqueeze(0).expand(4, -1, -1)
    q = bp.ISED(weights="probability").summarise(program, beliefs, tuples, program.evaluate(tuples)).exp()  # [4, 2, 5]
    sums, products = exact_marginals(p_a, p_b)
    assert q.shape == (4, 2, 5)
    torch.testing.assert_close(q[:, 0], sums)
    torch.testing.assert_close(q[:, 1, :4], products)
    assert (q[:, 1, 4] == 0).all()  # the product component has 4 values; the 5th column is padding


def test_ised_product_output_matches_exact_on_the_joint_space_and_learns():
    """bp.Exact over the joint output (all pairs), marginalised, against ISED with dedup on a covering sample."""
    torch.manual_seed(1)
    p_a = torch.softmax(torch.randn(3, 3), -1)
    p_b = torch.softmax(torch.randn(3, 3), -1)
    joint = bp.Discrete([(s, p) for s in range(5) for p in (0, 1, 2, 4)])
    exact = bp.BlackBox(bp.Program(sum_and_product, inputs=(DIGIT3, DIGIT3), output=joint), bp.Exact())(p_a, p_b)
    exact = exact.reshape(3, 5, 4)
    structured = bp.BlackBox(
        bp.Program(sum_and_product, inputs=(DIGIT3, DIGIT3), output=SUM_AND_PRODUCT),
        bp.ISED(weights="probability", num_samples=400, dedup=True), seed=0,
    )
    q = structured(p_a, p_b)  # 400 draws cover all 9 pairs (the rarest has p > 0.01)
    torch.testing.assert_close(q[:, 0], exact.sum(dim=2), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(q[:, 1, :4], exact.sum(dim=1), atol=1e-5, rtol=1e-5)

    # learning from (a+b, a*b) alone recovers the digits (up to order): logits for a fixed set of pairs
    pairs = torch.tensor([(a, b) for a in range(3) for b in range(3)])
    targets = [sum_and_product(a, b) for a, b in pairs.tolist()]
    logits_a = torch.zeros(9, 3, requires_grad=True)
    logits_b = torch.zeros(9, 3, requires_grad=True)
    optimizer = torch.optim.Adam([logits_a, logits_b], lr=0.1)
    structured = bp.BlackBox(structured.program, bp.ISED(weights="probability", num_samples=30), seed=0)
    for _ in range(100):
        loss = structured.loss(torch.softmax(logits_a, -1), torch.softmax(logits_b, -1), target=targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    learnt = torch.stack([logits_a.argmax(-1), logits_b.argmax(-1)], dim=1)
    # (a+b, a*b) fixes the unordered pair only: (0, 2) and (2, 0) give the same outputs
    assert torch.equal(learnt.sort(dim=1).values, pairs.sort(dim=1).values)
    assert structured.predict(torch.softmax(logits_a, -1), torch.softmax(logits_b, -1)) == targets


def test_output_matches_for_plain_and_product_outputs():
    plain = torch.tensor([[3, 1, -1], [2, 2, 0]])
    assert output_matches(plain, torch.tensor([3, 2])).tolist() == [[True, False, False], [True, True, False]]
    product = torch.tensor([[[3, 2], [3, 1]], [[-1, -1], [0, 0]]])
    assert output_matches(product, torch.tensor([[3, 2], [0, 0]])).tolist() == [[True, False], [False, True]]


def test_batch_cache_runs_each_distinct_tuple_once_per_call_and_keeps_nothing():
    program = bp.Program(sum_and_product, inputs=(DIGIT3, DIGIT3), output=SUM_AND_PRODUCT, cache="batch")
    rows = torch.tensor([[1, 2], [1, 2], [2, 2]])
    program.evaluate(rows)
    program.evaluate(rows)
    assert program.stats.calls == 4 and program.cache_size() == 0
    with pytest.raises(ValueError, match="cache"):
        bp.Program(sum_and_product, inputs=(DIGIT3, DIGIT3), output=SUM_AND_PRODUCT, cache="sometimes")


# --- the sudoku tasks ---------------------------------------------------------------------------
def test_sudoku_data_program_and_model_agree():
    from blackprop.data.mnist import mnist_pool
    from blackprop.tasks import get_task

    task = get_task("sudoku")
    data = task.data("test", 40)
    assert data.index.shape == (40, 81) and len(data.labels) == 40
    assert ((data.index >= 0) == (data.symbols >= 0)).all()
    pool_labels = mnist_pool("test")[1]
    given = data.index >= 0
    assert torch.equal(pool_labels[data.index[given]] - 1, data.symbols[given])  # images show the given digits
    # the true digits through the program reproduce the solved boards
    program = task.make_program()
    model = task.make_model()
    images = data.images(torch.arange(8))
    digits, positions = model(images)
    assert torch.equal(digits.lengths, given[:8].sum(1))
    beliefs = bp.Beliefs.from_inputs(program.inputs, (digits, positions))
    truth = torch.full((8, 162), -1)
    for row in range(8):
        cells = given[row].nonzero().squeeze(1)
        truth[row, : len(cells)] = data.symbols[row, cells]
        truth[row, 81 : 81 + len(cells)] = cells
    assert torch.equal(positions.probs.argmax(-1).masked_fill(~beliefs.valid[:, 81:], -1), truth[:, 81:])
    solved = program.evaluate(truth)
    assert solved.tolist() == [list(program.output.index(label)) for label in data.labels[:8]]
    assert torch.equal(model.symbols(images) >= 0, given[:8])


def test_sudoku_partial_returns_givens_when_unsolvable_and_layer_gives_gradients():
    from blackprop.tasks import get_task
    from blackprop.tasks.sudoku import solve_or_givens

    partial = solve_or_givens([5, 5], [0, 1])  # two 5s in one row: no solution
    assert partial[:2] == (5, 5) and partial[2:] == (None,) * 79
    task = get_task("sudoku-partial")
    data = task.data("test", 4)
    model = task.make_model()
    layer = bp.BlackBox(task.make_program(), bp.ISED(weights="probability", num_samples=5), seed=0)
    loss = layer.loss(*model(data.images(torch.arange(4))), target=data.label_values(torch.arange(4)))
    loss.backward()
    assert torch.isfinite(loss) and model.network.classifier[-1].weight.grad.abs().sum() > 0


def test_satnet_files_load_with_nasr_split(tmp_path):
    from blackprop.tasks.sudoku import load_satnet

    puzzles, solutions = generate(10, seed=1)
    features = torch.nn.functional.one_hot(torch.from_numpy(puzzles.astype(np.int64)), 10)[..., 1:].reshape(10, 9, 9, 9)
    labels = torch.nn.functional.one_hot(torch.from_numpy(solutions.astype(np.int64)) - 1, 9).reshape(10, 9, 9, 9)
    images = torch.rand(10, 9, 9, 28, 28) * (torch.from_numpy(puzzles) > 0).reshape(10, 9, 9, 1, 1)
    for name, tensor in (("features.pt", features), ("features_img.pt", images), ("labels.pt", labels)):
        torch.save(tensor, tmp_path / name)
    data = load_satnet(tmp_path, "train", 6)
    assert len(data) == 6 and data.labels[0] == tuple(solutions[0].tolist())
    assert torch.equal(data.symbols >= 0, torch.from_numpy(puzzles[:6] > 0))
    assert torch.equal(data.symbols[data.symbols >= 0] + 1, torch.from_numpy(puzzles[:6][puzzles[:6] > 0]).long())
    assert data.pool.shape == (int((puzzles[:6] > 0).sum()), 1, 28, 28)
    with pytest.raises(FileNotFoundError, match="lacks labels.pt"):
        (tmp_path / "labels.pt").unlink()
        load_satnet(tmp_path)


def test_sudoku_trains_and_checkpoints_through_the_trainer(tmp_path):
    from blackprop.run import RunConfig, train

    config = RunConfig(task="sudoku-partial", epochs=1, train_size=32, test_size=16, num_samples=5,
                       threads=1, checkpoint=str(tmp_path / "run.pt"), progress=False)
    result = train(config)
    assert 0.0 <= result["test_accuracy"] <= 1.0 and result["symbol_accuracy"] is not None
    assert result["program_calls"] > 0 and (tmp_path / "run.pt").exists()
    again = train(config)  # resumes from the finished checkpoint: same metrics, no more training
    assert again["test_accuracy"] == result["test_accuracy"]


def test_solve_cells_agrees_with_solution_counting_on_misread_boards():
    """The fast path of ``solve_cells`` (unit masks, no board built) against ``count_solutions``."""
    puzzles, _ = generate(6, seed=5)
    rng = np.random.default_rng(0)
    outcomes = set()
    for puzzle in puzzles:
        for trial in range(20):
            board = puzzle.astype(int).copy()
            given = np.flatnonzero(board)
            for cell in rng.choice(given, size=int(rng.integers(0, 3)), replace=False):
                board[cell] = int(rng.integers(1, 10))  # a misread digit
            if trial % 4 == 0:
                board[rng.choice(given, size=int(rng.integers(1, 12)), replace=False)] = 0  # givens dropped
            positions = [int(c) for c in np.flatnonzero(board)]
            digits = [int(board[c]) for c in positions]
            order = rng.permutation(len(positions))  # any order of the givens
            digits, positions = [digits[i] for i in order], [positions[i] for i in order]
            solutions = count_solutions(board.tolist(), limit=2)
            if len(solutions) == 1:
                assert solve_cells(digits, positions) == solutions[0] == solve(board.tolist())
                outcomes.add("one")
            else:
                error = Unsolvable if not solutions else Ambiguous
                with pytest.raises(error, match=f"with {len(digits)} givens"):
                    solve_cells(digits, positions)
                outcomes.add(error.__name__)
    assert outcomes == {"one", "Unsolvable", "Ambiguous"}


def test_solve_cells_takes_any_numbers_equal_to_digits_and_cells():
    digits = [d for d in board(NORVIG) if d]
    positions = [i for i, d in enumerate(board(NORVIG)) if d]
    expected = tuple(board(NORVIG_SOLUTION))
    assert solve_cells(np.array(digits), np.array(positions)) == expected
    assert solve_cells([float(d) for d in digits], positions) == expected  # as int() reads them
    assert solve_cells(digits + [0], positions + [0]) == expected  # a digit 0 is a blank
    with pytest.raises(ValueError, match="given twice"):
        solve_cells([1, 1, 2], [0, 9, 0])  # the repeated cell is reported before the conflict


def test_product_results_where_no_call_or_some_calls_succeed():
    def pair(a, b):
        if a == b:
            raise ValueError("equal digits")
        return (a, None) if a > b else (b, a)

    three = bp.Discrete(range(3))
    program = bp.Program(pair, (three, three), Product(three, three), cache="batch")
    with pytest.warns(RuntimeWarning):
        assert program.evaluate(torch.tensor([[0, 0], [2, 2]])).tolist() == [[-1, -1], [-1, -1]]
    assert program.evaluate(torch.tensor([[1, 1], [2, 0], [0, 1]])).tolist() == [[-1, -1], [2, -1], [1, 0]]
