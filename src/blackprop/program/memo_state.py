"""A ``Program``'s memo as checkpoint data: a table of tensors, and a dict view for people.

``Program.state_dict()["memo"]`` is a table, oldest entry first:

* ``rows``: the tuples' class indices ``[N, V]`` (-1 on padded Sequence positions), in the smallest
  signed integer type that holds them (int8 for up to 127 classes);
* ``outputs``: their output indices ``[N, w]`` (w = 1, or a Product output's component count);
* ``ok``: ``[N]``, False for a tuple the program failed on (its outputs then hold -1).

A table costs a few bytes per entry and is written with tensor operations, so a training run can
checkpoint a memo of millions of tuples every epoch (the dict keyed by Python tuples that earlier
versions wrote took 8.6 s and 50 MB to build and save for 2M tuples, against 0.7 s and 20 MB for the
table, ``benchmarks/memo_checkpoint.py``; one IndeCateR run on ``scene`` memoises about 17M).
Checkpoints holding such a dict still load: ``memo_entries`` reads both forms. ``memo_dict`` gives
the dict view ``{tuple: output index}`` (a Product output's index a tuple, a failed tuple's -1).

Example:
    >>> import torch
    >>> table = memo_table(torch.tensor([[1, 2], [0, 0]]), torch.tensor([[3], [-1]]), torch.tensor([True, False]))
    >>> table["rows"].dtype, memo_dict(table, product=False)
    (torch.int8, {(1, 2): 3, (0, 0): -1})
"""

from __future__ import annotations

from typing import Any

import torch

from .base import FAILED

__all__ = ["memo_dict", "memo_entries", "memo_table"]

_SIGNED = (torch.int8, torch.int16, torch.int32, torch.int64)


def _smallest(values: torch.Tensor) -> torch.dtype:
    """The smallest signed integer type holding every value (int8 for an empty tensor)."""
    if values.numel() == 0:
        return torch.int8
    low, high = int(values.min()), int(values.max())
    return next(t for t in _SIGNED if torch.iinfo(t).min <= low and high <= torch.iinfo(t).max)


def memo_table(rows: torch.Tensor, outputs: torch.Tensor, ok: torch.Tensor) -> dict[str, torch.Tensor]:
    """The table of entries (``rows [N, V]``, ``outputs [N, w]``, ``ok [N]``, oldest first), on the CPU."""
    rows, outputs = rows.cpu(), outputs.cpu()
    return {"rows": rows.to(_smallest(rows)), "outputs": outputs.to(_smallest(outputs)), "ok": ok.cpu().bool()}


def memo_dict(table: dict[str, torch.Tensor], product: bool) -> dict[tuple[int, ...], Any]:
    """The dict view ``{tuple: output index}`` of a table (a Product output's index is a tuple; FAILED for a failure)."""
    rows, outputs, ok = table["rows"].tolist(), table["outputs"].tolist(), table["ok"].tolist()
    return {tuple(row): (tuple(out) if product else out[0]) if good else FAILED
            for row, out, good in zip(rows, outputs, ok, strict=True)}


def memo_entries(memo: Any, num_variables: int, width: int, product: bool, failed_row: list[int],
                 name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(rows ``[N, V]``, outputs ``[N, w]``, ok ``[N]``) as int64 / bool tensors, from a table or from the
    dict keyed by tuples that older checkpoints hold; raises naming the program for anything else."""
    wrong = (f"{name}.load_state_dict(state): the memo must be a table of rows [N, {num_variables}], outputs "
             f"[N, {width}] and ok [N], or a dict keyed by tuples of {num_variables} class indices; this state "
             f"belongs to another program")
    if isinstance(memo, dict) and set(memo) == {"rows", "outputs", "ok"}:
        rows, outputs, ok = memo["rows"], memo["outputs"], memo["ok"]
        shapes_ok = (isinstance(rows, torch.Tensor) and isinstance(outputs, torch.Tensor) and isinstance(ok, torch.Tensor)
                     and rows.dim() == 2 and rows.shape[1] == num_variables and tuple(outputs.shape) == (len(rows), width)
                     and tuple(ok.shape) == (len(rows),) and ok.dtype == torch.bool
                     and not rows.is_floating_point() and not outputs.is_floating_point())
        if not shapes_ok:
            raise ValueError(wrong)
        return rows.long(), outputs.long(), ok
    if not isinstance(memo, dict) or any(not isinstance(k, tuple) or len(k) != num_variables for k in memo):
        raise ValueError(wrong)
    good = [isinstance(v, tuple) if product else v != FAILED for v in memo.values()]
    rows = torch.tensor(list(memo), dtype=torch.long).reshape(len(memo), num_variables)
    outputs = torch.tensor([(list(v) if product else [v]) if ok else failed_row
                            for v, ok in zip(memo.values(), good, strict=True)], dtype=torch.long).reshape(len(memo), width)
    return rows, outputs, torch.tensor(good, dtype=torch.bool)
