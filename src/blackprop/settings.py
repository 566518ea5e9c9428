"""Typed values from text: the one parser behind ``--set k=v``, spec files and executor specs.

``parse_value(field, text, kind)`` turns the text of a setting into a value of the declared
``kind`` (bool, int, float or str), or raises ``SettingError`` naming the field, the expected type
and the text received. Booleans accept, case-insensitively, true/false, yes/no, on/off and 1/0,
so ``dedup=False`` is ``False`` and never the truthy string "False". ``choices`` restricts the
parsed value to a set.

Example:
    >>> parse_value("dedup", "No", bool)
    False
    >>> parse_value("workers", "4", int)
    4
    >>> parse_value("normalize", "l2", str, choices=("none", "l1", "l2"))
    'l2'
    >>> parse_value("workers", "four", int)
    Traceback (most recent call last):
    ...
    blackprop.settings.SettingError: setting 'workers': expected an int, got 'four'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, final

__all__ = ["BOOL_FALSE", "BOOL_TRUE", "SettingError", "parse_value"]

BOOL_TRUE = ("true", "yes", "on", "1")
BOOL_FALSE = ("false", "no", "off", "0")

_NAMES = {bool: "a bool (true/false, yes/no, on/off, 1/0)", int: "an int", float: "a number", str: "a string"}


@final
class SettingError(ValueError):
    """A setting's text does not parse to its declared type, or is not one of its choices."""


def parse_value(field: str, text: str, kind: type, *, choices: Iterable[Any] | None = None) -> Any:
    """``text`` as a value of ``kind`` (bool, int, float or str); ``SettingError`` names ``field``.

    An already typed value of ``kind`` passes through (ints are accepted where floats are asked).
    """
    if kind not in _NAMES:
        raise TypeError(f"parse_value({field!r}, ...): kind must be bool, int, float or str, got {kind!r}")
    value = _parse(field, text, kind)
    if choices is not None:
        allowed = tuple(choices)
        if value not in allowed:
            raise SettingError(f"setting {field!r}: expected one of {', '.join(map(str, allowed))}, got {text!r}")
    return value


def _parse(field: str, text: Any, kind: type) -> Any:
    if not isinstance(text, str):
        if kind is float and isinstance(text, int) and not isinstance(text, bool):
            return float(text)
        if isinstance(text, kind) and (kind is bool or not isinstance(text, bool)):
            return text
        raise SettingError(f"setting {field!r}: expected {_NAMES[kind]}, got {text!r} ({type(text).__name__})")
    stripped = text.strip()
    if kind is str:
        return text
    if kind is bool:
        lowered = stripped.lower()
        if lowered in BOOL_TRUE:
            return True
        if lowered in BOOL_FALSE:
            return False
    else:
        try:
            return kind(stripped)
        except ValueError:
            pass
    raise SettingError(f"setting {field!r}: expected {_NAMES[kind]}, got {text!r}")
