"""Visual sudoku (``task``: data and the two tasks; ``solver``: the solver and the puzzle generator).

The network is in ``blackprop.models`` (``SudokuModel`` over ``LeNet``).
"""

from __future__ import annotations

from .solver import Ambiguous, SudokuError, Unsolvable, generate, generate_cached, solve, solve_cells
from .task import load_satnet, solve_or_givens, sudoku_data, sudoku_tasks

__all__ = ["Ambiguous", "SudokuError", "Unsolvable", "generate", "generate_cached", "load_satnet", "solve",
           "solve_cells", "solve_or_givens", "sudoku_data", "sudoku_tasks"]
