"""Program: a black-box Python callable over symbols, with a memo and an executor.

``Program(fn, inputs, output)`` evaluates ``fn`` on symbol tuples given as rows of class indices.
Each distinct row is a canonical key; with ``cache=True`` (default) it is evaluated at most once
over the program's life. A call that raises, times out, or returns a value outside a ``Discrete``
output space (or None / NaN) is a *failed sample* (index -1, see ``BaseProgram`` for the policy).
What is memoised:

* results and deterministic failures (fn raised, returned a bad value): for good;
* transient failures (``TransientProgramError``, ``ConnectionError``, ``TimeoutError``) and calls
  lost with a dead worker: never; the tuple is asked again when sampled again;
* a timeout is taken for load the first time (not memoised) and for the tuple's own fault the
  second time (memoised), so a tuple that always hangs costs at most two timeouts.

Calls run serially or on an executor (``use_executor``), with the same results and memo either way.

Example:
    >>> import torch
    >>> from blackprop.spaces import Discrete
    >>> digit = Discrete(range(10))
    >>> add = Program(lambda a, b: a + b, inputs=(digit, digit), output=Discrete(range(19)))
    >>> add.evaluate(torch.tensor([[1, 2], [3, 4], [1, 2]])).tolist()
    [3, 7, 3]
    >>> add.stats.queries, add.stats.calls, add.stats.hits
    (3, 2, 0)
    >>> sorted(add.memo_dict().items())
    [((1, 2), 3), ((3, 4), 7)]
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from collections.abc import Sequence as SequenceABC
from dataclasses import asdict
from typing import Any, final

import numpy as np
import torch

from ..spaces import Discrete, Open, OutputSpaceError, Product, Sequence
from .base import FAILED, BaseProgram, is_nan
from .calls import OK, TIMEOUT, TRANSIENT_ERRORS, Outcome, collector_paused, error_outcome
from .dense_memo import DenseMemo, make_memo
from .executors import ExecutorRunner
from .memo import TupleCoder, distinct_rows
from .memo_state import memo_dict, memo_entries, memo_table
from .rows import as_lists

__all__ = ["Program"]


@final
class Program(BaseProgram):
    """A callable ``fn(*symbols)`` with declared input and output spaces; see the module docstring.

    Args:
        fn: any Python callable; receives one value per input (a list for Sequence inputs).
        inputs: one space per argument (``Discrete`` or ``Sequence``).
        output: a ``Discrete`` or ``Open`` space for the return value, or a ``Product`` of
            Discrete spaces for tuple values (then ``evaluate`` gives ``[..., m]`` indices).
        cache: memoise results per distinct tuple (default True); "batch": run each distinct
            tuple of one ``evaluate`` call once but keep nothing across calls; False: run every row.
        cache_limit: at most this many memoised tuples (None: no limit); past it the oldest entries
            are dropped first and a dropped tuple simply runs again when sampled (the memory held
            is up to 1.25 cache_limit entries: expired ones are freed in bulk).
        timeout: seconds per call; a slower call is a failure. None: no limit.
        executor: where calls run (``blackprop.program.executors``): None or "serial", "process",
            "process:N", "thread:N", "dask:tcp://HOST:PORT", "dask-local:N", an int (a process pool
            of that size), any concurrent.futures.Executor, or a ``distributed.Client``. ``fn`` must
            be picklable (a module-level function) for process pools.
        name: shown in messages (default: fn's name).
        max_failed_batches: consecutive all-failed ``evaluate`` calls before ``ProgramFailedError``
            (default 5; None: never).

    ``close()`` (or ``with Program(...) as program:``) shuts down a pool the program created.
    Pickling (``torch.save(layer)``) keeps fn, spaces, memo and stats but not the executor (the
    copy runs serially); a fn that cannot be pickled (a lambda, a closure) gets an error that says
    to save ``layer.state_dict()`` / ``program.state_dict()`` instead.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("Program is final: wrap a Program (composition) instead of subclassing it")

    def __init__(
        self,
        fn: Callable[..., Any],
        inputs: SequenceABC[Discrete | Sequence] | Discrete | Sequence,
        output: Discrete | Open | Product,
        *,
        cache: bool | str = True,
        cache_limit: int | None = None,
        timeout: float | None = None,
        executor: Any = None,
        name: str | None = None,
        max_failed_batches: int | None = 5,
    ):
        super().__init__(fn, inputs, output, name=name, max_failed_batches=max_failed_batches)
        if cache not in (True, False, "batch"):
            raise ValueError(f"Program(cache=...): give True, False or 'batch', got {cache!r}")
        if cache_limit is not None and (isinstance(cache_limit, bool) or not isinstance(cache_limit, int)
                                        or cache_limit < 1):
            raise ValueError(f"Program(cache_limit=...): give an int >= 1 or None, got {cache_limit!r}")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not 0 < timeout < math.inf):
            raise ValueError(f"Program(timeout=...): give a finite number of seconds > 0 or None, got {timeout!r}")
        self.cache_enabled = bool(cache)
        self.cache_across_calls = cache is True  # "batch": dedup within a call only
        self.cache_limit = cache_limit
        self.timeout = None if timeout is None else float(timeout)
        self._runner = ExecutorRunner(executor, fn)
        self._new_memo()
        self._timed_out: set[tuple[int, ...]] = set()  # tuples that timed out once (not memoised yet)
        self._reported: set[str] = set()
        tables = [s.values for s in self.inputs if isinstance(s, Discrete)]
        self._tables: list[tuple[Any, ...]] | None = tables if len(tables) == len(self.inputs) else None

    # --- executor ---------------------------------------------------------------------------
    @property
    def executor(self) -> Any:
        """The live ``concurrent.futures.Executor`` (None when serial); a broken pool is replaced."""
        return self._runner.executor

    @property
    def parallelism(self) -> int:
        """How many calls the executor runs at once (1 when serial)."""
        return 1 if self._runner.executor is None else self._runner.parallelism

    def use_executor(self, executor: Any) -> Program:
        """Run calls on another executor from now on (a spec string such as "process:4", or any form
        ``executor=`` takes); the memo is kept. Returns the program.

        >>> from blackprop.spaces import Discrete
        >>> Program(abs, Discrete([-1, 1]), Discrete([1])).use_executor("thread:2").parallelism
        2
        """
        runner = ExecutorRunner(executor, self.fn)
        self._runner.close()
        self._runner = runner
        return self

    def close(self) -> None:
        """Shut down a pool this program created (a no-op for serial and borrowed executors)."""
        self._runner.close()

    # --- memo and state -----------------------------------------------------------------------
    def _new_memo(self) -> None:
        self._identity = all(isinstance(s, Discrete) and list(s.values) == list(range(s.size)) for s in self.inputs)
        self._coder = TupleCoder(self._sizes)
        width = self.output.num_components if isinstance(self.output, Product) else 1
        self._memo = make_memo(self._coder, width, self.cache_limit)

    def cache_size(self) -> int:
        return len(self._memo)

    def clear_cache(self) -> None:
        self._memo.clear()
        self._timed_out.clear()

    def state_dict(self) -> dict[str, Any]:
        """``{"memo": table, "values": output values, "stats": {...}}``: plain data for ``torch.save``; the
        memo a table of tensors, oldest entry first (``blackprop.program.memo_state``; ``memo_dict()``
        is its dict view). Transient failures are never in the memo, so never in the state."""
        return {"memo": memo_table(*self._memo.entries()), "values": list(self.output.values), **super().state_dict()}

    def memo_dict(self) -> dict[tuple[int, ...], Any]:
        """The memo as ``{tuple of class indices: output index}``, oldest first (a Product output's index
        is a tuple, a failed tuple's FAILED): built entry by entry, for reading, not for checkpoints."""
        return memo_dict(memo_table(*self._memo.entries()), isinstance(self.output, Product))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore counters and memo (a table, or the dict of older checkpoints); refuses a memo of another
        program (columns, output values)."""
        super().load_state_dict(state)
        values = state.get("values", [])
        product = isinstance(self.output, Product)
        failed_row = list(self.output.failed_index()) if isinstance(self.output, Product) else [FAILED]
        rows, outputs, ok_tensor = memo_entries(state.get("memo", {}), self.num_variables, self._memo.width, product,
                                                failed_row, self.name)
        if isinstance(self.output, Open):
            for position, value in enumerate(values):
                if self.output.index(value) != position:
                    raise ValueError(f"{self.name}.load_state_dict(state): output value {value!r} already has "
                                     f"another index here; load the state into a fresh program")
        elif list(values) != list(self.output.values):
            raise ValueError(f"{self.name}.load_state_dict(state): saved with output values {_short(values)}, but "
                             f"this program's are {_short(self.output.values)}")
        if rows.shape[0] == 0:
            return
        self._check_range(rows)
        codes = self._coder.codes(rows)
        if not self._coder.exact:  # hashed codes: keep one row per code (a collision is run, not memoised)
            unique, counts = torch.unique(codes, return_counts=True)
            single = ~torch.isin(codes, unique[counts > 1])
            codes, rows, outputs, ok_tensor = codes[single], rows[single], outputs[single], ok_tensor[single]
        self._memo.without(codes)  # as dict.update: a loaded entry replaces the one held
        self._memo.insert(codes, rows, outputs, ok_tensor)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_runner"] = None  # executors do not travel; the copy runs serially
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        memo = state.get("_memo")
        self.__dict__.update(state)
        self._runner = ExecutorRunner(None, self.fn)
        if isinstance(memo, dict):  # pickled by a version whose memo was a dict of tuples: convert it
            self.__dict__.pop("_place", None)
            self._row_decoder = None
            self._new_memo()
            self.load_state_dict({"memo": memo, "values": list(self.output.values), "stats": asdict(self.stats)})

    def decode(self, row: SequenceABC[int]) -> list[Any]:
        if self._tables is not None:
            return [table[i] for table, i in zip(self._tables, row)]  # noqa: B905 (widths checked in evaluate)
        return super().decode(row)

    # --- evaluation -----------------------------------------------------------------------
    def evaluate(self, tuples: torch.Tensor) -> torch.Tensor:
        """Output index of each tuple (``[..., V]`` -> ``[...]``), -1 where the program failed.

        With a memo the tuples stay tensors on their device: coded (``TupleCoder``), made distinct
        (``torch.unique``), looked up in bulk (``TupleMemo``); only the distinct tuples not yet known
        are moved to the CPU, once per batch, and run in Python. A small space's memo (``DenseMemo``)
        looks every tuple up with one gather and makes only the unknown ones distinct.
        """
        self._check_tuples(tuples)
        lead = tuples.shape[:-1]
        components = (self.output.num_components,) if isinstance(self.output, Product) else ()
        flat = tuples.reshape(-1, self.num_variables).long()
        count = flat.shape[0]
        self.stats.queries += count
        if count == 0:
            return torch.empty((*lead, *components), dtype=torch.long, device=tuples.device)
        self._check_range(flat)
        if not self.cache_enabled:
            outputs, ok = self._run_rows(flat)
            self._end_batch(count, int(ok.sum()))
            return outputs.reshape(*lead, *components)
        if self.cache_across_calls and isinstance(self._memo, DenseMemo):  # a small space: tables by code
            outputs, ok, hits = self._memo.answer(self._coder.codes(flat), lambda new: self._run_rows(new, memo=True))
            self.stats.hits += hits
            self._end_batch(count, int(ok.any()))
            return outputs.reshape(*lead, *components)
        codes, rows, inverse, alone = distinct_rows(self._coder, flat)
        if self.cache_across_calls:
            found, outputs, ok, clash = self._memo.lookup(codes, rows)
            missing = (~found).nonzero().squeeze(1)
            self.stats.hits += codes.shape[0] - missing.shape[0]
        else:
            width = self._memo.width
            outputs = torch.full((codes.shape[0], width), FAILED, dtype=torch.long, device=flat.device)
            ok = torch.zeros(codes.shape[0], dtype=torch.bool, device=flat.device)
            clash, missing = alone, torch.arange(codes.shape[0], device=flat.device)
        if missing.shape[0]:
            fresh, fresh_ok, keep = self._run_rows(rows[missing], memo=True)
            outputs = outputs.index_copy(0, missing, fresh.reshape(-1, outputs.shape[1]))
            ok = ok.index_copy(0, missing, fresh_ok)
            if self.cache_across_calls:
                keep &= ~(clash | alone)[missing]  # a hashed code shared with another row is not memoised
                chosen = missing[keep]
                self._memo.insert(codes[chosen], rows[chosen], outputs[chosen], ok[chosen])
        self._end_batch(count, int(ok.any()))  # only whether any row succeeded matters: every distinct row occurs
        out = outputs[inverse]
        return out.reshape(*lead, *components)

    def _run_rows(self, rows: torch.Tensor, memo: bool = False) -> Any:
        """Run fn on every row ``[R, V]`` (one transfer to the CPU): outputs ``[R, w]`` and ok ``[R]`` on the
        rows' device, and (``memo``) which may be memoised. Per-tuple lists die before the collector resumes:
        alive then, they would reach the oldest generation and soon bring on a collection of the whole heap."""
        device, rows = rows.device, rows.cpu()
        with collector_paused():
            arguments = self.decode_rows(rows)  # as keys too when identical: fn(*args) cannot change the list
            indices, keeps = self._run(arguments if self._identity else as_lists(rows), arguments)
            del arguments
            if isinstance(self.output, Product):
                succeeded = [i for i, r in enumerate(indices) if isinstance(r, tuple)]  # often few (sudoku)
                values = np.empty((len(indices), self.output.num_components), dtype=np.int64)
                values[:] = self.output.failed_index()
                if succeeded:
                    values[succeeded] = np.array([indices[i] for i in succeeded], dtype=np.int64)
                outputs = torch.from_numpy(values)
                ok = torch.zeros(len(indices), dtype=torch.bool)
                ok[succeeded] = True
            else:
                outputs = torch.tensor(indices, dtype=torch.long).unsqueeze(1)
                ok = outputs[:, 0] != FAILED
            keep = torch.tensor(keeps, dtype=torch.bool)
            del indices, keeps
        return (outputs.to(device), ok.to(device), *((keep.to(device),) if memo else ()))

    def _run(self, keys: list[Any], arguments: list[list[Any]] | None = None) -> tuple[list[Any], list[bool]]:
        """(output index, may be memoised) lists, one entry per key (a row of class indices); results are
        indexed here, never in workers. ``arguments``: the keys already decoded."""
        arguments = [self.decode(k) for k in keys] if arguments is None else arguments
        self.stats.calls += len(keys)
        if self._runner.executor is None and self.timeout is None:
            return self._run_serial(keys, arguments)
        raw = self._runner.run(arguments, self.timeout)
        self._report_incidents()
        pairs = [self._to_index(key, outcome) for key, outcome in zip(keys, raw, strict=True)]
        return [index for index, _ in pairs], [keep for _, keep in pairs]

    def _run_serial(self, keys: list[Any], arguments: list[list[Any]]) -> tuple[list[Any], list[bool]]:
        """``_run`` in this process without a timeout: the calls in one C-level loop (``starmap``, resumed
        after a call that raises, which is recorded there), the int results indexed with one dict lookup
        each, and only the other values through ``_to_index``."""
        values: list[Any] = []
        failed: dict[int, tuple[Any, bool]] = {}  # position -> (index, keep) of the calls that raised
        calls = itertools.starmap(self.fn, arguments)
        reported = "raised" in self.stats.errors and "raised" in self._streak_errors
        while True:
            try:
                values.extend(calls)
                break
            except (Exception, SystemExit) as error:  # noqa: BLE001 - any program error is a failed sample
                position = len(values)
                values.append(None)
                if reported and not isinstance(error, (SystemExit, *TRANSIENT_ERRORS)):
                    self.stats.failures += 1  # a kind already reported and in the streak: no message to build
                    failed[position] = (FAILED, True)
                    continue
                failed[position] = self._to_index(keys[position], error_outcome(error))
                reported = "raised" in self.stats.errors and "raised" in self._streak_errors
        lookup = self.output.int_lookup() if isinstance(self.output, Discrete) else dict[int, int]().get
        indices = [lookup(value) if type(value) is int else None for value in values]
        kept = [True] * len(values)  # False only for a transient failure or a first timeout
        if None in indices:
            for position in [i for i, found in enumerate(indices) if found is None]:
                outcome = failed.get(position) or self._to_index(keys[position], Outcome(OK, values[position]))
                indices[position], kept[position] = outcome
        return indices, kept

    def _report_incidents(self) -> None:
        runner = self._runner
        self.stats.restarts, runner.restarts = self.stats.restarts + runner.restarts, 0
        for event in runner.events:
            kind = event.split(":")[0]
            if kind not in self._reported:
                self._reported.add(kind)
                warnings.warn(f"{self.name}: {event} (reported once; see program.stats.restarts)",
                              RuntimeWarning, stacklevel=5)
        runner.events.clear()

    def _to_index(self, key: tuple[int, ...], outcome: Outcome) -> tuple[Any, bool]:
        status, value = outcome
        if status == OK:
            if type(value) is int:  # the common case: neither None nor NaN, hashable
                try:
                    return self.output.index(value), True
                except OutputSpaceError as error:
                    return self._fail(key, "outside-output", str(error)), True
            if value is None or is_nan(value):
                return self._fail(key, "returned", f"returned {value!r} (None and NaN are failures)"), True
            try:
                return self.output.index(value), True
            except OutputSpaceError as error:
                return self._fail(key, "outside-output", str(error)), True
            except TypeError as error:
                return self._fail(key, "unhashable", f"returned an unhashable value {value!r} ({error})"), True
        kind, message, keep = self._failure_of(outcome, self.timeout)
        if status == TIMEOUT and self.cache_across_calls:
            key = tuple(key)
            if key in self._timed_out:  # the second timeout: the tuple's own fault, memoised
                self._timed_out.discard(key)
            else:  # the first: maybe load; asked again when sampled again
                self._timed_out.add(key)
                keep = False
        return self._fail(key, kind, message), keep

    def _fail(self, key: tuple[int, ...], kind: str, message: str) -> int:
        where = "" if kind in self.stats.errors else f"{self.name}{tuple(self.decode(key))}"  # warned once per kind
        self._record_failures(1, kind, message, where)
        return FAILED


def _short(values: Any, limit: int = 5) -> str:
    items = list(values)
    return repr(items[:limit])[:-1] + (", ...]" if len(items) > limit else "]")
