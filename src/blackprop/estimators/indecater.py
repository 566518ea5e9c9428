"""IndeCateR and IndeCateR+: Rao-Blackwellised score functions for independent categoricals.

De Smet, Sansone and Zuidberg Dos Martires, "Differentiable Sampling of Categorical Distributions
Using the CatLog-Derivative Trick", NeurIPS 2023.

With f(x) = 1[P(x) = y] and independent variables x_d ~ p_d, the gradient of E[f] is

    grad E[f] = sum_d sum_k grad p_d(k) * E_{x_{-d}}[ f(x with x_d = k) ]

and IndeCateR estimates the inner expectation with N samples, substituting every value k of
every variable d:

    grad_hat = sum_d sum_k grad p_d(k) * 1/N sum_s f(x_s with x_{s,d} = k)      (D*K*N program calls)

* ``variant="shared"`` (IndeCateR): the same N samples x_s serve every variable d.
* ``variant="per-variable"`` (IndeCateR+): each variable d gets its own block of N samples (N*D
  samples in all), so the blocks are independent; same D*K*N calls.

One class holds both; ``bp.IndeCateRPlus(...)`` and the registry name "indecater+" build it with
``variant="per-variable"``.

Padded sequence positions are never substituted (they contribute nothing) and value k of a
variable is only tried where k is one of its classes. Every tuple goes through
``Program.evaluate``, so the memo cache answers repeats. p(y) is estimated by the
Rao-Blackwellised average over variables, p_hat = 1/D sum_d sum_k p_d(k) f_bar_{d,k}, and
``objective`` ("log" by default, or "linear") turns (p_hat, grad_hat) into a loss as REINFORCE does.

Example:
    >>> import torch, blackprop as bp
    >>> add = bp.Program(lambda a, b: a + b, (bp.Discrete(range(3)),) * 2, bp.Discrete(range(5)))
    >>> layer = bp.BlackBox(add, bp.IndeCateR(num_samples=10), seed=0)
    >>> p = torch.softmax(torch.zeros(1, 3, requires_grad=True), -1)
    >>> layer.loss(p, p, target=[2]).backward()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, final

import torch

from ..beliefs import Beliefs
from ..program import BaseProgram
from ._base import Estimator, choice, positive, setting
from .reinforce import OBJECTIVES, objective_loss, rewards

__all__ = ["IndeCateR", "IndeCateRPlus", "indecater_loss"]


@final
@dataclass(frozen=True)
class IndeCateR(Estimator):
    """IndeCateR (``variant="shared"``) or IndeCateR+ (``"per-variable"``): D*K*N program calls per example.

    Args:
        num_samples: N, samples (per variable block for IndeCateR+).
        objective: "log" (-log p(y)) or "linear" (1 - p(y)).
        variant: "shared" (one set of N samples seen by every variable, IndeCateR) or
            "per-variable" (an independent block of N samples per variable, IndeCateR+).
    """

    num_samples: int = setting(100, positive)
    objective: str = setting("log", choice(*OBJECTIVES))
    variant: str = setting("shared", choice("shared", "per-variable"))

    name: ClassVar[str] = "indecater"

    def draw(self, beliefs: Beliefs, generator: torch.Generator | None) -> torch.Tensor:
        """Samples per variable block ``[B, D, N, V]``: shared by every block, or independent blocks."""
        D = beliefs.num_variables
        if self.variant == "shared":
            return beliefs.sample(self.num_samples, generator).unsqueeze(1).expand(-1, D, -1, -1)
        return beliefs.sample(self.num_samples * D, generator).reshape(beliefs.batch_size, D, self.num_samples, D)

    def forward_samples(self, beliefs: Beliefs) -> int:
        return self.num_samples * (1 if self.variant == "shared" else beliefs.num_variables)

    def loss(
        self, program: BaseProgram, beliefs: Beliefs, target: torch.Tensor, *, generator: Any, state: Any
    ) -> torch.Tensor:
        return indecater_loss(program, beliefs, target, self.draw(beliefs, generator), self.objective)


def IndeCateRPlus(num_samples: int = 100, objective: str = "log") -> IndeCateR:  # noqa: N802 (the paper's name)
    """IndeCateR+: ``IndeCateR(num_samples, objective, variant="per-variable")``."""
    return IndeCateR(num_samples=num_samples, objective=objective, variant="per-variable")


def indecater_loss(
    program: BaseProgram, beliefs: Beliefs, target: torch.Tensor, blocks: torch.Tensor, objective: str
) -> torch.Tensor:
    """The IndeCateR loss from sample blocks ``[B, D, N, V]`` (block d is the one variable d is swept in)."""
    B, D, N, V = blocks.shape
    C = beliefs.probs.shape[2]
    values = torch.arange(C, device=blocks.device)
    # tried[b, d, k]: variable d of example b is valid and k is one of its classes
    tried = beliefs.valid.unsqueeze(2) & (values.unsqueeze(0) < beliefs.sizes.unsqueeze(1)).unsqueeze(0)
    swept = blocks.unsqueeze(2).expand(B, D, C, N, V).clone()
    for d in range(D):
        swept[:, d, :, :, d] = values[None, :, None]
    # only (example, variable, value) triples that are tried reach the program: D*K*N calls per example
    outputs = program.evaluate(swept[tried])  # [T, N]
    extra = tuple(target.shape[1:])  # (m,) for a Product output's target [B, m]
    targets = target.to(blocks.device).reshape(B, 1, 1, *extra).expand(B, D, C, *extra)[tried]
    f_bar = torch.zeros(B, D, C, dtype=beliefs.probs.dtype, device=blocks.device)
    f_bar[tried] = rewards(outputs, targets).mean(dim=1).to(f_bar.dtype)  # 1/N sum_s f(x_s with x_d = k)
    surrogate = (beliefs.probs * f_bar).sum(dim=(1, 2))  # gradient: sum_d sum_k grad p_d(k) f_bar_dk
    per_variable = (beliefs.probs.detach() * f_bar).sum(dim=2)  # [B, D], each an estimate of p(y)
    num_valid = beliefs.valid.sum(dim=1)
    estimate = per_variable.sum(dim=1) / num_valid.clamp(min=1)
    empty = num_valid == 0
    if bool(empty.any()):  # an empty sequence: nothing to sweep, its drawn samples decide p_hat
        drawn = rewards(program.evaluate(blocks[empty, 0]), target[empty]).mean(dim=1)
        estimate = estimate.masked_scatter(empty, drawn.to(estimate.dtype))
    return objective_loss(estimate, surrogate, objective)
