"""Map a tensor of returned values to indices of an ``Open`` output space, in bulk.

A ``BatchedProgram`` with an ``Open`` output returns one number per row. ``OpenIndex`` turns them
into output indices with tensor operations: the distinct values of the batch (``torch.unique``) are
looked up in a sorted table of the values seen before (``searchsorted``); Python runs only for a
value never seen, once, through ``Open.index`` (so the space's ``canonical`` decides equality as it
does for ``Program``). NaN is a failure (index -1), as for ``Program``; so is a value that
``canonical`` rejects (it raises), and that verdict is remembered like an index.

Values are compared as numbers of the returned dtype: int64 and float64 tables are kept apart (an
``Open`` space keeps ``1`` and ``1.0`` apart unless its ``canonical`` merges them), and ``-0.0`` is
read as ``0.0``. The table holds at most ``limit`` values; past it, new values still get their index
through ``Open.index`` but are not remembered.

Example:
    >>> import torch
    >>> from blackprop.spaces import Open
    >>> space = Open(canonical=lambda v: round(v, 1))
    >>> lookup = OpenIndex(space)
    >>> lookup(torch.tensor([0.5, 0.52, float("nan"), 0.5], dtype=torch.float64)).tolist()
    [0, 0, -1, 0]
    >>> space.values
    [0.5]
"""

from __future__ import annotations

from typing import final

import torch

from ..spaces import Open, OutputSpaceError
from .base import FAILED

__all__ = ["OpenIndex"]


@final
class OpenIndex:
    """``lookup(values [M]) -> indices [M]`` into ``space``, remembering up to ``limit`` raw values."""

    def __init__(self, space: Open, limit: int = 1 << 20):
        self.space = space
        self.limit = limit
        self._seen: torch.Tensor | None = None  # sorted raw values
        self._index = torch.empty(0, dtype=torch.long)  # their output indices (or FAILED)

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        values = values.reshape(-1)
        if values.dtype == torch.bool or values.is_complex():
            raise TypeError(f"expected real numbers, got dtype {values.dtype}")
        if values.is_floating_point():
            values = values.to(torch.float64) + 0.0  # one float type; -0.0 + 0.0 is 0.0
            missing = torch.isnan(values)
            if bool(missing.any()):  # NaN fails; the other values are looked up
                out = torch.full(values.shape, FAILED, dtype=torch.long, device=values.device)
                return out.masked_scatter(~missing, self(values[~missing]))
        else:
            values = values.to(torch.int64)
        distinct, inverse = torch.unique(values, return_inverse=True)
        indices = self._known(distinct)
        new = indices == -2
        if bool(new.any()):
            fresh = distinct[new]
            found = torch.tensor([self._index_of(value) for value in fresh.tolist()], dtype=torch.long,
                                 device=indices.device)
            indices = indices.masked_scatter(new, found)
            self._remember(fresh, found)
        return indices[inverse]

    def _known(self, distinct: torch.Tensor) -> torch.Tensor:
        """Each value's remembered index, -2 where it was never seen."""
        seen = self._seen
        if seen is None or seen.dtype != distinct.dtype or seen.numel() == 0:
            return torch.full_like(distinct, -2, dtype=torch.long)
        if seen.device != distinct.device:
            self._seen, self._index = seen.to(distinct.device), self._index.to(distinct.device)
            seen = self._seen
        place = torch.searchsorted(seen, distinct).clamp(max=seen.numel() - 1)
        return torch.where(seen[place] == distinct, self._index[place], -2)

    def _index_of(self, value: int | float) -> int:
        try:
            return self.space.index(value)
        except (OutputSpaceError, TypeError, ValueError, ArithmeticError):
            return FAILED

    def _remember(self, values: torch.Tensor, indices: torch.Tensor) -> None:
        seen = self._seen
        if seen is None or seen.dtype != values.dtype:  # the first values, or the program changed dtype
            seen, self._index = values[:0], indices[:0]
        if seen.numel() + values.numel() > self.limit:
            return
        merged, order = torch.sort(torch.cat([seen, values]))
        self._seen, self._index = merged, torch.cat([self._index.to(indices.device), indices])[order]
