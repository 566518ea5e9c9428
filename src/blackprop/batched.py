"""BatchedProgram: a program written over whole columns of symbols, called once per ``evaluate``.

A ``Program`` calls ``fn`` once per distinct tuple, in Python. When the program can be written with
tensor operations, ``BatchedProgram(fn, inputs, output)`` calls it once for all the distinct tuples of
an ``evaluate`` call: argument j is a tensor ``[M]`` holding input j's *values* (its Discrete
values, which must be numbers), and ``fn`` returns ``[M]`` output values. Each value is mapped to its
index in the Discrete output space; a value outside the space (or NaN) is a failed tuple, index -1,
as for ``Program``. Every estimator accepts it where it accepts a ``Program``.

Without a per-tuple Python call a memo, or even finding the distinct rows, costs more than the
program, so there is neither: every row runs (``stats.calls`` = ``stats.queries``).
A tuple-wise function such as ``lambda *xs: sum(xs)`` often works unchanged on tensors.

Measured (``python -m blackprop.batched``, sum of 16 digits, 200,000 random tuples, one thread):
see ``speed()`` below; the figure is printed, not stored.

Example:
    >>> import torch
    >>> from blackprop.spaces import Discrete
    >>> digit = Discrete(range(10))
    >>> add = BatchedProgram(lambda a, b: a + b, inputs=(digit, digit), output=Discrete(range(10)))
    >>> add.evaluate(torch.tensor([[1, 2], [3, 4], [9, 9], [1, 2]])).tolist()   # 18 is outside 0..9
    [3, 7, -1, 3]
    >>> add.stats.queries, add.stats.calls, add.stats.failures
    (4, 4, 1)
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable
from collections.abc import Sequence as SequenceABC
from typing import Any

import torch

from .program import FAILED, Program
from .spaces import Discrete, Sequence

__all__ = ["BatchedProgram"]


class BatchedProgram(Program):
    """``fn(*columns) -> outputs`` over tensors of input values; see the module docstring.

    Args:
        fn: called with one ``[M]`` tensor per input (int64 when the input's values are ints, else
            float64); returns ``M`` output values (a tensor, array or list).
        inputs: Discrete spaces with numeric values, one per argument.
        output: a Discrete space with numeric values.
        name: shown in messages.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        inputs: SequenceABC[Discrete] | Discrete,
        output: Discrete,
        *,
        name: str | None = None,
    ):
        spaces: tuple[Discrete | Sequence, ...] = (inputs,) if isinstance(inputs, Discrete) else tuple(inputs)
        super().__init__(fn, spaces, output, cache=False, name=name)
        self._columns = []
        for position, space in enumerate(self.inputs):
            if not isinstance(space, Discrete):
                raise TypeError(f"BatchedProgram: input {position} is a {type(space).__name__}; batched programs take "
                                "Discrete inputs only (use Program for variable-length inputs)")
            self._columns.append(_numeric_table(f"input {position}", space))
        if not isinstance(output, Discrete):
            raise TypeError(f"BatchedProgram(output=...): give a Discrete space of numbers, got {output!r} "
                            "(use Program for Open or Product outputs)")
        values = _numeric_table("the output", output)
        self._sorted_outputs, self._output_order = torch.sort(values)

    def evaluate(self, tuples: torch.Tensor) -> torch.Tensor:
        """Output index of each tuple (``[..., V]`` -> ``[...]``), -1 where the value is not an output."""
        self._check_tuples(tuples)
        lead = tuples.shape[:-1]
        flat = tuples.reshape(-1, self.num_variables).long().cpu()
        self.stats.queries += flat.shape[0]
        if flat.shape[0] == 0:
            return torch.empty(lead, dtype=torch.long, device=tuples.device)
        self._check_range(flat)
        columns = flat.t().contiguous()
        outputs = self.fn(*(table[columns[j]] for j, table in enumerate(self._columns)))
        indices = self.output_indices(outputs, flat.shape[0])
        self.stats.calls += flat.shape[0]
        self.stats.failures += int((indices == FAILED).sum())
        return indices.reshape(lead).to(tuples.device)

    def output_indices(self, outputs: Any, count: int) -> torch.Tensor:
        """Index of each returned value in the output space, -1 for values outside it or NaN."""
        values = torch.as_tensor(outputs).to(self._sorted_outputs.dtype).reshape(-1)
        if values.shape[0] != count:
            raise ValueError(f"{self.name}: fn returned {values.shape[0]} values for {count} tuples; a batched "
                             "program returns one output value per row of its argument tensors")
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


def speed(num_digits: int = 16, count: int = 200_000, seed: int = 0) -> dict[str, float]:
    """Tuples per second of ``Program`` (no memo) and ``BatchedProgram`` on the same sum-n tuples."""
    digit = Discrete(range(10))
    output = Discrete(range(9 * num_digits + 1))
    tuples = torch.randint(0, 10, (count, num_digits), generator=torch.Generator().manual_seed(seed))
    rates = {}
    for label, program in (("program", Program(lambda *xs: sum(xs), (digit,) * num_digits, output, cache=False)),
                           ("batched", BatchedProgram(lambda *xs: sum(xs), (digit,) * num_digits, output))):
        program.evaluate(tuples[:1000])  # warm-up
        began = time.perf_counter()
        program.evaluate(tuples)
        rates[label] = count / (time.perf_counter() - began)
    return rates


if __name__ == "__main__":
    torch.set_num_threads(1)
    rates = speed()
    print(f"sum16, 200,000 tuples: Program {rates['program']:,.0f}/s, BatchedProgram {rates['batched']:,.0f}/s, "
          f"ratio {rates['batched'] / rates['program']:.0f}x")
