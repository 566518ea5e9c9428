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
    >>> sorted(add.state_dict()["memo"].items())
    [((1, 2), 3), ((3, 4), 7)]
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from collections.abc import Sequence as SequenceABC
from typing import Any, final

import torch

from ..spaces import Discrete, Open, OutputSpaceError, Product, Sequence
from .base import FAILED, BaseProgram, is_nan
from .calls import OK, TIMEOUT, Outcome
from .executors import ExecutorRunner

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
            are dropped first and a dropped tuple simply runs again when sampled.
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
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf
        ):
            raise ValueError(f"Program(timeout=...): give a finite number of seconds > 0 or None, got {timeout!r}")
        self.cache_enabled = bool(cache)
        self.cache_across_calls = cache is True  # "batch": dedup within a call only
        self.cache_limit = cache_limit
        self.timeout = None if timeout is None else float(timeout)
        self._runner = ExecutorRunner(executor, fn)
        self._memo: dict[tuple[int, ...], Any] = {}
        self._timed_out: set[tuple[int, ...]] = set()  # tuples that timed out once (not memoised yet)
        radix = [n + 1 for n in self._sizes]  # +1 for the padding value -1
        self._place = torch.tensor(_place_values(radix), dtype=torch.long) if math.prod(radix) < 2**62 else None
        self._reported: set[str] = set()
        # decode's fast path: every input a Discrete, so column j is looked up in table j
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
    def cache_size(self) -> int:
        return len(self._memo)

    def clear_cache(self) -> None:
        self._memo.clear()
        self._timed_out.clear()

    def state_dict(self) -> dict[str, Any]:
        """``{"memo": {tuple: output index}, "values": output values, "stats": {...}}``: plain data
        for ``torch.save``. Transient failures are never in the memo, so never in the state."""
        return {"memo": dict(self._memo), "values": list(self.output.values), **super().state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore counters and memo; refuses a memo of another program (columns, output values)."""
        super().load_state_dict(state)
        memo, values = state.get("memo", {}), state.get("values", [])
        if not isinstance(memo, dict) or any(not isinstance(k, tuple) or len(k) != self.num_variables for k in memo):
            raise ValueError(f"{self.name}.load_state_dict(state): the memo's keys must be tuples of "
                             f"{self.num_variables} class indices; this state belongs to another program")
        if isinstance(self.output, Open):
            for position, value in enumerate(values):
                if self.output.index(value) != position:
                    raise ValueError(f"{self.name}.load_state_dict(state): output value {value!r} already has "
                                     f"another index here; load the state into a fresh program")
        elif list(values) != list(self.output.values):
            raise ValueError(f"{self.name}.load_state_dict(state): saved with output values {_short(values)}, but "
                             f"this program's are {_short(self.output.values)}")
        self._memo.update(memo)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_runner"] = None  # executors do not travel; the copy runs serially
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._runner = ExecutorRunner(None, self.fn)

    def decode(self, row: SequenceABC[int]) -> list[Any]:
        if self._tables is not None:
            return [table[i] for table, i in zip(self._tables, row)]  # noqa: B905 (widths checked in evaluate)
        return super().decode(row)

    # --- evaluation -----------------------------------------------------------------------
    def evaluate(self, tuples: torch.Tensor) -> torch.Tensor:
        """Output index of each tuple (``[..., V]`` -> ``[...]``), -1 where the program failed."""
        self._check_tuples(tuples)
        lead = tuples.shape[:-1]
        components = (self.output.num_components,) if isinstance(self.output, Product) else ()
        flat = tuples.reshape(-1, self.num_variables)
        self.stats.queries += flat.shape[0]
        if flat.shape[0] == 0:
            return torch.empty((*lead, *components), dtype=torch.long, device=tuples.device)
        cpu = flat.long().cpu()
        self._check_range(cpu)
        if self.cache_enabled:
            rows, inverse = self._unique_rows(cpu)
            keys = [tuple(r) for r in rows.tolist()]
            results = self._lookup_or_run(keys) if self.cache_across_calls else [i for i, _ in self._run(keys)]
            counts = torch.bincount(inverse, minlength=len(keys)).tolist()
            succeeded = sum(c for r, c in zip(results, counts, strict=True) if r != FAILED)
            out = torch.tensor(self._rows(results), dtype=torch.long, device=tuples.device)[inverse.to(tuples.device)]
        else:
            results = [index for index, _ in self._run([tuple(r) for r in cpu.tolist()])]
            succeeded = sum(r != FAILED for r in results)
            out = torch.tensor(self._rows(results), dtype=torch.long, device=tuples.device)
        self._end_batch(flat.shape[0], succeeded)
        return out.reshape(*lead, *components)

    def _rows(self, results: list[Any]) -> list[Any]:
        """Product outputs: a failed call (FAILED) becomes a row of -1, one per component."""
        if isinstance(self.output, Product):
            failed = self.output.failed_index()
            return [failed if r == FAILED else r for r in results]
        return results

    def _unique_rows(self, cpu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._place is not None:
            keys = (cpu + 1) @ self._place
            unique_keys, inverse = torch.unique(keys, return_inverse=True)
            first = torch.empty_like(unique_keys)
            first[inverse] = torch.arange(keys.shape[0])
            return cpu[first], inverse
        rows, inverse = torch.unique(cpu, dim=0, return_inverse=True)
        return rows, inverse

    def _lookup_or_run(self, keys: list[tuple[int, ...]]) -> list[Any]:
        memo = self._memo
        missing = [k for k in keys if k not in memo]
        self.stats.hits += len(keys) - len(missing)
        if not missing:
            return [memo[k] for k in keys]
        fresh: dict[tuple[int, ...], Any] = {}
        for key, (result, keep) in zip(missing, self._run(missing), strict=True):
            fresh[key] = result
            if keep:
                memo[key] = result
        answers = [memo[k] if k in memo else fresh[k] for k in keys]
        if self.cache_limit is not None and len(memo) > self.cache_limit:
            for key in list(itertools.islice(iter(memo), len(memo) - self.cache_limit)):
                del memo[key]  # the oldest first (dicts keep insertion order)
        return answers

    def _run(self, keys: list[tuple[int, ...]]) -> list[tuple[Any, bool]]:
        """(output index, may be memoised) per key; results are indexed here, never in workers."""
        raw = self._runner.run([self.decode(k) for k in keys], self.timeout)
        self.stats.calls += len(keys)
        self._report_incidents()
        return [self._to_index(key, outcome) for key, outcome in zip(keys, raw, strict=True)]

    def _report_incidents(self) -> None:
        runner = self._runner
        self.stats.restarts += runner.restarts
        runner.restarts = 0
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
            if key in self._timed_out:  # the second timeout: the tuple's own fault, memoised
                self._timed_out.discard(key)
            else:  # the first: maybe load; asked again when sampled again
                self._timed_out.add(key)
                keep = False
        return self._fail(key, kind, message), keep

    def _fail(self, key: tuple[int, ...], kind: str, message: str) -> int:
        self._record_failures(1, kind, message, f"{self.name}{tuple(self.decode(key))}")
        return FAILED


def _place_values(radix: list[int]) -> list[int]:
    values, place = [], 1
    for r in reversed(radix):
        values.append(place)
        place *= r
    return list(reversed(values))


def _short(values: Any, limit: int = 5) -> str:
    items = list(values)
    return repr(items[:limit])[:-1] + (", ...]" if len(items) > limit else "]")
