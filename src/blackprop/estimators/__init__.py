"""Gradient estimators through a black-box program, reachable by name.

    >>> estimator("ised", num_samples=10)
    ISED(num_samples=10, semiring='add-mult', dedup=False, normalize='l1', loss_fn='nll')
"""

from __future__ import annotations

from typing import Any

from ._base import Estimator
from .exact import Exact, TooLargeToEnumerate
from .ised import ISED
from .substitution_ised import SubstitutionISED

__all__ = ["ESTIMATORS", "Estimator", "Exact", "ISED", "SubstitutionISED", "TooLargeToEnumerate", "estimator", "register"]


ESTIMATORS: dict[str, type[Estimator]] = {}


def register(cls: type[Estimator]) -> type[Estimator]:
    """Make an estimator class reachable by its ``name`` (usable as a decorator)."""
    ESTIMATORS[cls.name] = cls
    return cls


for _cls in (ISED, Exact, SubstitutionISED):
    register(_cls)


def estimator(name: str, **settings: Any) -> Estimator:
    """Build an estimator by name, e.g. ``estimator("ised", num_samples=100)``."""
    try:
        cls = ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown estimator {name!r}; valid: {', '.join(sorted(ESTIMATORS))}") from None
    try:
        return cls(**settings)
    except TypeError as error:
        raise TypeError(f"estimator {name!r}: {error}") from None
