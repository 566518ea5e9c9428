"""The estimator interface and the mechanics every estimator shares.

An estimator is a small frozen dataclass of hyper-parameters. Given the program and the
network's ``Beliefs`` it produces

* ``forward(...)``: an output distribution ``[batch, |outputs|]`` (differentiable where the
  estimator's gradient flows through it, e.g. ISED and Exact), and
* ``loss(...)``: a scalar whose gradient w.r.t. the beliefs is the estimator's gradient. Score-
  function estimators return ``value + (surrogate - surrogate.detach())`` so the number reads as
  the true loss while the gradient is the estimator's.

Estimators that learn something of their own (A-NeSI's surrogate) return it from ``build``; the
``BlackBox`` layer registers it as a sub-module, so it is saved, moved to a device and optimised
with the network.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch

from ..beliefs import Beliefs
from ..program import Program

__all__ = ["Estimator", "check_positive_int", "check_choice", "nll_of_target"]


@dataclass(frozen=True)
class Estimator:
    """Abstract base: subclasses set ``name`` and implement ``forward`` and ``loss``."""

    name: ClassVar[str] = "estimator"
    #: True when ``forward``'s output carries the estimator's gradient.
    differentiable_forward: ClassVar[bool] = False

    def build(self, program: Program) -> torch.nn.Module | None:
        """Learned state this estimator needs (None for most)."""
        return None

    def forward(
        self, program: Program, beliefs: Beliefs, *, generator: torch.Generator | None, state: Any
    ) -> torch.Tensor:
        raise NotImplementedError

    def loss(
        self,
        program: Program,
        beliefs: Beliefs,
        target: torch.Tensor,
        *,
        generator: torch.Generator | None,
        state: Any,
    ) -> torch.Tensor:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """Hyper-parameters as a plain dict (for result files)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def check_positive_int(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}({name}=...): must be an int >= 1, got {value!r}")


def check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{owner}({name}=...): unknown value {value!r}; valid: {', '.join(choices)}")


def nll_of_target(log_probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of -log q(target) over the batch, with log q clamped at -100 (as torch's BCE does)."""
    picked = log_probs.gather(1, target.unsqueeze(1)).squeeze(1)
    return -picked.clamp(min=-100.0).mean()
