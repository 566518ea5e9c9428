"""The memo of a small input space: tables indexed by the tuple's exact code, one gather per lookup.

``DenseMemo`` answers ``TupleMemo``'s calls for programs whose exact codes (``TupleCoder``) span at most
``DENSE_CODES`` values, so that the memo can never hold more entries than that and no ``limit`` binds:
sum2 (121 codes), sum4 (14,641), every MNIST-R program of up to four digits. Where a batch's tuples are
known, ``Program.evaluate`` answers them with one gather and makes only the unknown ones distinct
(``DenseMemo.answer``). ``make_memo`` picks the memo that applies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import final

import torch

from .memo import TupleCoder, TupleMemo

__all__ = ["DENSE_CODES", "DenseMemo", "make_memo"]

#: exact code spaces of at most this many codes get a ``DenseMemo``
DENSE_CODES = 1 << 16


@final
class DenseMemo:
    """``TupleMemo``'s interface over tables indexed by the code, for exact codes of a small space
    (``coder.span <= DENSE_CODES``) and a ``limit`` the space cannot exceed: a lookup is one gather
    (``at``), with no sort, search or distinct rows; an absent entry has stamp -1.

    Tables: outputs ``[span, w]`` (-1 where absent), ok ``[span]``, stamps ``[span]`` (insertion order),
    about 17 + 8 w bytes per code of the space (1.1 MB at w = 1 for 65,536 codes), allocated on the
    first insert.

    Example:
        >>> import torch
        >>> memo = DenseMemo(TupleCoder([10, 10]), width=1)
        >>> memo.insert(torch.tensor([25]), torch.tensor([[1, 2]]), torch.tensor([[3]]), torch.tensor([True]))
        >>> outputs, ok, found = memo.at(torch.tensor([25, 12, 25]))
        >>> outputs[:, 0].tolist(), found.tolist(), len(memo)
        ([3, -1, 3], [True, False, True], 1)
    """

    def __init__(self, coder: TupleCoder, width: int, limit: int | None = None):
        if coder.span is None or coder.span > DENSE_CODES or (limit is not None and limit < coder.span):
            raise ValueError("DenseMemo: exact codes of at most DENSE_CODES codes and no limit below the span; "
                             "use TupleMemo (make_memo chooses)")
        self.coder, self.width, self.limit, self.span = coder, width, limit, coder.span
        self._next_stamp = 0
        self._count = 0
        self._tables: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # outputs, ok, stamps

    def __len__(self) -> int:
        return self._count

    def _on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tables = self._tables
        if tables is None:
            tables = (torch.full((self.span, self.width), -1, dtype=torch.long, device=device),
                      torch.zeros(self.span, dtype=torch.bool, device=device),
                      torch.full((self.span,), -1, dtype=torch.long, device=device))
        elif tables[0].device != device:  # the memo follows the tuples (moved once, not per batch)
            tables = (tables[0].to(device), tables[1].to(device), tables[2].to(device))
        self._tables = tables
        return tables

    def clear(self) -> None:
        self._tables, self._count = None, 0

    def at(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(outputs ``[M, w]``, ok ``[M]``, found ``[M]``) of any codes ``[M]``, repeats allowed."""
        outputs, ok, stamps = self._on(codes.device)
        return outputs[codes], ok[codes], stamps[codes] >= 0

    def answer(
        self, codes: torch.Tensor, run: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(outputs ``[M, w]``, ok ``[M]``, hits) of the tuples of these codes ``[M]`` (repeats allowed): the
        known ones by one gather; the distinct unknown ones decoded to rows, given to ``run`` once
        (``Program._run_rows``: outputs, ok, may be memoised) and memoised in code order, as
        ``Program.evaluate``'s general path does. hits: how many distinct tuples were known."""
        outputs, ok, found = self.at(codes)
        hits = int(torch.count_nonzero(torch.bincount(codes[found])))  # distinct known codes (codes < span)
        if not bool(found.all()):
            unknown = ~found
            new = torch.unique(codes[unknown])
            rows = self.coder.rows(new)
            fresh, fresh_ok, keep = run(rows)
            fresh = fresh.reshape(-1, self.width)
            self.insert(new[keep], rows[keep], fresh[keep], fresh_ok[keep])
            position = torch.searchsorted(new, codes[unknown])
            outputs[unknown], ok[unknown] = fresh[position], fresh_ok[position]
        return outputs, ok, hits

    def lookup(
        self, codes: torch.Tensor, rows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """As ``TupleMemo.lookup`` (found, outputs, ok, clash); exact codes never clash."""
        outputs, ok, found = self.at(codes)
        return found, outputs, ok, torch.zeros_like(found)

    def insert(self, codes: torch.Tensor, rows: torch.Tensor, outputs: torch.Tensor, ok: torch.Tensor) -> None:
        """Add entries (distinct codes not in the memo), stamped in the order given."""
        if codes.shape[0] == 0:
            return
        table, ok_table, stamps = self._on(codes.device)
        self._count += int((stamps[codes] < 0).sum())
        table[codes] = outputs.to(codes.device).reshape(-1, self.width)
        ok_table[codes] = ok.to(codes.device)
        stamps[codes] = torch.arange(self._next_stamp, self._next_stamp + codes.shape[0], device=codes.device)
        self._next_stamp += codes.shape[0]

    def entries(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(rows ``[N, V]``, outputs ``[N, w]``, ok ``[N]``) of every entry, oldest first (on the CPU)."""
        if self._tables is None:
            return (torch.empty((0, self.coder.width), dtype=torch.long),
                    torch.empty((0, self.width), dtype=torch.long), torch.empty(0, dtype=torch.bool))
        table, ok_table, stamps = (t.cpu() for t in self._tables)
        codes = (stamps >= 0).nonzero().squeeze(1)
        codes = codes[torch.argsort(stamps[codes])]
        return self.coder.rows(codes), table[codes], ok_table[codes]

    def without(self, codes: torch.Tensor) -> None:
        """Drop the entries of these codes (before they are inserted anew, as dict.update replaces)."""
        if self._tables is None or codes.shape[0] == 0:
            return
        table, ok_table, stamps = self._on(codes.device)
        codes = torch.unique(codes)
        self._count -= int((stamps[codes] >= 0).sum())
        table[codes], ok_table[codes], stamps[codes] = -1, False, -1


def make_memo(coder: TupleCoder, width: int, limit: int | None = None) -> DenseMemo | TupleMemo:
    """A ``DenseMemo`` where the codes are exact, their space small (``DENSE_CODES``) and ``limit`` cannot
    bind; else a ``TupleMemo``. Both answer every lookup alike."""
    if coder.span is not None and coder.span <= DENSE_CODES and (limit is None or limit >= coder.span):
        return DenseMemo(coder, width, limit)
    return TupleMemo(coder, width, limit)

