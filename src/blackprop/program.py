"""Program: a black-box Python callable over symbols, with a memo cache and a failure policy.

``Program(fn, inputs, output)`` evaluates ``fn`` on symbol tuples given as rows of class indices
(the layout of ``Beliefs``: one column per variable, -1 on padded sequence positions). Each
distinct row is a canonical key; with ``cache=True`` (default) it is evaluated at most once over
the program's life. A call that raises, times out, or returns a value outside a ``Discrete``
output space (or None / NaN) is a *failure*: it yields index -1, contributes nothing to any
estimate, and is counted in ``stats``. The first failure of each kind is reported with a warning
that names the tuple and the reason. Failures are memoised like results, except calls *lost* with
a dead worker process, which are retried when sampled again. Calls run serially or on an
executor (``blackprop.executors``), with the same results and the same memo either way.

Example:
    >>> import torch
    >>> from blackprop.spaces import Discrete
    >>> digit = Discrete(range(10))
    >>> add = Program(lambda a, b: a + b, inputs=(digit, digit), output=Discrete(range(19)))
    >>> add.evaluate(torch.tensor([[1, 2], [3, 4], [1, 2]])).tolist()
    [3, 7, 3]
    >>> add.stats.queries, add.stats.calls, add.stats.hits
    (3, 2, 0)
"""

from __future__ import annotations

import inspect
import itertools
import math
import warnings
from collections.abc import Callable
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass, field
from typing import Any

import torch

from .executors import ExecutorRunner, Outcome, ProgramTimeout
from .spaces import Discrete, Open, OutputSpaceError, Product, Sequence

__all__ = ["FAILED", "Program", "ProgramStats", "ProgramTimeout"]

FAILED = -1


@dataclass
class ProgramStats:
    """Counters over the program's life: ``queries`` tuples asked for, ``calls`` run fn, ``hits``
    distinct tuples of an ``evaluate`` call answered from the memo.

    ``queries`` is the sample budget an estimator spends (k per example for ISED, say); ``calls``
    is what the program really executed after the memo and the per-call deduplication.

    ``failures`` counts failed calls (``timeouts`` of them too slow, ``lost`` of them lost with a
    dead worker and not memoised); ``restarts`` counts process pools replaced after a worker died.
    """

    calls: int = 0
    hits: int = 0
    queries: int = 0
    failures: int = 0
    timeouts: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    lost: int = 0
    restarts: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "queries": self.queries, "calls": self.calls, "hits": self.hits, "failures": self.failures, "timeouts": self.timeouts,
            "lost": self.lost, "restarts": self.restarts,
        }


class Program:
    """A callable ``fn(*symbols)`` with declared input and output spaces.

    Args:
        fn: any Python callable; receives one value per input (a list for Sequence inputs).
        inputs: one space per argument (``Discrete`` or ``Sequence``).
        output: a ``Discrete`` or ``Open`` space for the return value, or a ``Product`` of
            Discrete spaces for tuple values (then ``evaluate`` gives ``[..., m]`` indices).
        cache: memoise results per distinct tuple (default True); "batch": run each distinct
            tuple of one ``evaluate`` call once but keep nothing across calls (for programs
            with inputs too varied to memoise, e.g. 81-cell sudoku boards); False: run every row.
        cache_limit: at most this many memoised tuples (None: no limit); past it the oldest entries
            are dropped first, so memory stays bounded on huge input spaces (sum16 fills about
            0.45 GB per million 16-tuples) and a dropped tuple simply runs again when sampled.
        timeout: seconds per call; a slower call is a failure. None: no limit.
        executor: None or "serial" (default), "process" (a process pool of os.cpu_count()
            workers), an int (a process pool of that size), any concurrent.futures.Executor, or
            a ``distributed.Client`` (dask). ``fn`` must be picklable (a module-level function)
            for process pools. A process pool whose worker dies is replaced and the unfinished
            calls are retried once (see ``blackprop.executors``); results are always indexed and
            memoised here, in the calling process.

    ``close()`` (or ``with Program(...) as program:``) shuts down a pool the program created.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        inputs: SequenceABC[Discrete | Sequence],
        output: Discrete | Open | Product,
        *,
        cache: bool | str = True,
        cache_limit: int | None = None,
        timeout: float | None = None,
        executor: Any = None,
        name: str | None = None,
    ):
        if not callable(fn):
            raise TypeError(f"Program(fn, ...): fn must be callable, got {type(fn).__name__}")
        if isinstance(inputs, (Discrete, Sequence)):
            inputs = (inputs,)
        inputs = tuple(inputs)
        if not inputs or not all(isinstance(s, (Discrete, Sequence)) for s in inputs):
            raise TypeError(
                f"Program(inputs=...): give a tuple of Discrete or Sequence spaces, one per argument; got {inputs!r}"
            )
        if not isinstance(output, (Discrete, Open, Product)):
            raise TypeError(f"Program(output=...): give a Discrete, Open or Product space, got {output!r}")
        if cache not in (True, False, "batch"):
            raise ValueError(f"Program(cache=...): give True, False or 'batch', got {cache!r}")
        if cache_limit is not None and (isinstance(cache_limit, bool) or not isinstance(cache_limit, int)
                                        or cache_limit < 1):
            raise ValueError(f"Program(cache_limit=...): give an int >= 1 or None, got {cache_limit!r}")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf
        ):
            raise ValueError(f"Program(timeout=...): give a finite number of seconds > 0 or None, got {timeout!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"Program(name=...): give a string or None, got {name!r}")
        _check_arity(fn, len(inputs))
        self.fn = fn
        self.inputs = inputs
        self.output = output
        self.cache_enabled = bool(cache)
        self.cache_across_calls = cache is True  # "batch": dedup within a call only
        self.cache_limit = cache_limit
        self.timeout = None if timeout is None else float(timeout)
        self.name = name or getattr(fn, "__name__", "program")
        self._runner = ExecutorRunner(executor, fn)
        self.stats = ProgramStats()
        self._memo: dict[tuple[int, ...], int] = {}
        self._layout: list[tuple[int, int, Discrete | Sequence]] = []
        start = 0
        for space in inputs:
            width = space.max_len if isinstance(space, Sequence) else 1
            self._layout.append((start, start + width, space))
            start += width
        self.num_variables = start
        sizes = [(s.element.size if isinstance(s, Sequence) else s.size) for _, _, s in self._layout for _ in range(_width(s))]
        self._radix = [n + 1 for n in sizes]  # +1 for the padding value -1
        self._fits_int64 = math.prod(self._radix) < 2**62
        self._lowest = torch.tensor([-1 if isinstance(s, Sequence) else 0 for _, _, s in self._layout for _ in range(_width(s))])
        self._limits = torch.tensor(sizes)
        self._reported: set[str] = set()
        # decode's fast path: every input a Discrete, so column j is looked up in table j
        self._tables: list[tuple[Any, ...]] | None = [s.values for s in inputs if isinstance(s, Discrete)]
        if len(self._tables) < len(inputs):
            self._tables = None

    @property
    def executor(self) -> Any:
        """The live ``concurrent.futures.Executor`` (None when serial); a broken pool is replaced."""
        return self._runner.executor

    def use_executor(self, executor: Any) -> Program:
        """Run calls on another executor from now on (same forms as ``executor=``); the memo is kept."""
        if isinstance(executor, str):  # shim: the core branch's spec strings ("process:4")
            from .executors import executor_from_spec

            executor = executor_from_spec(executor)
        runner = ExecutorRunner(executor, self.fn)
        self._runner.close()
        self._runner = runner
        return self

    def close(self) -> None:
        """Shut down a process pool this program created (a no-op for serial and borrowed executors)."""
        self._runner.close()

    def __enter__(self) -> Program:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Program({self.name}, inputs={self.inputs!r}, output={self.output!r})"

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)

    # --- decoding -------------------------------------------------------------------------
    def decode(self, row: SequenceABC[int]) -> list[Any]:
        """Turn a row of class indices into the program's arguments."""
        if self._tables is not None:
            return [table[i] for table, i in zip(self._tables, row)]  # noqa: B905 (widths checked in evaluate)
        args: list[Any] = []
        for start, stop, space in self._layout:
            if isinstance(space, Sequence):
                args.append([space.element.values[i] for i in row[start:stop] if i >= 0])
            else:
                args.append(space.values[row[start]])
        return args

    def cache_size(self) -> int:
        return len(self._memo)

    def state_dict(self) -> dict[str, Any]:
        """shim (core branch): memo, open-space values and stats, for checkpoints."""
        import dataclasses

        return {"memo": dict(self._memo), "values": list(getattr(self.output, "values", ())),
                "stats": dataclasses.asdict(self.stats)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """shim (core branch): the inverse of ``state_dict``."""
        if getattr(self.output, "is_open", False):
            for value in state["values"]:
                self.output.index(value)
        self._memo.update(state["memo"])
        for key, value in state["stats"].items():
            setattr(self.stats, key, value)

    def clear_cache(self) -> None:
        self._memo.clear()

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
            if self.cache_across_calls:
                results = self._lookup_or_run(keys)
            else:  # cache="batch": each distinct row of this call once, nothing kept
                results = [index for index, _ in self._run(keys)]
            out = torch.tensor(self._rows(results), dtype=torch.long, device=tuples.device)[inverse.to(tuples.device)]
        else:
            keys = [tuple(r) for r in cpu.tolist()]
            out = torch.tensor(self._rows([index for index, _ in self._run(keys)]), dtype=torch.long, device=tuples.device)
        return out.reshape(*lead, *components)

    def _check_tuples(self, tuples: torch.Tensor) -> None:
        """One column per variable, integer class indices."""
        if tuples.shape[-1] != self.num_variables:
            raise ValueError(
                f"{self.name}: tuples have {tuples.shape[-1]} columns but the program has "
                f"{self.num_variables} variables"
            )
        if tuples.dtype.is_floating_point or tuples.dtype.is_complex or tuples.dtype == torch.bool:
            raise TypeError(f"{self.name}: tuples must hold integer class indices, got dtype {tuples.dtype}")

    def _rows(self, results: list[Any]) -> list[Any]:
        """Product outputs: a failed call (FAILED) becomes a row of -1, one per component."""
        if isinstance(self.output, Product):
            failed = self.output.failed_index()
            return [failed if r == FAILED else r for r in results]
        return results

    def _check_range(self, rows: torch.Tensor) -> None:
        """Every column within its space: 0..size-1, and -1 (padding) only on Sequence positions."""
        bad = (rows < self._lowest) | (rows >= self._limits)
        if bool(bad.any()):
            row, column = (int(i) for i in bad.nonzero()[0])
            raise ValueError(
                f"{self.name}: tuple {rows[row].tolist()} has index {int(rows[row, column])} in column {column}, "
                f"outside 0..{int(self._limits[column]) - 1}"
                + (" (or -1 for padding)" if int(self._lowest[column]) < 0 else "")
                + "; tuples are rows of class indices, one column per variable"
            )

    def _unique_rows(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cpu = flat.cpu()
        if self._fits_int64:
            multipliers = torch.tensor(_place_values(self._radix), dtype=torch.long)
            keys = (cpu + 1) @ multipliers
            unique_keys, inverse = torch.unique(keys, return_inverse=True)
            first = torch.empty_like(unique_keys)
            first[inverse] = torch.arange(keys.shape[0])
            return cpu[first], inverse
        rows, inverse = torch.unique(cpu, dim=0, return_inverse=True)
        return rows, inverse

    def _lookup_or_run(self, keys: list[tuple[int, ...]]) -> list[int]:
        memo = self._memo
        missing = [k for k in keys if k not in memo]
        self.stats.hits += len(keys) - len(missing)
        if not missing:
            return [memo[k] for k in keys]
        fresh: dict[tuple[int, ...], int] = {}
        for key, (result, keep) in zip(missing, self._run(missing), strict=True):
            fresh[key] = result
            if keep:  # a call lost with a dead worker is not memoised: retried when sampled again
                memo[key] = result
        answers = [memo[k] if k in memo else fresh[k] for k in keys]
        if self.cache_limit is not None and len(memo) > self.cache_limit:
            self._evict(len(memo) - self.cache_limit)
        return answers

    def _evict(self, count: int) -> None:
        """Drop the ``count`` oldest memo entries (dicts keep insertion order)."""
        memo = self._memo
        for key in list(itertools.islice(iter(memo), count)):
            del memo[key]

    def _run(self, keys: list[tuple[int, ...]]) -> list[tuple[int, bool]]:
        """(output index, may be memoised) per key; results are indexed here, never in workers."""
        arguments = [self.decode(k) for k in keys]
        raw = self._runner.run(arguments, self.timeout)
        self.stats.calls += len(keys)
        self._report_incidents()
        return [(self._to_index(key, outcome), outcome[0] != "lost") for key, outcome in zip(keys, raw, strict=True)]

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

    def _to_index(self, key: tuple[int, ...], outcome: Outcome) -> int:
        status, value = outcome
        if status == "ok":
            if value is None or _is_nan(value):
                return self._fail(key, "returned", f"returned {value!r} (None and NaN are failures)")
            try:
                return self.output.index(value)  # type: ignore[return-value]  # a tuple for Product outputs
            except OutputSpaceError as error:
                return self._fail(key, "outside-output", str(error))
            except TypeError as error:
                return self._fail(key, "unhashable", f"returned an unhashable value {value!r} ({error})")
        if status == "timeout":
            self.stats.timeouts += 1
            return self._fail(key, "timeout", f"took longer than timeout={self.timeout}s")
        if status == "lost":
            self.stats.lost += 1
            return self._fail(key, "lost", f"{value}; not memoised, retried when sampled again")
        return self._fail(key, "raised", value)

    def _fail(self, key: tuple[int, ...], kind: str, message: str) -> int:
        self.stats.failures += 1
        if kind not in self.stats.errors:
            self.stats.errors[kind] = message
            warnings.warn(
                f"{self.name}{tuple(self.decode(key))}: {message}. Such tuples count as failed samples "
                "and contribute nothing (reported once per kind; see program.stats)",
                RuntimeWarning,
                stacklevel=4,
            )
        return FAILED


def _width(space: Discrete | Sequence) -> int:
    return space.max_len if isinstance(space, Sequence) else 1


def _place_values(radix: list[int]) -> list[int]:
    values, place = [], 1
    for r in reversed(radix):
        values.append(place)
        place *= r
    return list(reversed(values))


def _is_nan(value: Any) -> bool:
    """NaN of any float flavour: Python, numpy, or a one-element tensor."""
    if isinstance(value, (int, str, bytes, tuple, list, dict, set, frozenset)):  # the common case first
        return False
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and value.is_floating_point() and bool(torch.isnan(value).all())
    try:
        return math.isnan(value)
    except (TypeError, ValueError, OverflowError):
        return False


def _check_arity(fn: Callable[..., Any], count: int) -> None:
    """Refuse at construction a fn that cannot take one positional argument per input."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: nothing to check
        return
    try:
        signature.bind(*([None] * count))
    except TypeError as error:
        name = getattr(fn, "__name__", repr(fn))
        raise TypeError(
            f"Program(fn, inputs=...): {name}{signature} cannot be called with {count} positional "
            f"argument(s), one per input space ({error}); make fn take one argument per input"
        ) from None
