"""Gradient estimators through a black-box program, reachable by name.

    >>> estimator("ised", num_samples=10)
    ISED(num_samples=10, semiring='add-mult', dedup=False, normalize='l1', loss_fn='nll', exploration=0.0, weights='probability', site_exploration=0.0)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ._base import Estimator
from .anesi import ANeSI
from .exact import Exact, TooLargeToEnumerate
from .indecater import IndeCateR, IndeCateRPlus
from .ised import ISED
from .nasr import NASR
from .reinforce import REINFORCE
from .substitution_ised import SubstitutionISED

__all__ = [
    "ANeSI",
    "ESTIMATORS",
    "Estimator",
    "Exact",
    "ISED",
    "IndeCateR",
    "IndeCateRPlus",
    "NASR",
    "REINFORCE",
    "SubstitutionISED",
    "TooLargeToEnumerate",
    "estimator",
    "register",
]

ESTIMATORS: dict[str, type[Estimator]] = {}


def register(cls: type[Estimator]) -> type[Estimator]:
    """Make an estimator class reachable by its ``name`` (usable as a decorator)."""
    ESTIMATORS[cls.name] = cls
    return cls


for _cls in (ISED, Exact, REINFORCE, IndeCateR, IndeCateRPlus, NASR, ANeSI, SubstitutionISED):
    register(_cls)


def estimator(name: str, **settings: Any) -> Estimator:
    """Build an estimator by name, e.g. ``estimator("ised", num_samples=100)``."""
    try:
        cls = ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown estimator {name!r}; valid: {', '.join(sorted(ESTIMATORS))}") from None
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise TypeError(
            f"estimator {name!r}: unknown setting(s) {', '.join(unknown)}; valid settings: {', '.join(valid)}"
        )
    try:
        return cls(**settings)
    except TypeError as error:
        raise TypeError(f"estimator {name!r}: {error}") from None
