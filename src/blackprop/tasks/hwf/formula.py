"""Hand-written formulas: a small parser and evaluator with the usual precedence, and a tolerance key.

A formula is a sequence of symbols that alternates digits and operators and starts and ends with
a digit: ``d (op d)*`` with ``d`` in 0..9 and ``op`` in ``+ - * /``. ``*`` and ``/`` bind tighter
than ``+`` and ``-``; operators of one level associate to the left. Arithmetic is exact
(``fractions.Fraction``), so ``1/3*3`` is exactly 1. A malformed sequence (empty, even length, an
operator where a digit belongs or the reverse, an unknown symbol) or a division by zero raises
``FormulaError``; no string is ever passed to ``eval``.

Outputs are compared with a tolerance of 0.01 through ``tolerance_key``: two values are equal when
they round (half to even, exactly) to the same multiple of 0.01. Equal keys imply ``|a - b| < 0.01``
(the reference's test); two values straddling a rounding boundary (0.1249 and 0.1251) count as
different although they lie within 0.01. Formula values of up to 7 symbols are rationals with a
denominator of at most 9**3 = 729, so a value exactly on a boundary (1/8 = 0.125) is always computed
exactly and lands in the same bucket every time; floats (e.g. labels read from a
JSON file) are first snapped to the nearest fraction with denominator <= 10**6, which recovers the
exact rational a float result of such a formula stands for, so ``0.125`` and ``1/8`` share a key.

Example:
    >>> evaluate_formula(list("2+3*4"))
    Fraction(14, 1)
    >>> formula_value(["7", "/", "2", "-", "1"])
    2.5
    >>> tolerance_key(1 / 3) == tolerance_key(0.333) == tolerance_key(Fraction(1, 3))
    True
    >>> evaluate_formula(list("4/0"))
    Traceback (most recent call last):
    ...
    blackprop.tasks.hwf.formula.FormulaError: division by zero at position 1 of ['4', '/', '0']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

__all__ = [
    "DIGITS",
    "OPERATORS",
    "TOLERANCE",
    "FormulaError",
    "evaluate_formula",
    "formula_value",
    "same_value",
    "tolerance_key",
]

DIGITS = tuple("0123456789")
OPERATORS = ("+", "-", "*", "/")
TOLERANCE = 0.01
#: floats are snapped to the nearest fraction with at most this denominator before rounding
MAX_DENOMINATOR = 10**6

_DIGIT_VALUE: dict[Any, int] = {**{s: int(s) for s in DIGITS}, **{i: i for i in range(10)}}


class FormulaError(ValueError):
    """A symbol sequence that is not a well-formed formula, or that divides by zero.

    The parser raises it with the sequence and a message template (``FormulaError.at``); the
    message is written only when read, since a training run meets thousands of malformed
    readings and reads the message of one.
    """

    def __init__(self, message: str = "", symbols: Sequence[Any] | None = None, position: int = 0):
        super().__init__(message)
        self._template, self._symbols, self._position = message, symbols, position

    @classmethod
    def at(cls, template: str, symbols: Sequence[Any], position: int) -> FormulaError:
        """An error whose message is ``template.format(symbols=list(symbols), position=position,
        symbol=repr(symbols[position]), length=len(symbols))``, written when read."""
        return cls(template, symbols, position)

    def __str__(self) -> str:
        if self._symbols is None:
            return self._template
        symbols = self._symbols
        symbol = repr(symbols[self._position]) if 0 <= self._position < len(symbols) else ""
        return self._template.format(symbols=list(symbols), position=self._position, symbol=symbol,
                                     length=len(symbols))


_EVEN = "a formula has an odd number of symbols (digit, then operator-digit pairs); got {length}: {symbols}"
_NOT_DIGIT = "position {position} of {symbols} must be a digit (0-9), got {symbol}"
_NOT_OPERATOR = "position {position} of {symbols} must be an operator (+ - * /), got {symbol}"
_ZERO = "division by zero at position {position} of {symbols}"


def _exact(symbols: Sequence[Any]) -> tuple[int, int]:
    """(numerator, denominator > 0) of ``d (op d)*`` with ``* /`` before ``+ -``, left to right
    within a level, in integers (no Fraction objects: 2-4x faster; not reduced)."""
    length = len(symbols)
    if length % 2 == 0:
        raise FormulaError.at(_EVEN, symbols, -1)
    total_n, total_d = 0, 1  # the sum of the finished terms
    sign = 1
    term_n, term_d = _digit(symbols, 0), 1
    for position in range(1, length, 2):
        operator = symbols[position]
        operand = _digit(symbols, position + 1)
        if operator == "*":
            term_n *= operand
        elif operator == "/":
            if operand == 0:
                raise FormulaError.at(_ZERO, symbols, position)
            term_d *= operand
        elif operator == "+" or operator == "-":
            total_n, total_d = total_n * term_d + sign * term_n * total_d, total_d * term_d
            sign = 1 if operator == "+" else -1
            term_n, term_d = operand, 1
        else:
            raise FormulaError.at(_NOT_OPERATOR, symbols, position)
    return total_n * term_d + sign * term_n * total_d, total_d * term_d


def evaluate_formula(symbols: Sequence[Any]) -> Fraction:
    """Exact value of ``d (op d)*`` with ``* /`` before ``+ -``, left to right within a level.

    Digits may be the strings "0".."9" or the ints 0..9; operators are "+", "-", "*", "/".
    Raises ``FormulaError`` on a malformed sequence or a division by zero.
    """
    numerator, denominator = _exact(symbols)
    return Fraction(numerator, denominator)


def _digit(symbols: Sequence[Any], position: int) -> int:
    symbol = symbols[position]
    value = _DIGIT_VALUE.get(symbol) if not isinstance(symbol, bool) else None
    if value is None:
        raise FormulaError.at(_NOT_DIGIT, symbols, position)
    return value


def formula_value(symbols: Sequence[Any]) -> float:
    """``evaluate_formula`` as a float (the program of the HWF task): numerator / denominator, which
    Python's int division rounds correctly, so it equals ``float(evaluate_formula(symbols))``."""
    numerator, denominator = _exact(symbols)
    return numerator / denominator


def tolerance_key(value: Any) -> Fraction:
    """The multiple of 0.01 nearest to ``value`` (exact, ties to even), as a Fraction.

    ``value`` may be an int, a Fraction or a finite float (snapped to the nearest fraction with
    denominator <= 10**6 first). Raises ``ValueError`` for NaN and infinities.
    """
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"tolerance_key(value): value must be finite, got {value!r}")
        exact = Fraction(value).limit_denominator(MAX_DENOMINATOR)
    elif isinstance(value, (int, Fraction)) and not isinstance(value, bool):
        exact = Fraction(value)
    else:
        raise TypeError(f"tolerance_key(value): expected a number (int, float, Fraction), got {value!r}")
    return round(exact, 2)


def same_value(a: Any, b: Any) -> bool:
    """True when ``a`` and ``b`` share a tolerance key (then ``|a - b| < 0.01``)."""
    return tolerance_key(a) == tolerance_key(b)
