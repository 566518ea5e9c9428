"""HWF: hand-written formulas. A network reads 1, 3, 5 or 7 symbol images; only the value is labelled.

Program: ``formula_value(symbols)`` (``blackprop.tasks.hwf.formula``) evaluates the predicted sequence over 14
symbols (0-9 + - * /) with the usual precedence; a malformed sequence (an operator where a digit
belongs, or the reverse) or a division by zero raises, which makes the sample a failure. The
output space is ``Open(canonical=tolerance_key)``: outputs that round to the same multiple of
0.01 are one output (the reference compared ``|a - b| < 0.01``; see ``blackprop.tasks.hwf.formula``).

Data (default): formulas of length 1, 3, 5, 7 (uniform), digits uniform over 0-9, operators uniform
over + - * /; a formula that divides by zero is drawn again (so every label is a number). Digit
images come from MNIST and operator images from ``mdas_symbols_v1.zip`` (``blackprop.data.symbols``;
both glyphs of * and of / are used), train images for training formulas and test images for test
formulas; images are 28x28, normalised with MNIST's mean and std. The draw depends only on the
task's seed. 10,000 training and 2,000 test formulas, as in the reference data set.

Original data: with ``BLACKPROP_HWF`` (or ``hwf_task(root=...)``) pointing at the HWF data set
(``expr_train.json``, ``expr_test.json`` and ``Handwritten_Math_Symbols/`` in that folder, or in its
``HWF/`` or ``HWF/data/`` sub-folder), its formulas are used instead: the first ``size`` entries,
images converted to white-on-black 28x28 (needs Pillow).

Padding: examples are ``[n=7]`` images, zeros past the formula's length (``TaskData.images``); the
model treats an all-zero image as padding (a real normalised image has background -mean/std) and
passes ``padded(probs, lengths)`` to the program, so padded positions never reach it.

Cost: ISED draws k=100 tuples per formula; the program runs once per distinct (memoised) tuple, at
most 10,000 * 100 = 1e6 calls an epoch. Measured in epoch 1 (seed 0, lr 1e-3): 357,688 calls, 93% of
them failures (malformed readings), 1,910 distinct output values. IndeCateR evaluates, per formula,
each of its L valid positions set to each of the 14 symbols in N samples: at most 10,000 * 4 (mean L)
* 14 * N = 560,000 * N calls an epoch; once the network is confident its samples agree and a formula
needs about 13 L + 1 distinct tuples (530,000 for the training set), which the memo answers in every
later epoch. Exact cannot enumerate ``hwf`` (14**7 readings of a 7-symbol formula; it raises
``TooLargeToEnumerate``); use ``hwf-typed`` (``hwf_task(typed=True)``): digits and operators as
separate inputs, 640,000 readings of a 7-symbol formula, enumerated once (62 s of program calls) and
then 11 s per loss+backward on 4 seven-symbol formulas (one core at load average 12): runnable, but
too slow for full training on CPU.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...data.mnist import MEAN, STD, mnist_pool, mnist_source
from ...data.symbols import ARCHIVE_NAME, load_operator_symbols
from ...models import FormulaModel
from ...program import Program
from ...spaces import Discrete, Open, Sequence
from .._base import Defaults, Task, TaskData, task_seed
from .formula import DIGITS, OPERATORS, FormulaError, formula_value, tolerance_key

__all__ = [
    "FORMULA_LENGTHS",
    "HWF_DEFAULTS",
    "MAX_LEN",
    "SYMBOLS",
    "generate_formulas",
    "hwf_task",
    "load_hwf_original",
    "typed_formula_value",
]

SYMBOLS = Discrete(DIGITS + OPERATORS)
MAX_LEN = 7
FORMULA_LENGTHS = (1, 3, 5, 7)
DIVIDE = SYMBOLS.index("/")
ZERO = SYMBOLS.index("0")
IMAGE_SIZE = 28
#: folder names of the original data set's symbol images
ORIGINAL_FOLDERS = {**{d: d for d in DIGITS}, "+": "+", "-": "-", "times": "*", "div": "/", "*": "*", "/": "/"}

HWF_DEFAULTS = Defaults(epochs=20, lr=1e-3, lr_schedule="cosine", batch_size=16, num_samples=100, train_size=10_000,
                        test_size=2_000, valid_size=1_000)
"""Training settings of ``hwf``: the paper's batch 16, k=100 and data sizes; 20 epochs at Adam lr 1e-3 with
a cosine schedule (the paper: 50 epochs at 1e-4), about 17 minutes a run on one CPU core. The epochs
were chosen on validation for the default ISED (3 seeds: 96.67% after 5 epochs, 97.30% after 10,
97.63% after 20; grids ``validated``, ``validated-10``, ``validated-20``); a low first epoch lowered
it (probe ``lsc-10``). Every measured run: ``experiments/hwf/notes.md``."""


def generate_formulas(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``size`` well-formed formulas as symbol indices ``[size, 7]`` (-1 past the length) and lengths.

    Lengths are uniform over 1, 3, 5, 7; digits and operators uniform. Formulas that divide by
    zero (the divisor is always a single digit) are drawn again until none is left.
    """
    symbols = np.full((size, MAX_LEN), -1, dtype=np.int64)
    lengths = rng.choice(np.array(FORMULA_LENGTHS), size=size)
    redo = np.arange(size)
    while redo.size:
        draw = np.empty((redo.size, MAX_LEN), dtype=np.int64)
        draw[:, 0::2] = rng.integers(0, len(DIGITS), size=(redo.size, (MAX_LEN + 1) // 2))
        draw[:, 1::2] = len(DIGITS) + rng.integers(0, len(OPERATORS), size=(redo.size, MAX_LEN // 2))
        draw[np.arange(MAX_LEN)[None, :] >= lengths[redo][:, None]] = -1
        symbols[redo] = draw
        divides_by_zero = ((draw[:, 1:-1:2] == DIVIDE) & (draw[:, 2::2] == ZERO)).any(axis=1)
        redo = redo[divides_by_zero]
    return symbols, lengths


def _symbol_strings(row: np.ndarray) -> list[str]:
    return [SYMBOLS.values[i] for i in row.tolist() if i >= 0]


#: the operator archive's split each task split draws from (the archive has its own validation images)
OPERATOR_SPLIT = {"train": "train", "valid": "val", "test": "test"}


@functools.lru_cache(maxsize=3)
def operator_pool(split: str) -> tuple[torch.Tensor, np.ndarray]:
    """Normalised operator images ``[N, 1, 28, 28]`` of a task split and their symbol indices."""
    images, operators, _ = load_operator_symbols(OPERATOR_SPLIT[split])
    pool = ((images.float() / 255.0 - MEAN) / STD).unsqueeze(1)
    return pool, np.array([SYMBOLS.index(o) for o in operators], dtype=np.int64)


def _symbol_labels(split: str) -> np.ndarray:
    """The symbol of every image of [MNIST images; operator images] of a split."""
    return np.concatenate([mnist_pool(split)[1].numpy(), operator_pool(split)[1]])


def _draw_images(symbols: np.ndarray, labels_by_symbol: np.ndarray, rng: np.random.Generator,
                 allowed: np.ndarray | None = None) -> np.ndarray:
    """For each symbol, an image of that symbol among ``allowed`` (index into [digits; operators]), -1 on padding."""
    source = np.full(symbols.shape, -1, dtype=np.int64)
    for symbol in range(SYMBOLS.size):
        where = symbols == symbol
        match = labels_by_symbol == symbol
        candidates = np.flatnonzero(match if allowed is None else match & allowed)
        source[where] = rng.choice(candidates, size=int(where.sum()))
    return source


def generated_data(split: str, size: int, seed: int, train_size: int = 0, train_seed: int = 0) -> TaskData:
    """``size`` formulas drawn with ``seed``, rendered from MNIST digits and operator images.

    "valid" formulas use MNIST training digits that the ``train_size`` training formulas (drawn with
    ``train_seed``) do not use, and the operator archive's own validation images.
    """
    labels_by_symbol = _symbol_labels(split)
    allowed = None
    if split == "valid":
        train_rng = np.random.default_rng(train_seed)
        train_symbols, _ = generate_formulas(train_size, train_rng)
        train_source = _draw_images(train_symbols, _symbol_labels("train"), train_rng)
        allowed = np.ones(labels_by_symbol.size, dtype=bool)
        allowed[train_source[(train_source >= 0) & (train_source < mnist_pool("train")[0].shape[0])]] = False
    rng = np.random.default_rng(seed)
    symbols, _ = generate_formulas(size, rng)
    digit_images, _ = mnist_pool(split)
    operator_images, _ = operator_pool(split)
    source = _draw_images(symbols, labels_by_symbol, rng, allowed)
    used, inverse = np.unique(source[source >= 0], return_inverse=True)
    index = np.full(symbols.shape, -1, dtype=np.int64)
    index[source >= 0] = inverse
    num_digits = digit_images.shape[0]
    is_digit = used < num_digits
    pool = torch.empty((used.size, *digit_images.shape[1:]), dtype=digit_images.dtype)
    pool[torch.from_numpy(is_digit)] = digit_images[torch.from_numpy(used[is_digit])]
    pool[torch.from_numpy(~is_digit)] = operator_images[torch.from_numpy(used[~is_digit] - num_digits)]
    labels = [formula_value(_symbol_strings(row)) for row in symbols]
    return TaskData(pool=pool, index=torch.from_numpy(index), labels=labels, symbols=torch.from_numpy(symbols),
                    source=f"generated formulas; digits: {mnist_source()}; operators: {ARCHIVE_NAME}")


def find_original_json(root: Path, split: str) -> Path:
    """``expr_<split>.json`` in ``root``, ``root/HWF`` or ``root/HWF/data``; raises naming them."""
    places = [root, root / "HWF", root / "HWF" / "data", root / "data"]
    for folder in places:
        if (folder / f"expr_{split}.json").is_file():
            return folder / f"expr_{split}.json"
    raise FileNotFoundError(
        f"HWF data: expr_{split}.json not found in {', '.join(str(p) for p in places)}; point BLACKPROP_HWF "
        "(or root=) at the folder holding expr_train.json, expr_test.json and Handwritten_Math_Symbols/"
    )


def load_hwf_original(
    root: str | os.PathLike[str], split: str, size: int | None = None, train_size: int = 0
) -> TaskData:
    """The original HWF data set's first ``size`` formulas of ``split`` (all when None); "valid" is the
    last ``size`` formulas of ``expr_train.json``, which must not reach into its first ``train_size``.

    Each JSON entry needs ``img_paths`` (relative to ``Handwritten_Math_Symbols/``, whose first
    folder names the symbol: 0-9, +, -, times, div) and ``res`` (the value). Images are read with
    Pillow, turned to grayscale, resized to 28x28, inverted when their background is light (the
    originals are black ink on white) and normalised like MNIST.
    """
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("HWF data: reading the original images needs Pillow; pip install pillow") from None
    source = find_original_json(Path(root), "train" if split == "valid" else split)
    entries = json.loads(source.read_text())
    if split == "valid":
        size = len(entries) - train_size if size is None else size
        if train_size + size > len(entries):
            raise ValueError(
                f"HWF data: a valid split of size={size} after {train_size} training formulas needs "
                f"{train_size + size} formulas but {source} has {len(entries)}; lower the valid or train size"
            )
        entries = entries[len(entries) - size:]
    elif size is not None:
        if size > len(entries):
            raise ValueError(f"HWF data: size={size} but {source} has only {len(entries)} formulas; lower size")
        entries = entries[:size]
    image_folder = source.parent / "Handwritten_Math_Symbols"
    paths: dict[str, int] = {}
    symbols = np.full((len(entries), MAX_LEN), -1, dtype=np.int64)
    index = np.full((len(entries), MAX_LEN), -1, dtype=np.int64)
    labels: list[Any] = []
    for row, entry in enumerate(entries):
        image_paths = entry["img_paths"]
        if not 1 <= len(image_paths) <= MAX_LEN:
            raise ValueError(f"HWF data: entry {row} of {source} has {len(image_paths)} images; expected 1..{MAX_LEN}")
        for position, image_path in enumerate(image_paths):
            folder = Path(image_path).parts[0]
            if folder not in ORIGINAL_FOLDERS:
                raise ValueError(
                    f"HWF data: entry {row} of {source}: image {image_path!r} is in folder {folder!r}; expected one "
                    f"of {', '.join(ORIGINAL_FOLDERS)}"
                )
            symbols[row, position] = SYMBOLS.index(ORIGINAL_FOLDERS[folder])
            index[row, position] = paths.setdefault(image_path, len(paths))
        labels.append(float(entry["res"]))
    pool = torch.empty((len(paths), 1, IMAGE_SIZE, IMAGE_SIZE))
    for image_path, position in paths.items():
        with Image.open(image_folder / image_path) as image:
            gray = image.convert("L").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
        pixels = np.asarray(gray, dtype=np.float32) / 255.0
        if pixels.mean() > 0.5:
            pixels = 1.0 - pixels
        pool[position, 0] = torch.from_numpy((pixels - MEAN) / STD)
    return TaskData(pool=pool, index=torch.from_numpy(index), labels=labels, symbols=torch.from_numpy(symbols),
                    source=f"HWF (user folder {source.parent})")


def make_hwf_program() -> Program:
    return Program(formula_value, inputs=(Sequence(SYMBOLS, MAX_LEN),), output=Open(canonical=tolerance_key), name="hwf")


# --- hwf-typed: the grammar's positions as input types (DeepProbLog's formulation) -------------------

DIGIT_SYMBOLS = Discrete(DIGITS)
OPERATOR_SYMBOLS = Discrete(OPERATORS)


def typed_formula_value(digits: list[str], operators: list[str]) -> float:
    """``digits[0] operators[0] digits[1] ...``; raises ``FormulaError`` unless len(operators) == len(digits) - 1."""
    if len(operators) != len(digits) - 1:
        raise FormulaError(f"a formula needs one operator fewer than digits; got {digits} and {operators}")
    symbols = [symbol for pair in zip(digits, operators, strict=False) for symbol in pair] + digits[-1:]
    return formula_value(symbols)


def make_typed_program() -> Program:
    return Program(
        typed_formula_value,
        inputs=(Sequence(DIGIT_SYMBOLS, (MAX_LEN + 1) // 2), Sequence(OPERATOR_SYMBOLS, MAX_LEN // 2)),
        output=Open(canonical=tolerance_key),
        name="hwf-typed",
    )


def hwf_task(
    root: str | os.PathLike[str] | None = None, defaults: Defaults = HWF_DEFAULTS, typed: bool = False
) -> Task:
    """The HWF task; ``root`` (else ``BLACKPROP_HWF`` at load time) selects the original data set.

    ``typed=True`` gives ``hwf-typed``: the same data and network, but the program takes digits and
    operators as separate inputs (the grammar's alternation is known, as in DeepProbLog's HWF), so
    malformed readings cannot be sampled and Exact can enumerate every formula.
    """

    def load_data(split: str, size: int, seed: int, train_size: int = 0, train_seed: int = 0) -> TaskData:
        folder = root or os.environ.get("BLACKPROP_HWF")
        if folder:
            return load_hwf_original(folder, split, size, train_size)
        if typed:  # the same formulas as hwf, so the two tasks compare like for like
            seed, train_seed = task_seed("hwf", split), task_seed("hwf", "train")
        return generated_data(split, size, seed, train_size, train_seed)

    return Task(
        name="hwf-typed" if typed else "hwf",
        description=("value of a hand-written formula, digits and operators as separate inputs" if typed
                     else "value of a hand-written formula of 1-7 symbols (0-9 + - * /)"),
        make_program=make_typed_program if typed else make_hwf_program,
        make_model=functools.partial(FormulaModel, typed=typed),
        load_data=load_data,
        defaults=defaults,
        paper={} if typed else {"scallop": 96.65, "anesi": 3.13, "reinforce": 18.59, "indecater": 15.14,
                                "nasr": 1.85, "ised": 97.34},
        family="hwf",
    )
