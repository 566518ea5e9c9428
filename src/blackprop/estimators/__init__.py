"""Gradient estimators through a black-box program, reachable by name.

    >>> estimator("ised", num_samples=10)
    ISED(num_samples=10, semiring='add-mult', dedup=False, normalize='l1', loss_fn='nll', exploration=0.0, weights='importance', site_exploration='auto', enumerate_within_budget=True)
    >>> estimator("ised", dedup="no").dedup        # text from --set is parsed to the field's type
    False
    >>> parse_estimator_settings("indecater+", ["num_samples=10", "objective=linear"])
    {'num_samples': 10, 'objective': 'linear'}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from ..settings import coerce, did_you_mean, split_assignments
from ._base import Estimator, field_types
from .anesi import ANeSI
from .exact import Exact, TooLargeToEnumerate
from .indecater import IndeCateR, IndeCateRPlus
from .ised import ISED
from .nasr import NASR
from .reinforce import REINFORCE

__all__ = [
    "ANeSI",
    "ESTIMATORS",
    "Estimator",
    "Exact",
    "ISED",
    "IndeCateR",
    "IndeCateRPlus",
    "NASR",
    "PRESETS",
    "REINFORCE",
    "TooLargeToEnumerate",
    "estimator",
    "parse_estimator_settings",
    "register",
]

#: registry name -> estimator class.
ESTIMATORS: dict[str, type[Estimator]] = {}
#: registry names that are a class with some settings fixed ("indecater+": IndeCateR+; "ised-paper":
#: ISED as the paper's reference code ran it: probability weights, L2 normalisation, binary cross-entropy).
PRESETS: dict[str, dict[str, Any]] = {
    "indecater+": {"variant": "per-variable"},
    "ised-paper": {"weights": "probability", "normalize": "l2", "loss_fn": "bce", "site_exploration": 0.0},
}


def register(cls: type[Estimator], name: str | None = None) -> type[Estimator]:
    """Make an estimator class reachable by ``name`` (default its ``name``; usable as a decorator)."""
    ESTIMATORS[name or cls.name] = cls
    return cls


for _cls in (ISED, Exact, REINFORCE, IndeCateR, NASR, ANeSI):
    register(_cls)
register(IndeCateR, "indecater+")
register(ISED, "ised-paper")


def _lookup(name: str) -> type[Estimator]:
    try:
        return ESTIMATORS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown estimator {name!r}{did_you_mean(name, ESTIMATORS)}; valid: "
                         f"{', '.join(sorted(ESTIMATORS))}") from None



def _check_known(name: str, cls: type[Estimator], settings: Iterable[str]) -> None:
    valid = [f.name for f in dataclasses.fields(cls) if f.name not in PRESETS.get(name, {})]
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise TypeError(
            f"estimator {name!r}: unknown setting(s) {', '.join(unknown)}; valid settings: {', '.join(valid)}"
        )


def estimator(name: str, **settings: Any) -> Estimator:
    """Build an estimator by name, e.g. ``estimator("ised", num_samples=100)``.

    Each setting is a typed value or its text (``dedup="false"``), parsed to the field's declared
    type by ``blackprop.settings``; a value of the wrong type is refused naming the field.
    """
    cls = _lookup(name)
    _check_known(name, cls, settings)
    return cls(**{**settings, **PRESETS.get(name, {})})


def parse_estimator_settings(name: str, items: Iterable[str]) -> dict[str, Any]:
    """``["k=v", ...]`` (``--set`` arguments) -> the estimator's settings, each parsed to its field's type.

    Refuses an unknown setting (listing the valid ones), a repeated key and a value of the wrong
    type (naming the field, the expected type and the value).
    """
    cls = _lookup(name)
    raw = split_assignments(items)
    _check_known(name, cls, raw)
    kinds = field_types(cls)
    return {key: coerce(text, kinds[key], field=f"{cls.__name__}({key}=...)") for key, text in raw.items()}
