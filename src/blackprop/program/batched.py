"""BatchedProgram: a program written over whole columns of symbols, called once per ``evaluate``.

A ``Program`` calls ``fn`` once per distinct tuple, in Python. When the program can be written with
tensor operations, ``BatchedProgram(fn, inputs, output)`` calls it once for all the rows of an
``evaluate`` call: argument j is a tensor ``[M]`` holding input j's *values* (its Discrete values,
which must be numbers), or for a ``Sequence`` input a ``Column`` (``values [M, max_len]``, padded
positions 0, and ``lengths [M]``; ``column.mask`` marks the valid positions), and ``fn`` returns
``[M]`` output values. Each value is mapped to its
index in the Discrete output space; a value outside the space (or NaN) is a failed tuple, index -1,
as for ``Program``. Every estimator accepts it where it accepts a ``Program``.

Inputs whose symbols are not numbers (``Discrete("abc")``, hwf's ``"+"``) need ``indices=True``: then
every argument holds class indices 0..size-1 instead of values. The output may also be ``Open``
(values compared by its ``canonical``, such as hwf's 0.01 tolerance): the batch's distinct values
are looked up in bulk and ``canonical`` runs once per value never seen (``OpenIndex``).

Without a per-tuple Python call a memo, or even finding the distinct rows, costs more than the
program, so there is neither: every row runs (``stats.calls`` = ``stats.queries``), and there is no
executor. A tuple-wise function such as ``lambda *xs: sum(xs)`` often works unchanged on tensors.

Failures follow ``Program``'s policy (``BaseProgram``): if fn raises, every row of that batch is a
failed sample, counted (in ``stats.transient`` too for a transient error), warned once per kind
naming the program and the batch, and ``max_failed_batches`` consecutive failed batches raise
``ProgramFailedError``. Returning the wrong number of values is a contract error (``ValueError``).

``python -m blackprop.program`` prints the speed of both on 200,000 sums of 16 digits.

Example:
    >>> import torch
    >>> from blackprop.spaces import Discrete
    >>> digit = Discrete(range(10))
    >>> add = BatchedProgram(lambda a, b: a + b, inputs=(digit, digit), output=Discrete(range(10)))
    >>> add.evaluate(torch.tensor([[1, 2], [3, 4], [9, 9], [1, 2]])).tolist()   # 18 is outside 0..9
    [3, 7, -1, 3]
    >>> add.stats.queries, add.stats.calls, add.stats.failures
    (4, 4, 1)
    >>> from blackprop.spaces import Sequence
    >>> total = BatchedProgram(lambda xs: xs.values.sum(dim=1), Sequence(digit, 3), Discrete(range(28)))
    >>> total.evaluate(torch.tensor([[1, 2, -1], [9, 9, 9], [-1, -1, -1]])).tolist()
    [3, 27, 0]
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from collections.abc import Sequence as SequenceABC
from typing import Any, NamedTuple, final

import torch

from ..spaces import Discrete, Open, Sequence
from .base import FAILED, BaseProgram
from .calls import OK, guarded_call
from .open_index import OpenIndex
from .program import Program

__all__ = ["BatchedProgram", "Column"]


@final
class Column(NamedTuple):
    """A Sequence input's values for a batched program: ``values [M, max_len]`` (0 on padding) and ``lengths [M]``."""

    values: torch.Tensor
    lengths: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """``[M, max_len]``: True on the valid (leading) positions."""
        positions = torch.arange(self.values.shape[1], device=self.values.device)
        return positions.unsqueeze(0) < self.lengths.unsqueeze(1)


@final
class BatchedProgram(BaseProgram):
    """``fn(*columns) -> outputs`` over tensors of input values; see the module docstring.

    Args:
        fn: called with one ``[M]`` tensor per Discrete input (int64 when the input's values are ints,
            else float64) and one ``Column`` per Sequence input; returns ``M`` output values (a
            tensor, array or list).
        inputs: Discrete spaces with numeric values (any values with ``indices=True``), or Sequences of
            them, one per argument.
        output: a Discrete space with numeric values, or an ``Open`` space.
        name: shown in messages.
        max_failed_batches: consecutive all-failed ``evaluate`` calls before ``ProgramFailedError``
            (default 5; None: never).
        indices: fn gets class indices (0..size-1, padding 0 in a Column) instead of values.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("BatchedProgram is final: wrap it (composition) instead of subclassing it")

    def __init__(
        self,
        fn: Callable[..., Any],
        inputs: SequenceABC[Discrete | Sequence] | Discrete | Sequence,
        output: Discrete | Open,
        *,
        name: str | None = None,
        max_failed_batches: int | None = 5,
        indices: bool = False,
    ):
        super().__init__(fn, inputs, output, name=name, max_failed_batches=max_failed_batches)
        if not isinstance(indices, bool):
            raise TypeError(f"BatchedProgram(indices=...): give True or False, got {indices!r}")
        self._columns = []
        for position, space in enumerate(self.inputs):
            element = space.element if isinstance(space, Sequence) else space
            self._columns.append(torch.arange(element.size) if indices else
                                 _numeric_table(f"input {position}", element))
        self._open = OpenIndex(output) if isinstance(output, Open) else None
        if not isinstance(output, (Discrete, Open)):
            raise TypeError(f"BatchedProgram(output=...): give a Discrete space of numbers or an Open space, got "
                            f"{output!r} (use Program for Product outputs)")
        values = _numeric_table("the output", output) if isinstance(output, Discrete) else torch.empty(0)
        self._sorted_outputs, self._output_order = torch.sort(values)
        #: the output values are ints first, first + 1, ...: index = value - first, no search
        self._output_start = _consecutive_start(values)
        #: every input Discrete with values 0, 1, ...: fn's arguments are the index columns themselves
        self._plain = all(isinstance(space, Discrete) and _consecutive_start(table) == 0
                          for space, table in zip(self.inputs, self._columns, strict=True))

    def use_executor(self, executor: Any) -> BatchedProgram:
        """Only "serial" (or None): a batched program runs fn once per batch, in this process."""
        if executor is None or executor == "serial":
            return self
        raise ValueError(f"{self.name}: a BatchedProgram runs fn once per batch in this process and takes no "
                         f"executor, got {executor!r}; drop the executor (--executor) for this program")

    def evaluate(self, tuples: torch.Tensor) -> torch.Tensor:
        """Output index of each tuple (``[..., V]`` -> ``[...]``), -1 where the value is not an output."""
        self._check_tuples(tuples)
        lead = tuples.shape[:-1]
        tuples = tuples.long()  # stays on its device: fn gets tensors there
        count = math.prod(lead)
        self.stats.queries += count
        if count == 0:
            return torch.empty(lead, dtype=torch.long, device=tuples.device)
        self._check_range(tuples)
        if self.__dict__.get("_plain"):  # one copy to columns [V, M]; fn gets its rows (its own copy)
            arguments: list[Any] = list(tuples.movedim(-1, 0).reshape(self.num_variables, count).unbind(0))
            flat = None
        else:
            flat = tuples.reshape(count, self.num_variables)
            arguments = self._arguments(flat)
        outcome = guarded_call(self.fn, arguments, None)
        self.stats.calls += count
        if outcome.status == OK:
            indices = self.output_indices(outcome.value, count)
            failed = int((indices == FAILED).sum())
            if failed:
                self.stats.failures += failed
        else:
            kind, message, _ = self._failure_of(outcome)
            first = tuples.reshape(count, self.num_variables)[0].tolist()
            where = f"{self.name} on a batch of {count} tuples (the first {tuple(self.decode(first))})"
            self._record_failures(count, kind, f"{message}; every tuple of the batch failed", where)
            indices, failed = torch.full((count,), FAILED, dtype=torch.long, device=tuples.device), count
        self._end_batch(count, count - failed)
        return indices.reshape(lead).to(tuples.device)

    def state_dict(self) -> dict[str, Any]:
        """``{"stats": {...}}``, plus ``"values"`` (the vocabulary, in index order) for an Open output."""
        state = super().state_dict()
        if isinstance(self.output, Open):
            state["values"] = list(self.output.values)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the counters and an Open output's vocabulary (its indices must agree with this program's)."""
        super().load_state_dict(state)
        if isinstance(self.output, Open):
            for position, value in enumerate(state.get("values", [])):
                if self.output.index(value) != position:
                    raise ValueError(f"{self.name}.load_state_dict(state): output value {value!r} already has "
                                     "another index here; load the state into a fresh program")

    def _arguments(self, flat: torch.Tensor) -> list[Any]:
        """fn's arguments: a value tensor per Discrete input, a ``Column`` per Sequence input."""
        arguments: list[Any] = []
        if self._columns[0].device != flat.device:  # tuples on a GPU: the tables follow them once
            self._columns = [table.to(flat.device) for table in self._columns]
        for (start, stop, space), table in zip(self._layout, self._columns, strict=True):
            if not isinstance(space, Sequence):
                arguments.append(table[flat[:, start]])
                continue
            block = flat[:, start:stop]
            valid = block >= 0
            # the valid positions first, in order (sampled tuples have their padding last already)
            order = torch.sort((~valid).to(torch.int8), dim=1, stable=True).indices
            block, valid = block.gather(1, order), valid.gather(1, order)
            values = torch.where(valid, table[block.clamp(min=0)], torch.zeros((), dtype=table.dtype))
            arguments.append(Column(values, valid.sum(dim=1)))
        return arguments

    def output_indices(self, outputs: Any, count: int) -> torch.Tensor:
        """Index of each returned value in the output space, -1 for values outside it or NaN."""
        open_index = self.__dict__.get("_open")
        try:
            values = torch.as_tensor(outputs)
            if open_index is None:
                values = values.to(self._sorted_outputs.dtype)
            elif values.dtype == torch.bool or values.is_complex():
                raise TypeError(f"dtype {values.dtype}")
            values = values.reshape(-1)
            if values.device != self._sorted_outputs.device:
                self._sorted_outputs = self._sorted_outputs.to(values.device)
                self._output_order = self._output_order.to(values.device)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(f"{self.name}: fn returned {type(outputs).__name__} that is not a tensor of numbers "
                            f"({error}); a batched program returns one output value per row") from None
        if values.shape[0] != count:
            raise ValueError(f"{self.name}: fn returned {values.shape[0]} values for {count} tuples; a batched "
                             "program returns one output value per row of its argument tensors")
        if open_index is not None:
            return open_index(values)
        start = self.__dict__.get("_output_start")
        if start is not None and not values.is_floating_point():  # consecutive int outputs: no search
            index = values - start
            return torch.where((index >= 0) & (index < self._sorted_outputs.shape[0]), index, FAILED)
        place = torch.searchsorted(self._sorted_outputs, values).clamp(max=self._sorted_outputs.shape[0] - 1)
        found = self._sorted_outputs[place] == values  # False for NaN and for values between outputs
        return torch.where(found, self._output_order[place], torch.full_like(place, FAILED))


def _numeric_table(what: str, space: Discrete) -> torch.Tensor:
    """The space's values as a tensor (int64 if all are ints, else float64); refuses other values."""
    values = space.values
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        raise TypeError(f"BatchedProgram: {what} has non-numeric values {values[:5]!r}...; batched programs "
                        "work on numbers (use Program for other symbols)")
    integral = all(isinstance(v, numbers.Integral) for v in values)
    return torch.tensor(values, dtype=torch.long if integral else torch.float64)


def _consecutive_start(values: torch.Tensor) -> int | None:
    """``values[0]`` when ``values`` are the ints ``values[0], values[0] + 1, ...`` in order, else None."""
    if values.is_floating_point() or not values.numel():
        return None
    start = int(values[0])
    return start if torch.equal(values, torch.arange(start, start + values.numel())) else None


def speed(num_digits: int = 16, count: int = 200_000, seed: int = 0) -> dict[str, float]:
    """Tuples per second of ``Program`` (no memo) and ``BatchedProgram`` on the same sum-n tuples."""
    digit = Discrete(range(10))
    output = Discrete(range(9 * num_digits + 1))
    tuples = torch.randint(0, 10, (count, num_digits), generator=torch.Generator().manual_seed(seed))
    rates = {}
    programs: tuple[tuple[str, BaseProgram], ...] = (
        ("program", Program(lambda *xs: sum(xs), (digit,) * num_digits, output, cache=False)),
        ("batched", BatchedProgram(lambda *xs: sum(xs), (digit,) * num_digits, output)),
    )
    for label, program in programs:
        program.evaluate(tuples[:1000])  # warm-up
        began = time.perf_counter()
        program.evaluate(tuples)
        rates[label] = count / (time.perf_counter() - began)
    return rates

