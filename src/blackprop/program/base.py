"""BaseProgram: what every program shares (spaces, layout, range checks, stats, failure policy, state).

A program maps rows of class indices (the layout of ``Beliefs``: one column per variable, -1 on
padded Sequence positions) to output indices. Two final kinds exist: ``Program`` (one Python call
per distinct tuple, with a memo and an executor) and ``BatchedProgram`` (one call per batch over
tensors, neither memo nor executor). Both follow one failure policy, defined here:

* a *failed sample* has output index ``FAILED`` (-1) and contributes nothing to any estimate; it is
  counted in ``stats.failures`` and the first failure of each kind is reported with a warning;
* *deterministic* failures (the program raised, returned None/NaN or a value outside a Discrete
  output) belong to the tuple; *transient* ones (``TRANSIENT_ERRORS``: ``TransientProgramError``,
  ``ConnectionError``, ``TimeoutError``) are counted in ``stats.transient`` and never memoised;
* ``max_failed_batches`` consecutive ``evaluate`` calls without one successful sample raise
  ``ProgramFailedError`` naming the failures seen (a program broken for good, an endpoint down),
  instead of training on a loss without gradient.

``state_dict()`` / ``load_state_dict(state)`` save and restore the counters (and ``Program``'s memo),
the way ``torch.nn.Module`` does for weights.

Example:
    >>> import torch
    >>> from blackprop.program import Program
    >>> from blackprop.spaces import Discrete
    >>> digit = Discrete(range(10))
    >>> never = Program(lambda a: 1 / 0, (digit,), digit, max_failed_batches=2)
    >>> import warnings
    >>> with warnings.catch_warnings():  # the first failure of each kind is reported with a warning
    ...     warnings.simplefilter("ignore")
    ...     first = never.evaluate(torch.tensor([[1], [2]]))
    >>> first.tolist()
    [-1, -1]
    >>> never.evaluate(torch.tensor([[3]]))
    Traceback (most recent call last):
    ...
    blackprop.program.base.ProgramFailedError: <lambda>: every sample of the last 2 evaluate calls failed (3 tuples); failures seen: raised ZeroDivisionError: division by zero. Call the program by hand on a few inputs (program(*values)) to find the fault, or pass max_failed_batches=None to go on regardless
"""

from __future__ import annotations

import inspect
import math
import pickle
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from collections.abc import Sequence as SequenceABC
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any, final

import torch

from ..spaces import Discrete, Open, Product, Sequence
from .calls import ERROR, LOST, OK, TIMEOUT, TRANSIENT, Outcome
from .rows import RowDecoder

__all__ = ["FAILED", "BaseProgram", "ProgramFailedError", "ProgramStats"]

FAILED = -1


@final
class ProgramFailedError(RuntimeError):
    """``max_failed_batches`` consecutive ``evaluate`` calls gave no successful sample."""


@final
@dataclass
class ProgramStats:
    """Counters over the program's life: ``queries`` tuples asked for, ``calls`` run fn, ``hits``
    distinct tuples of an ``evaluate`` call answered from the memo.

    ``queries`` is the sample budget an estimator spends (k per example for ISED, say); ``calls``
    is what the program really executed after the memo and the per-call deduplication.

    ``failures`` counts failed calls (a memo hit on a failed tuple is not counted again); of them ``timeouts`` were too slow, ``transient`` raised a
    transient error and ``lost`` were lost with a dead worker (the last two never memoised);
    ``restarts`` counts process pools replaced after a worker died; ``errors`` holds the first
    message of each failure kind.
    """

    calls: int = 0
    hits: int = 0
    queries: int = 0
    failures: int = 0
    timeouts: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    lost: int = 0
    restarts: int = 0
    transient: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "queries": self.queries, "calls": self.calls, "hits": self.hits, "failures": self.failures,
            "timeouts": self.timeouts, "lost": self.lost, "restarts": self.restarts, "transient": self.transient,
        }


class BaseProgram(ABC):
    """The shared part of ``Program`` and ``BatchedProgram``; see the module docstring.

    Args:
        fn: any Python callable taking one argument per input.
        inputs: one space per argument (``Discrete`` or ``Sequence``).
        output: a ``Discrete``, ``Open`` or ``Product`` space.
        name: shown in messages (default: fn's name).
        max_failed_batches: raise ``ProgramFailedError`` after this many consecutive ``evaluate``
            calls in which every sample failed (default 5; None: never).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        inputs: SequenceABC[Discrete | Sequence] | Discrete | Sequence,
        output: Discrete | Open | Product,
        *,
        name: str | None = None,
        max_failed_batches: int | None = 5,
    ):
        kind = type(self).__name__
        if not callable(fn):
            raise TypeError(f"{kind}(fn, ...): fn must be callable, got {type(fn).__name__}")
        spaces = (inputs,) if isinstance(inputs, (Discrete, Sequence)) else tuple(inputs)
        if not spaces or not all(isinstance(s, (Discrete, Sequence)) for s in spaces):
            raise TypeError(
                f"{kind}(inputs=...): give a tuple of Discrete or Sequence spaces, one per argument; got {inputs!r}"
            )
        if not isinstance(output, (Discrete, Open, Product)):
            raise TypeError(f"{kind}(output=...): give a Discrete, Open or Product space, got {output!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{kind}(name=...): give a string or None, got {name!r}")
        if max_failed_batches is not None and (
            isinstance(max_failed_batches, bool) or not isinstance(max_failed_batches, int) or max_failed_batches < 1
        ):
            raise ValueError(f"{kind}(max_failed_batches=...): give an int >= 1 or None (never stop), "
                             f"got {max_failed_batches!r}")
        _check_arity(kind, fn, len(spaces))
        self.fn = fn
        self.inputs: tuple[Discrete | Sequence, ...] = spaces
        self.output = output
        self.name: str = name or str(getattr(fn, "__name__", "program"))
        self.max_failed_batches = max_failed_batches
        self.stats = ProgramStats()
        self._layout: list[tuple[int, int, Discrete | Sequence]] = []
        start = 0
        for space in spaces:
            self._layout.append((start, start + _width(space), space))
            start += _width(space)
        self.num_variables = start
        columns = [s for s in spaces for _ in range(_width(s))]
        self._sizes = [(s.element.size if isinstance(s, Sequence) else s.size) for s in columns]
        self._lowest = torch.tensor([-1 if isinstance(s, Sequence) else 0 for s in columns])
        self._limits = torch.tensor(self._sizes)
        self._row_decoder: RowDecoder | None = None  # built on first use
        self._failed_streak = 0
        self._streak_queries = 0
        self._streak_errors: dict[str, str] = {}

    # --- the one abstract operation ---------------------------------------------------------
    @abstractmethod
    def evaluate(self, tuples: torch.Tensor) -> torch.Tensor:
        """Output index of each tuple (``[..., V]`` -> ``[...]``, ``[..., m]`` for Product outputs), -1 where it failed."""

    @abstractmethod
    def use_executor(self, executor: Any) -> BaseProgram:
        """Run calls on ``executor`` (a spec string such as ``"process:4"``, or an executor object)."""

    # --- plumbing ---------------------------------------------------------------------------
    def close(self) -> None:  # noqa: B027 - a default no-op, not an abstract method
        """Release what the program started (a no-op unless it runs calls on a pool it created)."""

    def __enter__(self) -> BaseProgram:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, inputs={self.inputs!r}, output={self.output!r})"

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)

    def decode(self, row: SequenceABC[int]) -> list[Any]:
        """Turn a row of class indices into the program's arguments (a list per Sequence input)."""
        args: list[Any] = []
        for start, stop, space in self._layout:
            if isinstance(space, Sequence):
                args.append([space.element.values[i] for i in row[start:stop] if i >= 0])
            else:
                args.append(space.values[row[start]])
        return args

    def decode_rows(self, rows: torch.Tensor) -> list[list[Any]]:
        """``[self.decode(r) for r in rows.tolist()]``, column by column (``RowDecoder``)."""
        if self._row_decoder is None:
            self._row_decoder = RowDecoder(self.inputs)
        return self._row_decoder(rows)

    # --- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The counters as plain data (``{"stats": {...}}``), for ``torch.save``; ``Program`` adds its memo."""
        return {"stats": asdict(self.stats)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict()`` returned; refuses state of another shape, naming the keys."""
        if not isinstance(state, dict) or not isinstance(state.get("stats"), dict):
            raise ValueError(f"{self.name}.load_state_dict(state): expected the dict program.state_dict() returns "
                             f"(with a 'stats' dict), got {_short(state)}")
        known = {f.name for f in fields(ProgramStats)}
        unknown = set(state["stats"]) - known
        if unknown:
            raise ValueError(f"{self.name}.load_state_dict(state): unknown stats {sorted(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        for key, value in state["stats"].items():
            setattr(self.stats, key, dict(value) if key == "errors" else value)

    def __getstate__(self) -> dict[str, Any]:
        """Pickling (``torch.save(layer)``) needs a picklable fn; else an error says what to save instead."""
        try:
            pickle.dumps(self.fn)
        except Exception as error:  # noqa: BLE001 - any pickling failure of fn
            raise TypeError(
                f"{type(self).__name__} {self.name!r} cannot be pickled: its fn {self.fn!r} cannot be "
                f"({type(error).__name__}: {error}). torch.save(layer) pickles the program; save "
                "layer.state_dict() (weights) and program.state_dict() (memo and counters) instead, or define "
                "fn as a module-level function"
            ) from None
        return dict(self.__dict__)

    # --- input checks -----------------------------------------------------------------------
    def _check_tuples(self, tuples: torch.Tensor) -> None:
        """One column per variable, integer class indices."""
        if not isinstance(tuples, torch.Tensor):
            raise TypeError(f"{self.name}.evaluate(tuples): give a LongTensor of class indices [..., "
                            f"{self.num_variables}], got {type(tuples).__name__}")
        if tuples.shape[-1:] != (self.num_variables,):
            raise ValueError(
                f"{self.name}: tuples have {tuples.shape[-1] if tuples.dim() else 0} columns but the program has "
                f"{self.num_variables} variables"
            )
        if tuples.dtype.is_floating_point or tuples.dtype.is_complex or tuples.dtype == torch.bool:
            raise TypeError(f"{self.name}: tuples must hold integer class indices, got dtype {tuples.dtype}")

    def _check_range(self, rows: torch.Tensor) -> None:
        """Every column within its space: 0..size-1, and -1 (padding) only on Sequence positions.

        ``rows`` ``[..., V]``. One pass over all entries against the tightest bounds (the highest lowest
        index, the smallest class count); per column only when that pass finds an entry beyond them.
        """
        if not rows.numel():
            return
        low, high = torch.aminmax(rows)
        floor, ceiling = self._range_bounds()
        if not bool((low < floor) | (high >= ceiling)):
            return
        rows = rows.reshape(-1, self.num_variables)
        if self._limits.device != rows.device:  # tuples on a GPU: the bounds follow them once
            self._lowest, self._limits = self._lowest.to(rows.device), self._limits.to(rows.device)
        low, high = torch.aminmax(rows, dim=0)
        if bool(((low < self._lowest) | (high >= self._limits)).any()):
            bad = (rows < self._lowest) | (rows >= self._limits)
            row, column = (int(i) for i in bad.nonzero()[0])
            raise ValueError(
                f"{self.name}: tuple {rows[row].tolist()} has index {int(rows[row, column])} in column {column}, "
                f"outside 0..{int(self._limits[column]) - 1}"
                + (" (or -1 for padding)" if int(self._lowest[column]) < 0 else "")
                + "; tuples are rows of class indices, one column per variable"
            )

    def _range_bounds(self) -> tuple[int, int]:
        """(the highest lowest index, the smallest class count) over the columns; within them every
        column is within its own range (lowest: -1 on Sequence positions, else 0)."""
        bounds = self.__dict__.get("_bounds")  # built on first use (also for programs pickled before)
        if bounds is None:
            floor = max(-1 if isinstance(space, Sequence) else 0 for _, _, space in self._layout)
            bounds = self._bounds = (floor, min(self._sizes))
        return bounds

    # --- the failure policy -----------------------------------------------------------------
    def _failure_of(self, outcome: Outcome, timeout: float | None = None) -> tuple[str, str, bool]:
        """(kind, message, memoisable) of a call that did not return a value; counts the kind."""
        status, value = outcome
        if status == TRANSIENT:
            self.stats.transient += 1
            return "transient", f"{value} (transient: not memoised, asked again when sampled again)", False
        if status == TIMEOUT:
            self.stats.timeouts += 1
            return "timeout", f"took longer than timeout={timeout}s", True
        if status == LOST:
            self.stats.lost += 1
            return "lost", f"{value}; not memoised, retried when sampled again", False
        if status == ERROR:
            return "raised", str(value), True
        raise ValueError(f"{self.name}: unknown call outcome {status!r} (expected one of {OK}, {ERROR}, "
                         f"{TRANSIENT}, {TIMEOUT}, {LOST})")

    def _record_failures(self, count: int, kind: str, message: str, where: str) -> None:
        """Count ``count`` failed samples of one kind; warn on the first of each kind."""
        self.stats.failures += count
        self._streak_errors.setdefault(kind, message)
        if kind not in self.stats.errors:
            self.stats.errors[kind] = message
            warnings.warn(
                f"{where}: {message}. Such tuples count as failed samples and contribute nothing "
                "(reported once per kind; see program.stats)",
                RuntimeWarning,
                stacklevel=5,
            )

    @contextmanager
    def outside_training(self) -> Iterator[None]:
        """``evaluate`` calls made inside (prediction, accuracy) neither count towards nor reset the
        ``max_failed_batches`` streak: an untrained network whose most likely symbols all fail is a
        score of 0, not a broken program."""
        self._streak_paused = getattr(self, "_streak_paused", 0) + 1
        try:
            yield
        finally:
            self._streak_paused -= 1

    def _end_batch(self, count: int, succeeded: int) -> None:
        """Track consecutive all-failed ``evaluate`` calls; raise at ``max_failed_batches``."""
        paused: int = getattr(self, "_streak_paused", 0)
        if count == 0 or paused:
            return
        if succeeded:
            self._failed_streak, self._streak_queries = 0, 0
            self._streak_errors.clear()
            return
        self._failed_streak += 1
        self._streak_queries += count
        limit = self.max_failed_batches
        if limit is not None and self._failed_streak >= limit:
            seen = "; ".join(self._streak_errors.values()) or "none recorded"
            streak, queries = self._failed_streak, self._streak_queries
            self._failed_streak, self._streak_queries = 0, 0
            self._streak_errors.clear()
            raise ProgramFailedError(
                f"{self.name}: every sample of the last {streak} evaluate calls failed ({queries} tuples); "
                f"failures seen: {seen}. Call the program by hand on a few inputs (program(*values)) to find "
                "the fault, or pass max_failed_batches=None to go on regardless"
            )


def _width(space: Discrete | Sequence) -> int:
    return space.max_len if isinstance(space, Sequence) else 1


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def is_nan(value: Any) -> bool:
    """NaN of any float flavour: Python, numpy, or a one-element tensor."""
    if isinstance(value, (int, str, bytes, tuple, list, dict, set, frozenset)):  # the common case first
        return False
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and value.is_floating_point() and bool(torch.isnan(value).all())
    try:
        return math.isnan(value)
    except (TypeError, ValueError, OverflowError):
        return False


def _check_arity(kind: str, fn: Callable[..., Any], count: int) -> None:
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
            f"{kind}(fn, inputs=...): {name}{signature} cannot be called with {count} positional "
            f"argument(s), one per input space ({error}); make fn take one argument per input"
        ) from None
