"""Hand-written formulas evaluated in tensors: the hwf program as a ``BatchedProgram``.

``formula_values(column)`` evaluates a whole batch of symbol sequences at once, with the grammar and
precedence of ``formula.evaluate_formula``: ``d (op d)*``, ``* /`` before ``+ -``, left to right within
a level. Symbols are class indices of ``SYMBOLS`` (0-9 the digits, 10-13 ``+ - * /``). The arithmetic
is exact, in int64 numerators and denominators, as in ``formula._exact``: one pass over the operator
positions keeps the sum of the finished terms ``t_n / t_d`` and the open term ``s * p_n / p_d``;

    ``*`` d: p_n <- p_n d        ``/`` d: p_d <- p_d d        ``+`` / ``-`` d: t <- t + s p, (s, p) <- (+-1, d)

and the value is ``(t_n p_d + s p_n t_d) / (t_d p_d)``, divided once in float64. Since both the
numerator and the denominator (at most 9**3) are exact integers, that division is the correctly
rounded float of the exact value, the very float ``formula_value`` returns; a malformed sequence or a
division by zero gives NaN (a failed tuple). Seven symbols keep every integer below 10**9.

``make_hwf_batched_program()`` wraps it with the hwf task's spaces and ``Open(canonical=tolerance_key)``
output, so each distinct value of a batch is rounded to its 0.01 key once (``OpenIndex``) and its
outputs index the same vocabulary the per-tuple program builds.

Example:
    >>> import torch
    >>> from blackprop.program.batched import Column
    >>> formulas = torch.tensor([[7, 13, 2, 11, 1], [2, 10, 3, 12, 4], [4, 13, 0, 0, 0], [3, 3, 0, 0, 0]])
    >>> formula_values(Column(formulas, torch.tensor([5, 5, 3, 2]))).tolist()   # 7/2-1, 2+3*4, 4/0, "33"
    [2.5, 14.0, nan, nan]
"""

from __future__ import annotations

import torch

from ...program import BatchedProgram
from ...program.batched import Column
from ...spaces import Open, Sequence
from .formula import tolerance_key

__all__ = ["formula_values", "make_hwf_batched_program"]

PLUS, MINUS, TIMES, DIVIDE = 10, 11, 12, 13


def formula_values(formulas: Column) -> torch.Tensor:
    """float64 ``[M]``: the value of each formula (symbol indices, see the module docstring), NaN when
    the sequence is not ``d (op d)*`` or divides by zero."""
    symbols, lengths = formulas.values.long(), formulas.lengths.long()
    count, width = symbols.shape
    positions = torch.arange(width, device=symbols.device)
    inside = positions < lengths.unsqueeze(1)
    is_digit = symbols < PLUS
    digit_place = positions % 2 == 0
    ok = (lengths % 2 == 1) & ((is_digit == digit_place) | ~inside).all(dim=1)
    digits = symbols.clamp(max=9)  # an operator's index is read as 9 where a digit belongs: such rows fail
    one = torch.ones(count, dtype=torch.long, device=symbols.device)
    total_n, total_d = torch.zeros_like(one), one
    sign, term_n, term_d = one, digits[:, 0], one  # a Sequence has max_len >= 1
    for position in range(1, width - 1, 2):
        operator, operand = symbols[:, position], digits[:, position + 1]
        active = position < lengths
        times, divide = active & (operator == TIMES), active & (operator == DIVIDE)
        close = active & ((operator == PLUS) | (operator == MINUS))
        ok &= ~(divide & (operand == 0))
        total_n = torch.where(close, total_n * term_d + sign * term_n * total_d, total_n)
        total_d = torch.where(close, total_d * term_d, total_d)
        sign = torch.where(close, torch.where(operator == PLUS, 1, -1), sign)
        term_n = torch.where(close, operand, torch.where(times, term_n * operand, term_n))
        term_d = torch.where(close, one, torch.where(divide & (operand != 0), term_d * operand, term_d))
    numerator = total_n * term_d + sign * term_n * total_d
    value = numerator.double() / (total_d * term_d).double()
    return value.masked_fill(~ok, torch.nan)


def make_hwf_batched_program() -> BatchedProgram:
    """The hwf program over tensors: ``Sequence(SYMBOLS, 7)`` in, ``Open(canonical=tolerance_key)`` out."""
    from .task import MAX_LEN, SYMBOLS  # the task module builds its program from here

    return BatchedProgram(formula_values, inputs=(Sequence(SYMBOLS, MAX_LEN),), output=Open(canonical=tolerance_key),
                          name="hwf", indices=True)
