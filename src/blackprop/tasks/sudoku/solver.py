"""Sudoku: an exact solver (bitmask candidates, propagation, most-constrained-cell search) and a
seeded generator of puzzles with unique solutions.

A board is 81 digits in row-major order, 0 for a blank cell. ``solve(board)`` returns the unique
solution as a tuple of 81 digits and raises ``Unsolvable`` (no solution, e.g. two equal givens in
a row) or ``Ambiguous`` (two or more solutions); both are ``SudokuError``.

Solver: each cell holds a 9-bit candidate mask. Placing a digit removes it from the cell's 20
peers; a cell left with one candidate is placed (naked single), and a digit with one place left
in a row, column or box is placed there (hidden single). When propagation stalls, the search
branches on the open cell with the fewest candidates and counts solutions up to two. ``solve`` and
``solve_cells`` (the sudoku program, called once per distinct sampled board) start from one 243-bit
mask of the givens' (unit, digit) pairs: a digit given twice in a unit, the usual fate of a misread
board, is found in a few bit operations, before any candidate is computed.

Generator: a random full grid (the solver filling an empty board with digits tried in a random
order), then a random subset of ``givens`` cells is kept; while the puzzle has a second solution,
one cell where that solution differs from the grid is given back. So every puzzle has a unique
solution and at least ``givens`` givens.

Example:
    >>> puzzles, solutions = generate(2, seed=0)
    >>> puzzles.shape, solutions.shape
    ((2, 81), (2, 81))
    >>> solve(puzzles[0]) == tuple(solutions[0].tolist())
    True
"""

from __future__ import annotations

import hashlib
import operator
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Ambiguous",
    "SudokuError",
    "Unsolvable",
    "count_solutions",
    "generate",
    "generate_cached",
    "is_valid_solution",
    "solve",
    "solve_cells",
]

ALL = 0x1FF  # candidates 1..9 as bits 0..8
ROWS = [[r * 9 + c for c in range(9)] for r in range(9)]
COLUMNS = [[r * 9 + c for r in range(9)] for c in range(9)]
BOXES = [[(3 * (b // 3) + i // 3) * 9 + 3 * (b % 3) + i % 3 for i in range(9)] for b in range(9)]
UNITS = ROWS + COLUMNS + BOXES
UNIT_GETTERS = [operator.itemgetter(*unit) for unit in UNITS]  # a unit's 9 candidate masks in one call
PEERS = [sorted({p for unit in UNITS if cell in unit for p in unit} - {cell}) for cell in range(81)]
BIT = {1 << (d - 1): d for d in range(1, 10)}  # single-bit mask -> digit
POPCOUNT = [bin(m).count("1") for m in range(ALL + 1)]
DIGITS_OF = [[d for d in range(1, 10) if m >> (d - 1) & 1] for m in range(ALL + 1)]


class SudokuError(ValueError):
    """The givens do not determine exactly one solution."""


class Unsolvable(SudokuError):
    pass


class Ambiguous(SudokuError):
    pass


def _check_board(board: Sequence[int]) -> list[int]:
    cells = [int(v) for v in board]
    if len(cells) != 81:
        raise ValueError(f"sudoku board: expected 81 cells (row-major, 0 for blank), got {len(cells)}")
    bad = [v for v in cells if not 0 <= v <= 9]
    if bad:
        raise ValueError(f"sudoku board: cells must be digits 0..9 (0 blank), got {bad[0]!r}")
    return cells


def _place(cand: list[int], cell: int, bit: int) -> bool:
    """Set ``cell`` to the digit ``bit`` and propagate naked singles; False on a contradiction."""
    stack = [(cell, bit)]
    pop, push = stack.pop, stack.append
    while stack:
        cell, bit = pop()
        if not cand[cell] & bit:
            return False
        cand[cell] = bit
        for peer in PEERS[cell]:
            mask = cand[peer]
            if mask & bit:
                mask ^= bit  # the bit is set: clear it
                if not mask:
                    return False
                cand[peer] = mask
                if not mask & (mask - 1):  # one candidate left
                    push((peer, mask))
    return True


def _hidden_singles(cand: list[int]) -> bool | None:
    """Place every digit that fits one cell of a unit. None on a contradiction, else whether anything changed."""
    changed = False
    for unit, masks_of in zip(UNITS, UNIT_GETTERS, strict=True):
        once = twice = placed = 0
        for mask in masks_of(cand):
            twice |= once & mask
            once |= mask
            if not mask & (mask - 1):
                placed |= mask
        if once != ALL:
            return None  # some digit has no place left in this unit
        lonely = once & ~twice & ~placed
        if not lonely:
            continue
        for cell in unit:
            hit = cand[cell] & lonely
            if hit:
                if hit not in BIT:
                    return None  # two digits that both must go in this one cell
                if not _place(cand, cell, hit):
                    return None
                changed = True
    return changed


def _propagate(cand: list[int]) -> bool:
    while True:
        changed = _hidden_singles(cand)
        if changed is None:
            return False
        if not changed:
            return True


def _search(cand: list[int], limit: int, found: list[list[int]], order: Any = None) -> None:
    if not _propagate(cand):
        return
    best, best_count = -1, 10
    for cell in range(81):
        count = POPCOUNT[cand[cell]]
        if 1 < count < best_count:
            best, best_count = cell, count
            if count == 2:
                break
    if best < 0:
        found.append([BIT[m] for m in cand])
        return
    digits = DIGITS_OF[cand[best]]
    if order is not None:
        digits = order.sample(digits, len(digits))
    for digit in digits:
        trial = cand.copy()
        if _place(trial, best, 1 << (digit - 1)):
            _search(trial, limit, found, order)
            if len(found) >= limit:
                return


def _initial(cells: list[int]) -> list[int] | None:
    cand = [ALL] * 81
    for cell, digit in enumerate(cells):
        if digit and not _place(cand, cell, 1 << (digit - 1)):
            return None
    return cand


BIT_OF = {d: 1 << (d - 1) for d in range(1, 10)}  # digit (any number equal to 1..9) -> its bit
DIGIT_SET = frozenset(range(1, 10))
CELL_SET = frozenset(range(81))
UNITS_OF = [(cell // 9, 9 + cell % 9, 18 + 3 * (cell // 27) + cell % 9 // 3) for cell in range(81)]  # row, column, box
#: GIVEN[cell][digit]: bit 9 u + digit - 1 set for each of the cell's three units u (243 bits)
GIVEN = [{d: sum(1 << (9 * u + d - 1) for u in UNITS_OF[cell]) for d in range(1, 10)} for cell in range(81)]


def _initial_from_units(digits: Sequence[Any], positions: Sequence[int]) -> list[int] | None:
    """The candidates ``_initial`` gives for ``digits`` (1..9) in the distinct cells ``positions``, reached faster.

    Each given sets one bit per unit (bit 9 u + d - 1 for digit d in unit u); a bit set twice is a
    digit given twice in one unit, a contradiction found without any propagation. Otherwise a blank
    cell gets ``ALL`` minus the digits of its row, column and box, then every blank cell left with one
    candidate is placed (naked singles, propagated by ``_place``). Only the order of the eliminations
    differs from ``_initial``, not their fixpoint: the same state, or None for both.
    """
    given = 0
    for digit, cell in zip(digits, positions, strict=True):
        mask = GIVEN[cell][digit]
        if given & mask:
            return None  # the same digit given twice in one unit
        given |= mask
    units = [given >> shift & ALL for shift in range(0, 243, 9)]
    cand = [ALL & ~(units[row] | units[column] | units[box]) for row, column, box in UNITS_OF]
    for digit, cell in zip(digits, positions, strict=True):
        cand[cell] = BIT_OF[digit]
    for cell in CELL_SET.difference(positions):
        mask = cand[cell]
        if not mask:
            return None
        if mask in BIT and not _place(cand, cell, mask):
            return None
    return cand


def _unique_solution(digits: Sequence[Any], positions: Sequence[int]) -> tuple[int, ...]:
    """``solve`` on the board with ``digits`` (1..9) in the distinct cells ``positions`` (others blank)."""
    cand = _initial_from_units(digits, positions)
    found: list[list[int]] = []
    if cand is not None:
        _search(cand, 2, found)
    if len(found) == 1:
        return tuple(found[0])
    if not found:
        raise Unsolvable(f"sudoku board with {len(digits)} givens has no solution")
    raise Ambiguous(f"sudoku board with {len(digits)} givens has more than one solution")


def count_solutions(board: Sequence[int], limit: int = 2) -> list[tuple[int, ...]]:
    """Up to ``limit`` solutions of ``board`` (81 digits, 0 blank), each a tuple of 81 digits."""
    cand = _initial(_check_board(board))
    found: list[list[int]] = []
    if cand is not None:
        _search(cand, limit, found)
    return [tuple(s) for s in found]


def solve(board: Sequence[int]) -> tuple[int, ...]:
    """The unique solution of ``board``; raises ``Unsolvable`` or ``Ambiguous``.

    >>> solve([0] * 81)
    Traceback (most recent call last):
    ...
    blackprop.tasks.sudoku.solver.Ambiguous: sudoku board with 0 givens has more than one solution
    """
    cells = _check_board(board)
    positions = [cell for cell, digit in enumerate(cells) if digit]
    return _unique_solution([cells[cell] for cell in positions], positions)


def solve_cells(digits: Sequence[int], positions: Sequence[int]) -> tuple[int, ...]:
    """The solution of the board whose cell ``positions[i]`` holds ``digits[i]`` (others blank).

    The program of the sudoku task: it receives the recognised given digits and their cells.
    """
    if len(digits) != len(positions):
        raise ValueError(f"solve_cells: {len(digits)} digits but {len(positions)} positions; give one cell per digit")
    if DIGIT_SET.issuperset(digits) and CELL_SET.issuperset(positions) and len(set(positions)) == len(positions):
        return _unique_solution(digits, positions)  # the common case, without building and checking a board
    board = [0] * 81
    for digit, position in zip(digits, positions, strict=True):
        if board[position]:
            raise ValueError(f"solve_cells: cell {position} is given twice")
        board[position] = digit
    return solve(board)


def is_valid_solution(grid: Sequence[int]) -> bool:
    """Whether 81 digits form a complete grid with 1..9 once in every row, column and box."""
    cells = [int(v) for v in grid]
    return len(cells) == 81 and all(sorted(cells[i] for i in unit) == list(range(1, 10)) for unit in UNITS)


# --- generation ----------------------------------------------------------------------------------
def random_grid(rng: np.random.Generator) -> list[int]:
    """A random complete grid: the three diagonal boxes (independent of each other) get random
    permutations of 1..9, then the search completes the board trying digits in a random order."""
    cand = [ALL] * 81
    for box in (BOXES[0], BOXES[4], BOXES[8]):
        for cell, digit in zip(box, rng.permutation(9) + 1, strict=True):
            _place(cand, cell, 1 << (int(digit) - 1))
    found: list[list[int]] = []
    _search(cand, 1, found, order=random.Random(int(rng.integers(2**32))))
    return found[0]


def make_puzzle(grid: list[int], givens: int, rng: np.random.Generator) -> list[int]:
    """Keep ``givens`` random cells of ``grid``; give back cells until the solution is unique."""
    keep = np.zeros(81, dtype=bool)
    keep[rng.choice(81, size=givens, replace=False)] = True
    while True:
        puzzle = [g if k else 0 for g, k in zip(grid, keep, strict=True)]
        solutions = count_solutions(puzzle, limit=2)
        other = next((s for s in solutions if list(s) != grid), None)
        if other is None:
            return puzzle
        differing = [i for i in range(81) if other[i] != grid[i] and not keep[i]]
        keep[differing[int(rng.integers(len(differing)))]] = True


def random_symmetry(boards: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same random validity-preserving map applied to each of ``boards`` ``[n, 81]`` (e.g. a
    puzzle and its solution): a digit relabelling, row permutations within bands, a band
    permutation, the same for columns and stacks, and a transpose with probability 1/2. Blanks
    stay blank and a unique solution stays unique (and maps to the map of the solution)."""
    rows = np.concatenate([3 * band + rng.permutation(3) for band in rng.permutation(3)])
    columns = np.concatenate([3 * stack + rng.permutation(3) for stack in rng.permutation(3)])
    grids = boards.reshape(-1, 9, 9)[:, rows][:, :, columns]
    if rng.random() < 0.5:
        grids = grids.transpose(0, 2, 1)
    relabel = np.concatenate([[0], rng.permutation(9) + 1]).astype(boards.dtype)
    return relabel[grids].reshape(boards.shape)


def generate(
    count: int, seed: int, givens: tuple[int, int] = (31, 36), variants: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` puzzles with unique solutions: ``(puzzles, solutions)``, int8 arrays ``[count, 81]``.

    Every ``variants`` consecutive boards share one generated base puzzle, the first as
    generated, the others each under its own ``random_symmetry`` (new digits, rows, columns);
    this keeps generation fast (``variants=1``: every board generated from scratch). The number of
    kept cells is drawn uniformly from ``givens`` (inclusive); giving cells back for uniqueness
    adds about two (mean about 36 givens, as in SatNet's boards). Board i depends only on
    ``seed`` and i, so a prefix of a longer run is the shorter run.
    """
    low, high = givens
    if not 17 <= low <= high <= 81:
        raise ValueError(f"generate(givens=...): need 17 <= low <= high <= 81, got {givens!r}")
    if isinstance(variants, bool) or not isinstance(variants, int) or variants < 1:
        raise ValueError(f"generate(variants=...): must be an int >= 1, got {variants!r}")
    pairs = np.zeros((count, 2, 81), dtype=np.int8)
    for base in range(0, count, variants):
        rng = np.random.default_rng([seed, base])
        grid = random_grid(rng)
        puzzle = make_puzzle(grid, int(rng.integers(low, high + 1)), rng)
        pairs[base] = (puzzle, grid)
        for i in range(base + 1, min(base + variants, count)):
            pairs[i] = random_symmetry(pairs[base], np.random.default_rng([seed, i]))
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def generate_cached(count: int, seed: int, givens: tuple[int, int] = (31, 36), variants: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """``generate`` with its result saved under ``blackprop.data.mnist.cache_dir()/sudoku``."""
    from ...data._cache import cache_dir

    key = hashlib.sha1(f"v1/{count}/{seed}/{givens}/{variants}".encode()).hexdigest()[:16]
    path = cache_dir() / "sudoku" / f"boards-{key}.npz"
    if path.exists():
        with np.load(path) as stored:
            return stored["puzzles"], stored["solutions"]
    began = time.perf_counter()
    puzzles, solutions = generate(count, seed, givens, variants)
    _save_npz(path, puzzles=puzzles, solutions=solutions, seconds=np.array(time.perf_counter() - began))
    return puzzles, solutions


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(temporary, **arrays)  # type: ignore[arg-type]
    os.replace(temporary, path)
