"""Exact: enumerate every symbol tuple and sum probabilities per output.

    p(y) = sum_{x : P(x) = y} prod_v p_v(x_v)

This is what an exact probabilistic logic program (DeepProbLog, Scallop without top-k) computes
on small spaces; the loss is -log p(y). The program runs once per tuple of the product space
(memoised, so only on the first batch). Sequence inputs are enumerated for each distinct length
pattern in the batch.

Example (p_a=[.1,.6,.3], p_b=[.2,.1,.7], P=a+b):
    >>> import torch, blackprop as bp
    >>> add = bp.Program(lambda a, b: a + b, (bp.Discrete(range(3)),) * 2, bp.Discrete(range(5)))
    >>> p = bp.BlackBox(add, bp.Exact())(torch.tensor([[.1, .6, .3]]), torch.tensor([[.2, .1, .7]]))
    >>> [round(v, 4) for v in p[0].tolist()]
    [0.02, 0.13, 0.19, 0.45, 0.21]
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import ClassVar, final

import torch

from ..beliefs import Beliefs
from ..program import BaseProgram
from ..semirings import SEMIRINGS
from ._base import ExactLikelihood, positive, setting

__all__ = ["Exact", "TooLargeToEnumerate"]


class TooLargeToEnumerate(ValueError):
    pass


@final
@dataclass(frozen=True)
class Exact(ExactLikelihood):
    """Exhaustive enumeration when the input product space has at most ``max_tuples`` tuples."""

    max_tuples: int = setting(1_000_000, positive)

    name: ClassVar[str] = "exact"
    differentiable_forward: ClassVar[bool] = True

    def log_probs(self, program: BaseProgram, beliefs: Beliefs) -> torch.Tensor:
        """log p(y) ``[B, |outputs|]``."""
        ring = SEMIRINGS["add-mult"]
        sizes = beliefs.sizes.tolist()
        if beliefs.dense:  # every position valid in every example: one space, no length patterns
            total = math.prod(sizes)
            self._check_size(total)
            tuples = (all_tuples(tuple(sizes), beliefs.device) if total <= CACHED_TUPLES
                      else enumerate_tuples(sizes, [True] * len(sizes), beliefs.device))
            outputs = program.evaluate(tuples)
            expanded = tuples.unsqueeze(0).expand(beliefs.batch_size, -1, -1)
            scores = ring.combine(beliefs.log_prob_terms(expanded, drawn=True), None)
            return ring.aggregate(scores, outputs.unsqueeze(0).expand(beliefs.batch_size, -1), program.output.size)
        patterns, group = torch.unique(beliefs.valid, dim=0, return_inverse=True)
        self._check_size(sum(math.prod(s for s, ok in zip(sizes, p, strict=True) if ok) for p in patterns.tolist()))
        enumerated = []
        for pattern in patterns.tolist():
            tuples = enumerate_tuples(sizes, pattern, beliefs.device)
            enumerated.append((tuples, program.evaluate(tuples)))
        result = torch.full(
            (beliefs.batch_size, program.output.size), float("-inf"), dtype=beliefs.probs.dtype, device=beliefs.device
        )
        for index, (tuples, outputs) in enumerate(enumerated):
            rows = (group == index).nonzero().squeeze(1)
            sub = Beliefs(beliefs.probs[rows], beliefs.log_probs[rows], beliefs.valid[rows], beliefs.sizes)
            expanded = tuples.unsqueeze(0).expand(rows.shape[0], -1, -1)
            scores = ring.combine(sub.log_prob_terms(expanded), expanded >= 0)
            log_p = ring.aggregate(scores, outputs.unsqueeze(0).expand(rows.shape[0], -1), program.output.size)
            result = result.index_copy(0, rows, log_p)
        return result

    def _check_size(self, total: int) -> None:
        if total > self.max_tuples:
            raise TooLargeToEnumerate(
                f"Exact: the input space has {total:,} tuples, above max_tuples={self.max_tuples:,}; "
                "use a sampling estimator (e.g. ISED) or raise max_tuples"
            )


#: spaces up to this many tuples keep their enumeration between batches (at most 16 spaces, 8 MB each for 16 inputs)
CACHED_TUPLES = 65_536


@functools.lru_cache(maxsize=16)
def all_tuples(sizes: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Every tuple ``[prod(sizes), V]`` of a space with no invalid position, lexicographic (cached: the
    space of a program's dense inputs is the same in every batch; never modified in place)."""
    return enumerate_tuples(list(sizes), [True] * len(sizes), device)


def enumerate_tuples(sizes: list[int], valid: list[bool], device: torch.device) -> torch.Tensor:
    """All tuples ``[M, V]`` over the valid variables (-1 elsewhere), in lexicographic order."""
    ranges = [torch.arange(s, device=device) if ok else torch.full((1,), -1, device=device) for s, ok in zip(sizes, valid, strict=True)]
    return torch.cartesian_prod(*ranges).reshape(-1, len(sizes))
