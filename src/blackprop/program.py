"""Program: a black-box Python callable over symbols, with a memo cache and a failure policy.

``Program(fn, inputs, output)`` evaluates ``fn`` on symbol tuples given as rows of class indices
(the layout of ``Beliefs``: one column per variable, -1 on padded sequence positions). Each
distinct row is a canonical key; with ``cache=True`` (default) it is evaluated at most once over
the program's life. A call that raises, times out, or returns a value outside a ``Discrete``
output space (or None / NaN) is a *failure*: it yields index -1, contributes nothing to any
estimate, and is counted in ``stats``. The first failure of each kind is reported with a warning
that names the tuple and the reason.

Example:
    >>> import torch
    >>> from blackprop.spaces import Discrete
    >>> digit = Discrete(range(10))
    >>> add = Program(lambda a, b: a + b, inputs=(digit, digit), output=Discrete(range(19)))
    >>> add.evaluate(torch.tensor([[1, 2], [3, 4], [1, 2]])).tolist()
    [3, 7, 3]
    >>> add.stats.calls, add.stats.hits
    (2, 0)
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import pickle
import signal
import threading
import warnings
from collections.abc import Callable
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass, field
from typing import Any

import torch

from .spaces import Discrete, Open, OutputSpaceError, Product, Sequence

__all__ = ["FAILED", "Program", "ProgramStats"]

FAILED = -1


@dataclass
class ProgramStats:
    """Counters over the program's life: ``calls`` run fn, ``hits`` answered from the memo."""

    calls: int = 0
    hits: int = 0
    failures: int = 0
    timeouts: int = 0
    errors: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        return {"calls": self.calls, "hits": self.hits, "failures": self.failures, "timeouts": self.timeouts}


class ProgramTimeout(Exception):
    pass


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
        timeout: seconds per call; a slower call is a failure. None: no limit.
        executor: None or "serial" (default), "process" (a process pool of os.cpu_count()
            workers), an int (a process pool of that size), or any concurrent.futures.Executor.
            ``fn`` must be picklable (a module-level function) for process pools.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        inputs: SequenceABC[Discrete | Sequence],
        output: Discrete | Open | Product,
        *,
        cache: bool | str = True,
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
        if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(f"Program(timeout=...): give seconds > 0 or None, got {timeout!r}")
        self.fn = fn
        self.inputs = inputs
        self.output = output
        self.cache_enabled = bool(cache)
        self.cache_across_calls = cache is True  # "batch": dedup within a call only
        self.timeout = None if timeout is None else float(timeout)
        self.name = name or getattr(fn, "__name__", "program")
        self.executor = _make_executor(executor, fn)
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

    def __repr__(self) -> str:
        return f"Program({self.name}, inputs={self.inputs!r}, output={self.output!r})"

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)

    # --- decoding -------------------------------------------------------------------------
    def decode(self, row: SequenceABC[int]) -> list[Any]:
        """Turn a row of class indices into the program's arguments."""
        args: list[Any] = []
        for start, stop, space in self._layout:
            if isinstance(space, Sequence):
                args.append([space.element.values[i] for i in row[start:stop] if i >= 0])
            else:
                args.append(space.values[row[start]])
        return args

    def cache_size(self) -> int:
        return len(self._memo)

    def clear_cache(self) -> None:
        self._memo.clear()

    # --- evaluation -----------------------------------------------------------------------
    def evaluate(self, tuples: torch.Tensor) -> torch.Tensor:
        """Output index of each tuple (``[..., V]`` -> ``[...]``), -1 where the program failed."""
        if tuples.shape[-1] != self.num_variables:
            raise ValueError(
                f"{self.name}: tuples have {tuples.shape[-1]} columns but the program has "
                f"{self.num_variables} variables"
            )
        lead = tuples.shape[:-1]
        components = (self.output.num_components,) if isinstance(self.output, Product) else ()
        flat = tuples.reshape(-1, self.num_variables)
        if flat.shape[0] == 0:
            return torch.empty((*lead, *components), dtype=torch.long, device=tuples.device)
        if self.cache_enabled:
            rows, inverse = self._unique_rows(flat)
            keys = [tuple(r) for r in rows.tolist()]
            results = self._lookup_or_run(keys) if self.cache_across_calls else self._run(keys)
            out = torch.tensor(self._rows(results), dtype=torch.long, device=tuples.device)[inverse.to(tuples.device)]
        else:
            out = torch.tensor(self._rows(self._run([tuple(r) for r in flat.tolist()])), dtype=torch.long, device=tuples.device)
        return out.reshape(*lead, *components)

    def _rows(self, results: list[Any]) -> list[Any]:
        """Product outputs: a failed call (FAILED) becomes a row of -1, one per component."""
        if isinstance(self.output, Product):
            failed = self.output.failed_index()
            return [failed if r == FAILED else r for r in results]
        return results

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
        if missing:
            for key, result in zip(missing, self._run(missing), strict=True):
                memo[key] = result
        return [memo[k] for k in keys]

    def _run(self, keys: list[tuple[int, ...]]) -> list[int]:
        arguments = [self.decode(k) for k in keys]
        if self.executor is None:
            raw = [_guarded_call(self.fn, args, self.timeout) for args in arguments]
        else:
            raw = _run_in_executor(self.executor, self.fn, arguments, self.timeout)
        self.stats.calls += len(keys)
        return [self._to_index(key, outcome) for key, outcome in zip(keys, raw, strict=True)]

    def _to_index(self, key: tuple[int, ...], outcome: tuple[str, Any]) -> int:
        status, value = outcome
        if status == "ok":
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return self._fail(key, "returned", f"{value!r} (None and NaN are failures)")
            try:
                return self.output.index(value)  # type: ignore[return-value]  # a tuple for Product outputs
            except OutputSpaceError as error:
                return self._fail(key, "outside-output", str(error))
            except TypeError as error:
                return self._fail(key, "unhashable", f"returned an unhashable value {value!r} ({error})")
        if status == "timeout":
            self.stats.timeouts += 1
            return self._fail(key, "timeout", f"took longer than timeout={self.timeout}s")
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


def _guarded_call(fn: Callable[..., Any], args: list[Any], timeout: float | None) -> tuple[str, Any]:
    """Run fn(*args) -> ("ok", value) | ("error", message) | ("timeout", None)."""
    if timeout is None:
        try:
            return "ok", fn(*args)
        except Exception as error:  # noqa: BLE001 - any program error is a failed sample
            return "error", f"raised {type(error).__name__}: {error}"
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        return _call_with_alarm(fn, args, timeout)
    return _call_in_thread(fn, args, timeout)


def _call_with_alarm(fn: Callable[..., Any], args: list[Any], timeout: float) -> tuple[str, Any]:
    def on_alarm(signum: int, frame: Any) -> None:
        raise ProgramTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return "ok", fn(*args)
    except ProgramTimeout:
        return "timeout", None
    except Exception as error:  # noqa: BLE001
        return "error", f"raised {type(error).__name__}: {error}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _call_in_thread(fn: Callable[..., Any], args: list[Any], timeout: float) -> tuple[str, Any]:
    """Off the main thread no signal can interrupt fn: run it in a daemon thread and stop waiting."""
    box: list[tuple[str, Any]] = []

    def target() -> None:
        box.append(_guarded_call(fn, args, None))

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout)
    return box[0] if box else ("timeout", None)


def _run_chunk(fn: Callable[..., Any], chunk: list[list[Any]], timeout: float | None) -> list[tuple[str, Any]]:
    return [_guarded_call(fn, args, timeout) for args in chunk]


def _run_in_executor(
    executor: concurrent.futures.Executor, fn: Callable[..., Any], arguments: list[list[Any]], timeout: float | None
) -> list[tuple[str, Any]]:
    workers = getattr(executor, "_max_workers", None) or os.cpu_count() or 1
    size = max(1, math.ceil(len(arguments) / (4 * workers)))
    chunks = [arguments[i : i + size] for i in range(0, len(arguments), size)]
    futures = [executor.submit(_run_chunk, fn, chunk, timeout) for chunk in chunks]
    results: list[tuple[str, Any]] = []
    for future, chunk in zip(futures, chunks, strict=True):
        try:
            results.extend(future.result())
        except Exception as error:  # noqa: BLE001 - a dead worker fails its chunk, not the run
            results.extend([("error", f"worker failed: {type(error).__name__}: {error}")] * len(chunk))
    return results


def _make_executor(executor: Any, fn: Callable[..., Any]) -> concurrent.futures.Executor | None:
    if executor is None or executor == "serial":
        return None
    if isinstance(executor, concurrent.futures.Executor):
        if isinstance(executor, concurrent.futures.ProcessPoolExecutor):
            _check_picklable(fn)
        return executor
    if executor in ("process", "processes") or (isinstance(executor, int) and not isinstance(executor, bool)):
        workers = os.cpu_count() if isinstance(executor, str) else executor
        if not workers or workers < 1:
            raise ValueError(f"Program(executor=...): a process pool needs >= 1 worker, got {executor!r}")
        _check_picklable(fn)
        return concurrent.futures.ProcessPoolExecutor(max_workers=workers)
    raise ValueError(
        f"Program(executor=...): expected None, 'serial', 'process', a worker count, or a "
        f"concurrent.futures.Executor; got {executor!r}"
    )


def _check_picklable(fn: Callable[..., Any]) -> None:
    try:
        pickle.dumps(fn)
    except Exception as error:  # noqa: BLE001
        raise TypeError(
            f"Program(executor=process): fn {fn!r} cannot be sent to worker processes ({error}); "
            "define it as a module-level function (lambdas and closures cannot be pickled)"
        ) from None
