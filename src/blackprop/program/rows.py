"""Rows of class indices -> program arguments, for a whole block of rows at once.

``RowDecoder(inputs)(rows)`` equals ``[program.decode(row) for row in rows.tolist()]`` (one value per
Discrete input, a list per Sequence input without its -1 padding), but works column by column:
a column whose values are ints is mapped with one tensor gather (no work at all when the values are
``range(n)``, the indices themselves), any other column with one gather from a numpy object array of
its values, and a Sequence is cut to its length with one slice per row. Rows whose padding is not at the end of
a Sequence (never the case for sampled tuples) are decoded one by one, as ``decode`` does.

Example:
    >>> import torch
    >>> from blackprop.spaces import Discrete, Sequence
    >>> decode = RowDecoder((Discrete(["a", "b"]), Sequence(Discrete(range(1, 4)), 3)))
    >>> decode(torch.tensor([[1, 0, 2, -1], [0, 2, -1, -1]]))
    [['b', [1, 3]], ['a', [3]]]
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceABC
from typing import Any, final

import numpy as np
import torch

from ..spaces import Discrete, Sequence

__all__ = ["RowDecoder", "as_lists"]


def as_lists(rows: torch.Tensor) -> list[Any]:
    """``rows.tolist()``, through numpy on the CPU (faster for integer tensors)."""
    return rows.cpu().numpy().tolist()


def _object_table(space: Discrete) -> np.ndarray:
    """The space's values in a numpy object array, plus None at the end (what padding, -1, reads)."""
    table = np.empty(space.size + 1, dtype=object)
    for position, value in enumerate(space.values):  # one by one: tuple values stay whole
        table[position] = value
    return table


def _int_table(space: Discrete) -> Any:
    """True when the values are ``range(size)``; a LongTensor of them when all are ints; else None."""
    values = space.values
    if not all(type(v) is int for v in values):
        return None
    return True if list(values) == list(range(len(values))) else torch.tensor(values, dtype=torch.long)


@final
class RowDecoder:
    """Decode blocks of rows for programs with these input spaces; see the module docstring."""

    def __init__(self, inputs: SequenceABC[Discrete | Sequence]):
        self.inputs = tuple(inputs)
        self.columns: list[Discrete] = []  # the space of each column's values
        self.layout: list[tuple[int, int, bool]] = []  # (start, stop, is a Sequence) per input
        for space in self.inputs:
            width = space.max_len if isinstance(space, Sequence) else 1
            element = space.element if isinstance(space, Sequence) else space
            self.layout.append((len(self.columns), len(self.columns) + width, isinstance(space, Sequence)))
            self.columns += [element] * width
        self.tables = [_int_table(space) for space in self.columns]
        self.objects = None if all(t is not None for t in self.tables) else [_object_table(s) for s in self.columns]
        self.has_sequence = any(seq for _, _, seq in self.layout)

    def __call__(self, rows: torch.Tensor) -> list[list[Any]]:
        rows = rows.cpu()
        if all(t is True for t in self.tables):
            values = as_lists(rows)
        elif all(t is not None for t in self.tables):
            mapped = [rows[:, j] if t is True else t[rows[:, j]] for j, t in enumerate(self.tables)]
            values = as_lists(torch.stack(mapped, dim=1))  # padding -1 reads the last value, cut off below
        else:
            indices = rows.numpy()
            objects = np.empty(indices.shape, dtype=object)
            for j, table in enumerate(self.objects or ()):
                objects[:, j] = table[indices[:, j]]
            values = objects.tolist()
        if not self.has_sequence:
            return values
        valid = rows >= 0
        inside = [(valid[:, a + 1 : b] & ~valid[:, a : b - 1]).any() for a, b, seq in self.layout if seq and b - a > 1]
        if inside and bool(torch.stack(inside).any()):  # padding inside a Sequence: the careful way
            return [self._one(row) for row in as_lists(rows)]
        layout = self.layout
        if len(layout) == 1:  # one Sequence input (hwf): one slice per row
            return [[row[:n]] for row, n in zip(values, as_lists(valid.sum(dim=1)), strict=True)]
        lengths = as_lists(torch.stack([valid[:, a:b].sum(dim=1) for a, b, _ in layout], dim=1))
        return [[row[a:a + n] if seq else row[a] for (a, _, seq), n in zip(layout, length, strict=True)]
                for row, length in zip(values, lengths, strict=True)]

    def _one(self, row: list[int]) -> list[Any]:
        args: list[Any] = []
        for (start, stop, seq), space in zip(self.layout, self.inputs, strict=True):
            if seq:
                args.append([space.element.values[i] for i in row[start:stop] if i >= 0])  # type: ignore[union-attr]
            else:
                args.append(space.values[row[start]])  # type: ignore[union-attr]
        return args
