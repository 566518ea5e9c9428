"""Tuple codes and the bulk memo: program results looked up with tensor operations, not per tuple.

A row of class indices x (one column per variable, -1 on padded Sequence positions, so a
Sequence's length is part of the row) gets one int64 code:

* exact (mixed radix), when prod_j (size_j + 1) < 2**63:  c(x) = sum_j (x_j + 1) * place_j with
  place_j = prod_{i > j} (size_i + 1); distinct rows have distinct codes, and a code decodes back;
* hashed, otherwise (many positions times large radices: an 81-cell sudoku board):
  c(x) = sum_j (x_j + 1) * M_j  (mod 2**64) with fixed random odd multipliers M_j. Two rows can then
  share a code, so the memo keeps each entry's row and compares it: a collision never answers a
  tuple with another tuple's result (the colliding tuples are run and not memoised).

``TupleMemo`` holds entries as tensors: codes sorted, the output indices (``[N, w]``, w = 1, or the
number of components of a Product output), a success flag, an insertion stamp, and (hashed) the
rows, in a few sorted runs (a log-structured merge): a batch's new entries become a run of their own,
and a run is merged into the one before it once it holds a quarter of that run's entries, so the
runs shrink at least fourfold from first to last (about log4 of the entries over a batch's: 6 runs
for 3M entries) and each entry is copied about log4 N times in all; a batch's distinct codes are
found with one ``searchsorted`` per run. (Two runs, the recent one merged into on every insert, cost
O(N) copying per insert: 2.57 ms per batch of 1,550 new entries at N = 2.45M against 0.74 ms now,
``benchmarks/memo_growth.py``.) The memory bound ``limit`` keeps the
``limit`` most recently inserted entries (the oldest are dropped first), as ``Program(cache_limit=)``
documents. Expiry is lazy: an entry older than the newest ``limit`` stamps is no longer found, and
expired entries are removed in bulk once ``limit / 4`` of them have piled up (and whenever two runs
merge), so the memo holds at most 1.25 ``limit`` entries plus a batch, and an insert at the limit
costs O(batch) amortised, not a pass over every entry (15.3 -> 1.4 ms per batch of 1,550 new
entries at ``limit`` = 500,000, ``benchmarks/memo_growth.py --limit 500000``). An entry costs
17 + 8 w bytes (8 V more when hashed: its row), against a few hundred for a dict entry keyed by a
Python tuple. Everything stays on the device of the tuples: one transfer of the new distinct rows
per batch, none per tuple.
A small exact space gets ``blackprop.program.dense_memo.DenseMemo`` instead (tables indexed by the code).

Example:
    >>> import torch
    >>> coder = TupleCoder([10, 10])
    >>> coder.exact, coder.codes(torch.tensor([[1, 2], [0, 0]])).tolist()
    (True, [25, 12])
    >>> memo = TupleMemo(coder, width=1)
    >>> memo.insert(torch.tensor([25]), torch.tensor([[1, 2]]), torch.tensor([[3]]), torch.tensor([True]))
    >>> found, outputs, ok, clash = memo.lookup(torch.tensor([12, 25]), torch.tensor([[0, 0], [1, 2]]))
    >>> found.tolist(), outputs[1].tolist(), len(memo)
    ([False, True], [3], 1)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import final

import torch

__all__ = ["TupleCoder", "TupleMemo", "distinct_rows"]

_INT64_LIMIT = 2**63
#: a run is merged into the run before it once it holds 1 / _RUN_RATIO of that run's entries
_RUN_RATIO = 4
#: at a limit L, expired entries are removed in bulk once L / _EXPIRED_SHARE of them are held
_EXPIRED_SHARE = 4


@final
class TupleCoder:
    """int64 codes of rows of class indices; ``exact`` unless the mixed radix overflows int64.

    Args:
        sizes: class count per column (a Sequence column also takes -1, its padding).
        hashed: force hashed codes (for tests of the collision handling); ``bits`` keeps only
            that many low bits of a hashed code (tests force collisions with a few bits).
    """

    def __init__(self, sizes: list[int], *, hashed: bool = False, bits: int = 64):
        radix = [size + 1 for size in sizes]  # +1: the padding value -1
        #: columns of a row (one per variable)
        self.width = len(sizes)
        self.exact = not hashed and math.prod(radix) < _INT64_LIMIT
        #: how many exact codes there are (every code is in range(span)); None when hashed
        self.span: int | None = math.prod(radix) if self.exact else None
        if self.exact:
            places, place = [], 1
            for r in reversed(radix):
                places.append(place)
                place *= r
            self._weights = torch.tensor(list(reversed(places)), dtype=torch.long)
            self._radix = torch.tensor(radix, dtype=torch.long)
        else:
            generator = torch.Generator().manual_seed(0x5EED)
            multipliers = torch.randint(-(2**62), 2**62, (len(sizes),), dtype=torch.long, generator=generator)
            self._weights = multipliers * 2 + 1  # odd
            self._radix = torch.tensor(radix, dtype=torch.long)
        self._mask = None if bits >= 64 else (1 << bits) - 1
        self._on: dict[torch.device, torch.Tensor] = {}

    def _weights_on(self, device: torch.device) -> torch.Tensor:
        if device not in self._on:
            self._on[device] = self._weights.to(device)
        return self._on[device]

    def codes(self, rows: torch.Tensor) -> torch.Tensor:
        """Code of each row ``[M, V]`` -> ``[M]`` (int64, on the rows' device)."""
        codes = ((rows.long() + 1) * self._weights_on(rows.device)).sum(dim=1)  # wraps mod 2**64 when hashed
        return codes if self._mask is None else codes & self._mask

    def rows(self, codes: torch.Tensor) -> torch.Tensor:
        """The rows of exact codes ``[N]`` -> ``[N, V]`` (the inverse of ``codes``)."""
        if not self.exact:
            raise ValueError("TupleCoder.rows(codes): hashed codes do not decode; the memo keeps their rows")
        weights = self._weights_on(codes.device)
        return (codes.unsqueeze(1) // weights) % self._radix.to(codes.device) - 1


def distinct_rows(coder: TupleCoder, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(codes ``[U]``, rows ``[U, V]``, inverse ``[M]``, alone ``[U]``) of the distinct rows of ``flat``
    ``[M, V]``, in code order.

    ``alone``: a distinct row whose hashed code another distinct row of the batch shares (never
    for exact codes); such rows are run but not memoised.
    """
    codes = coder.codes(flat)
    unique, inverse = torch.unique(codes, return_inverse=True)
    first = torch.empty_like(unique)
    first[inverse] = torch.arange(flat.shape[0], device=flat.device)
    rows = flat[first]
    alone = torch.zeros(unique.shape[0], dtype=torch.bool, device=flat.device)
    if coder.exact or bool((rows[inverse] == flat).all()):
        return unique, rows, inverse, alone
    rows, inverse = torch.unique(flat, dim=0, return_inverse=True)  # a hash collision: rows, not codes
    unique = coder.codes(rows)
    sorted_codes, counts = torch.unique(unique, return_counts=True)
    shared = sorted_codes[counts > 1]
    return unique, rows, inverse, torch.isin(unique, shared)


@final
@dataclass(frozen=True)
class _Run:
    """Entries sorted by code: codes ``[N]``, outputs ``[N, w]``, ok ``[N]``, stamps ``[N]``, rows ``[N, V]`` or None."""

    codes: torch.Tensor
    outputs: torch.Tensor
    ok: torch.Tensor
    stamps: torch.Tensor
    rows: torch.Tensor | None

    def __len__(self) -> int:
        return self.codes.shape[0]

    def to(self, device: torch.device) -> _Run:
        return _Run(self.codes.to(device), self.outputs.to(device), self.ok.to(device), self.stamps.to(device),
                    None if self.rows is None else self.rows.to(device))

    def select(self, keep: torch.Tensor) -> _Run:
        return _Run(self.codes[keep], self.outputs[keep], self.ok[keep], self.stamps[keep],
                    None if self.rows is None else self.rows[keep])

    def find(self, codes: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(position, found, clash) of each code: clash where the code is here with another row."""
        if len(self) == 0:
            none = torch.zeros(codes.shape[0], dtype=torch.bool, device=codes.device)
            return torch.zeros_like(codes), none, none
        position = torch.searchsorted(self.codes, codes).clamp(max=len(self) - 1)
        hit = self.codes[position] == codes
        if self.rows is None:
            return position, hit, torch.zeros_like(hit)
        same = (self.rows[position] == rows.to(self.rows.dtype)).all(dim=1)
        return position, hit & same, hit & ~same


def _merge(a: _Run, b: _Run) -> _Run:
    """One sorted run of two sorted runs with disjoint codes, with O(len(a) + len(b)) tensor operations."""
    if len(a) == 0:
        return b
    if len(b) == 0:
        return a
    total, device = len(a) + len(b), b.codes.device
    into_b = torch.searchsorted(a.codes, b.codes) + torch.arange(len(b), device=device)
    # source[i]: the entry of cat(a, b) that lands at position i (b's positions set by index, a's fill the rest in order)
    source = torch.empty(total, dtype=torch.long, device=device)
    source[into_b] = torch.arange(len(a), total, device=device)
    taken = torch.zeros(total, dtype=torch.bool, device=device)
    taken[into_b] = True
    source.masked_scatter_(~taken, torch.arange(len(a), device=device))

    def both(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, y]).index_select(0, source)  # a gather: much cheaper than scattering len(a) rows

    rows = None if a.rows is None or b.rows is None else both(a.rows, b.rows)
    return _Run(both(a.codes, b.codes), both(a.outputs, b.outputs), both(a.ok, b.ok), both(a.stamps, b.stamps), rows)


@final
class TupleMemo:
    """Output indices of rows, keyed by ``TupleCoder`` codes, looked up and extended in bulk.

    Args:
        coder: the program's ``TupleCoder``; its ``exact`` decides whether rows are kept.
        width: output columns per entry (1, or a Product output's component count).
        limit: keep at most this many entries, the most recently inserted (None: no bound).
    """

    def __init__(self, coder: TupleCoder, width: int, limit: int | None = None):
        self.coder, self.width, self.limit = coder, width, limit
        self._next_stamp = 0
        # sorted by code each, sizes shrinking at least _RUN_RATIO-fold; disjoint but for expired copies
        self._runs: list[_Run] = []

    def _empty(self, device: torch.device, columns: int) -> _Run:
        long = torch.empty(0, dtype=torch.long, device=device)
        rows = None if self.coder.exact else torch.empty((0, columns), dtype=torch.long, device=device)
        return _Run(long, long.new_empty((0, self.width)), torch.empty(0, dtype=torch.bool, device=device), long, rows)

    def __len__(self) -> int:
        """The entries found by ``lookup`` (held entries minus expired ones)."""
        oldest = self._oldest_live()
        if oldest == 0:
            return self._held()
        return sum(int((run.stamps >= oldest).sum()) for run in self._runs)

    def _held(self) -> int:
        return sum(len(run) for run in self._runs)

    def _oldest_live(self) -> int:
        """The oldest stamp still live: with a limit L, the entries of the newest L stamps are (0: every entry)."""
        return 0 if self.limit is None else max(0, self._next_stamp - self.limit)

    def clear(self) -> None:
        self._runs = []

    def _on(self, device: torch.device) -> None:
        if self._runs and self._runs[0].codes.device != device:  # the memo follows the tuples (moved once)
            self._runs = [run.to(device) for run in self._runs]

    def lookup(
        self, codes: torch.Tensor, rows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(found ``[U]``, outputs ``[U, w]``, ok ``[U]``, clash ``[U]``) of distinct codes ``[U]`` with their
        rows ``[U, V]``; clash: the code is memoised for another row (hashed codes only)."""
        self._on(codes.device)
        outputs = torch.full((codes.shape[0], self.width), -1, dtype=torch.long, device=codes.device)
        ok = torch.zeros(codes.shape[0], dtype=torch.bool, device=codes.device)
        found = torch.zeros_like(ok)
        clash = torch.zeros_like(ok)
        oldest = self._oldest_live()
        for run in self._runs:
            position, hit, other = run.find(codes, rows)
            if oldest > 0:  # an expired entry is not found (nor a clash), though still held
                live = run.stamps[position] >= oldest
                hit, other = hit & live, other & live
            outputs = torch.where(hit.unsqueeze(1), run.outputs[position], outputs)
            ok = torch.where(hit, run.ok[position], ok)
            found |= hit
            clash |= other
        return found, outputs, ok, clash

    def insert(self, codes: torch.Tensor, rows: torch.Tensor, outputs: torch.Tensor, ok: torch.Tensor) -> None:
        """Add entries (distinct codes not found in the memo), stamped in the order given; then keep the newest
        ``limit`` live (an expired copy of a code may still be held: ``_push`` drops it before any merge)."""
        if codes.shape[0] == 0:
            return
        device = codes.device
        self._on(device)
        if not self.coder.exact and self._runs and self._runs[0].rows is not None \
                and self._runs[0].rows.shape[1] != rows.shape[1]:
            self._runs = []  # hashed rows of another width (a longer Sequence layout): start afresh
        stamps = torch.arange(self._next_stamp, self._next_stamp + codes.shape[0], device=device)
        self._next_stamp += codes.shape[0]
        order = torch.argsort(codes)
        self._push(_Run(codes[order], outputs.to(device).reshape(-1, self.width)[order], ok.to(device)[order],
                        stamps[order], None if self.coder.exact else rows.long()[order]))
        if self.limit is not None and self._held() > self.limit + max(1, self.limit // _EXPIRED_SHARE):
            oldest = self._oldest_live()  # entries are only ever removed oldest first
            self._keep(lambda run: run.stamps >= oldest)

    def _push(self, run: _Run) -> None:
        """Append a run, then merge the last run into the one before while it holds a quarter of it or more
        (dropping expired entries from both first: a merged run never holds a code twice)."""
        self._runs.append(run)
        while len(self._runs) > 1 and _RUN_RATIO * len(self._runs[-1]) >= len(self._runs[-2]):
            last, before = self._runs.pop(), self._runs[-1]
            oldest = self._oldest_live()
            if oldest > 0:
                last, before = last.select(last.stamps >= oldest), before.select(before.stamps >= oldest)
            self._runs[-1] = _merge(before, last)

    def _keep(self, rule: Callable[[_Run], torch.Tensor]) -> None:
        """Keep the entries where ``rule(run)`` holds (the runs rebuilt so that they shrink fourfold again)."""
        runs, self._runs = self._runs, []
        for run in runs:
            kept = run.select(rule(run))
            if len(kept):
                self._push(kept)

    def entries(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(rows ``[N, V]``, outputs ``[N, w]``, ok ``[N]``) of every live entry, oldest first (on the CPU)."""
        oldest = self._oldest_live()
        runs = [run.select(run.stamps >= oldest) if oldest > 0 else run for run in self._runs]
        run = runs[0] if runs else self._empty(torch.device("cpu"), self.coder.width)
        for other in runs[1:]:
            run = _merge(run, other)
        run = run.to(torch.device("cpu"))
        order = torch.argsort(run.stamps)
        rows = self.coder.rows(run.codes) if run.rows is None else run.rows
        return rows[order], run.outputs[order], run.ok[order]

    def without(self, codes: torch.Tensor) -> None:
        """Drop the entries of these codes (before they are inserted anew, as dict.update replaces)."""
        if len(self) == 0 or codes.shape[0] == 0:
            return
        self._on(codes.device)
        known = torch.sort(codes).values

        def unknown(run: _Run) -> torch.Tensor:
            position = torch.searchsorted(known, run.codes).clamp(max=known.shape[0] - 1)
            return known[position] != run.codes

        self._keep(unknown)

