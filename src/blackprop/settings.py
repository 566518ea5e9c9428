"""The one typed grammar for settings given as text (``--set k=v``, spec files, ``name?k=v``).

A setting has a declared type; text is parsed to it, typed values are checked against it:

* ``bool``: true/false, yes/no, on/off, 1/0 (any case);
* ``int``, ``float`` (an int is accepted for a float), ``str``;
* ``Optional[T]`` (``T | None``): also none/null (any case);
* ``Literal["a", "b"]``: one of the listed strings.

Every error names the field, the expected type and the value received.

Example:
    >>> coerce("False", bool, field="ISED(dedup=...)")
    False
    >>> coerce("0.5", float, field="x")
    0.5
    >>> split_assignments(["dedup=no", "num_samples=10"])
    {'dedup': 'no', 'num_samples': '10'}
    >>> coerce("maybe", bool, field="ISED(dedup=...)")
    Traceback (most recent call last):
    ...
    blackprop.settings.SettingError: ISED(dedup=...): must be a bool (true/false, yes/no, on/off, 1/0), got 'maybe'
"""

from __future__ import annotations

import difflib
import numbers
import types
import typing
from collections.abc import Iterable
from typing import Any

__all__ = ["SettingError", "coerce", "describe", "did_you_mean", "split_assignments"]

TRUE = ("true", "yes", "on", "1")
FALSE = ("false", "no", "off", "0")
NONE = ("none", "null")


class SettingError(ValueError):
    """A setting whose value does not fit its declared type or constraint."""


def describe(kind: Any) -> str:
    """The expected type in words, as error messages state it."""
    if kind is bool:
        return "a bool (true/false, yes/no, on/off, 1/0)"
    if kind is int:
        return "an int"
    if kind is float:
        return "a number"
    if kind is str:
        return "a string"
    inner = _optional_of(kind)
    if inner is not None:
        return f"{describe(inner)} or none"
    if typing.get_origin(kind) is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(kind)))
    if _union_of(kind):
        return " or ".join(describe(member) for member in _union_of(kind))
    return getattr(kind, "__name__", repr(kind))


def coerce(value: Any, kind: Any, *, field: str) -> Any:
    """``value`` as ``kind``: text is parsed, a typed value is checked; raises ``SettingError``."""
    inner = _optional_of(kind)
    if inner is not None:
        if value is None or (isinstance(value, str) and value.strip().lower() in NONE):
            return None
        try:
            return coerce(value, inner, field=field)
        except SettingError:
            raise SettingError(f"{field}: must be {describe(kind)}, got {value!r}") from None
    members = _union_of(kind)
    if members:  # e.g. ``float | Literal["auto"]``: the first member the value parses to
        for member in members:
            try:
                return coerce(value, member, field=field)
            except SettingError:
                continue
        raise SettingError(f"{field}: must be {describe(kind)}, got {value!r}")
    if isinstance(value, str) and kind is not str:
        return _parse(value, kind, field)
    return _check(value, kind, field)


def split_assignments(items: Iterable[str]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}`` (values stay text); refuses a missing ``=`` or a repeated key."""
    settings: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SettingError(f"setting {item!r}: expected key=value, e.g. num_samples=100")
        if key in settings:
            raise SettingError(f"setting {key!r} given twice ({settings[key]!r} and {value!r}); give it once")
        settings[key] = value.strip()
    return settings


def did_you_mean(name: object, valid: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest valid name (case, spacing, _ for - ignored), else ``""``.

    >>> did_you_mean("ISED", ["ised", "exact"]), did_you_mean("zzz", ["ised"])
    (" (did you mean 'ised'?)", '')
    """
    if not isinstance(name, str):
        return ""
    folded = {v.lower().replace("_", "-").replace(" ", ""): v for v in valid}
    key = name.strip().lower().replace("_", "-").replace(" ", "").replace("-plus", "+")
    if key in folded:
        return f" (did you mean {folded[key]!r}?)"
    close = difflib.get_close_matches(key, list(folded), n=1, cutoff=0.6)
    return f" (did you mean {folded[close[0]]!r}?)" if close else ""


def _parse(text: str, kind: Any, field: str) -> Any:
    word = text.strip()
    if kind is bool:
        if word.lower() in TRUE:
            return True
        if word.lower() in FALSE:
            return False
    elif kind is int:
        try:
            return int(word)
        except ValueError:
            pass
    elif kind is float:
        try:
            return float(word)
        except ValueError:
            pass
    elif typing.get_origin(kind) is typing.Literal:
        return _check(word, kind, field)
    raise SettingError(f"{field}: must be {describe(kind)}, got {text!r}")


def _check(value: Any, kind: Any, field: str) -> Any:
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)  # numpy and 0-d integer types as a plain int
    if kind is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, str):
        return value
    if typing.get_origin(kind) is typing.Literal and value in typing.get_args(kind):
        return value
    if kind is Any:
        return value
    raise SettingError(f"{field}: must be {describe(kind)}, got {value!r}")


def _union_of(kind: Any) -> tuple[Any, ...]:
    """The members of a union that is not ``Optional[T]``, Literal members first; else ()."""
    if typing.get_origin(kind) not in (typing.Union, types.UnionType):
        return ()
    members = typing.get_args(kind)
    return tuple(sorted(members, key=lambda m: typing.get_origin(m) is not typing.Literal))


def _optional_of(kind: Any) -> Any:
    """T for ``Optional[T]`` / ``T | None``, else None."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(kind)) == 2:
            return args[0]
    return None
