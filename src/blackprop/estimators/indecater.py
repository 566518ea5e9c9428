"""IndeCateR and IndeCateR+: Rao-Blackwellised score functions for independent categoricals.

De Smet, Sansone and Zuidberg Dos Martires, "Differentiable Sampling of Categorical Distributions
Using the CatLog-Derivative Trick", NeurIPS 2023.

With f(x) = 1[P(x) = y] and independent variables x_d ~ p_d, the gradient of E[f] is

    grad E[f] = sum_d sum_k grad p_d(k) * E_{x_{-d}}[ f(x with x_d = k) ]

and IndeCateR estimates the inner expectation with N samples, substituting every value k of
every variable d:

    grad_hat = sum_d sum_k grad p_d(k) * 1/N sum_s f(x_s with x_{s,d} = k)      (D*K*N program calls)

* ``IndeCateR``: the same N samples x_s serve every variable d.
* ``IndeCateR+``: each variable d gets its own block of N samples (N*D samples in all), so the
  blocks are independent; same D*K*N calls.

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
from typing import Any, ClassVar

import torch

from ..beliefs import Beliefs
from ..program import Program
from ._base import Estimator, check_choice, check_positive_int
from .reinforce import OBJECTIVES, objective_loss, rewards, sampled_distribution

__all__ = ["IndeCateR", "IndeCateRPlus", "indecater_loss"]


@dataclass(frozen=True)
class IndeCateR(Estimator):
    """IndeCateR with ``num_samples`` (N) samples shared by all variables: D*K*N program calls per example.

    Args:
        num_samples: N.
        objective: "log" (-log p(y)) or "linear" (1 - p(y)).
    """

    num_samples: int = 100
    objective: str = "log"

    name: ClassVar[str] = "indecater"

    def __post_init__(self) -> None:
        check_positive_int("IndeCateR", "num_samples", self.num_samples)
        check_choice("IndeCateR", "objective", self.objective, OBJECTIVES)

    def draw(self, beliefs: Beliefs, generator: torch.Generator | None) -> torch.Tensor:
        """Samples per variable block ``[B, D, N, V]``: one set of N, seen by every block."""
        tuples = beliefs.sample(self.num_samples, generator)
        return tuples.unsqueeze(1).expand(-1, beliefs.num_variables, -1, -1)

    def forward(self, program: Program, beliefs: Beliefs, *, generator: Any, state: Any) -> torch.Tensor:
        return sampled_distribution(program, beliefs, self.num_samples, generator)

    def loss(
        self, program: Program, beliefs: Beliefs, target: torch.Tensor, *, generator: Any, state: Any
    ) -> torch.Tensor:
        return indecater_loss(program, beliefs, target, self.draw(beliefs, generator), self.objective)


@dataclass(frozen=True)
class IndeCateRPlus(Estimator):
    """IndeCateR+: a separate block of ``num_samples`` (N) samples per variable (N*D samples, D*K*N calls).

    Args:
        num_samples: N, samples per variable block.
        objective: "log" (-log p(y)) or "linear" (1 - p(y)).
    """

    num_samples: int = 100
    objective: str = "log"

    name: ClassVar[str] = "indecater+"

    def __post_init__(self) -> None:
        check_positive_int("IndeCateRPlus", "num_samples", self.num_samples)
        check_choice("IndeCateRPlus", "objective", self.objective, OBJECTIVES)

    def draw(self, beliefs: Beliefs, generator: torch.Generator | None) -> torch.Tensor:
        """Samples per variable block ``[B, D, N, V]``, independent across blocks."""
        D = beliefs.num_variables
        tuples = beliefs.sample(self.num_samples * D, generator)
        return tuples.reshape(beliefs.batch_size, D, self.num_samples, D)

    def forward(self, program: Program, beliefs: Beliefs, *, generator: Any, state: Any) -> torch.Tensor:
        return sampled_distribution(program, beliefs, self.num_samples * beliefs.num_variables, generator)

    def loss(
        self, program: Program, beliefs: Beliefs, target: torch.Tensor, *, generator: Any, state: Any
    ) -> torch.Tensor:
        return indecater_loss(program, beliefs, target, self.draw(beliefs, generator), self.objective)


def indecater_loss(
    program: Program, beliefs: Beliefs, target: torch.Tensor, blocks: torch.Tensor, objective: str
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
