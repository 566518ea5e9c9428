"""Semirings for ISED's summary, all computed in log space so long tuples never underflow.

A semiring says how a tuple's symbol probabilities combine (``times``) and how the tuples that
produce the same output combine (``plus``):

=========  =====================  ==========================  ============================
name       times over variables   plus over tuples            log-space form
=========  =====================  ==========================  ============================
add-mult   prod_v p_v(x_v)        sum_s                       sum of logs; logsumexp
max-mult   prod_v p_v(x_v)        max_s                       sum of logs; max
min-max    min_v p_v(x_v)         max_s                       min of logs; max
=========  =====================  ==========================  ============================

Example (the ISED blog example, add-mult): p_a=[.1,.6,.3], p_b=[.2,.1,.7], samples (1,2),(2,1)
both give a+b=3, so y=3 gets .6*.7 + .3*.1 = .45.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

import torch

from ._math import safe_log

__all__ = ["SEMIRINGS", "Semiring", "semiring"]


@dataclass(frozen=True)
@final
class Semiring:
    """``times`` in {"sum", "min"} over log terms; ``plus`` in {"logsumexp", "max"} over tuples."""

    name: str
    times: str
    plus: str

    def combine(self, log_terms: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        """Log-score of each tuple from per-variable log-probs ``[..., V]`` (invalid entries ignored;
        ``valid`` None: every entry is valid)."""
        if self.times == "sum":
            return (log_terms if valid is None else log_terms.masked_fill(~valid, 0.0)).sum(dim=-1)
        return (log_terms if valid is None else log_terms.masked_fill(~valid, float("inf"))).amin(dim=-1)

    def aggregate(self, scores: torch.Tensor, outputs: torch.Tensor, num_outputs: int) -> torch.Tensor:
        """Per-output log-value ``[B, num_outputs]`` from tuple scores and output indices ``[B, k]``.

        Tuples with output -1 (failed) are dropped; outputs no tuple reached get -inf.
        """
        batch = scores.shape[0]
        ok = outputs >= 0
        index = outputs.clamp(min=0)
        neg_inf = torch.full((batch, num_outputs), float("-inf"), dtype=scores.dtype, device=scores.device)
        masked = torch.where(ok, scores, float("-inf"))
        peak = neg_inf.scatter_reduce(1, index, masked, reduce="amax", include_self=True)
        if self.plus == "max":
            return peak
        shift = peak.detach().masked_fill(torch.isinf(peak.detach()), 0.0)
        expd = torch.exp(masked - shift.gather(1, index))
        total = torch.zeros_like(neg_inf).scatter_add(1, index, expd)
        return safe_log(total) + shift


SEMIRINGS = {
    "add-mult": Semiring("add-mult", times="sum", plus="logsumexp"),
    "max-mult": Semiring("max-mult", times="sum", plus="max"),
    "min-max": Semiring("min-max", times="min", plus="max"),
}


def semiring(name: str | Semiring) -> Semiring:
    """Look a semiring up by name; raises naming the valid ones."""
    if isinstance(name, Semiring):
        return name
    try:
        return SEMIRINGS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown semiring {name!r}; valid semirings: {', '.join(sorted(SEMIRINGS))}") from None
