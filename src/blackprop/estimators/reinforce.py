"""REINFORCE: the score-function (log-derivative) estimator with a 0/1 reward (Williams, 1992).

For each example draw k tuples x_s ~ prod_v p_v, run the program and reward a tuple when its
output is the label, f_s = 1[P(x_s) = y] (compared by output-space index, so an ``Open`` space's
``canonical`` decides equality, e.g. floats rounded to 0.01). Then

    grad E[f] ~= 1/k sum_s (f_s - b_s) grad sum_v log p_v(x_{s,v})

is unbiased for any baseline b_s independent of x_s: "none" (b = 0) or "leave-one-out"
(b_s = mean of the other k-1 rewards; Kool et al., "Buy 4 REINFORCE samples, get a baseline
for free!", 2019). The estimate of p(y) = E[f] is p_hat = mean_s f_s.

``objective`` turns that into a loss:

* "log" (default, as the ISED reference code did for REINFORCE and IndeCateR): minimise
  -log p(y); value -log p_hat, gradient -grad_hat / p_hat (0 where p_hat = 0, where grad_hat
  is 0 too).
* "linear": minimise 1 - p(y); value 1 - p_hat, gradient -grad_hat (unbiased).

Example:
    >>> import torch, blackprop as bp
    >>> add = bp.Program(lambda a, b: a + b, (bp.Discrete(range(3)),) * 2, bp.Discrete(range(5)))
    >>> layer = bp.BlackBox(add, bp.REINFORCE(num_samples=100, baseline="leave-one-out"), seed=0)
    >>> p = torch.softmax(torch.zeros(1, 3, requires_grad=True), -1)
    >>> layer.loss(p, p, target=[2]).backward()

This module also holds the reward and objective the other score-function estimators (IndeCateR, NASR) share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, final

import torch

from ..beliefs import Beliefs
from ..program import BaseProgram
from ..spaces import output_matches
from ._base import Estimator, choice, draw, positive, setting, value_with_gradient

__all__ = ["REINFORCE", "objective_loss", "rewards"]

OBJECTIVES = ("log", "linear")
#: -log p_hat is reported as at most this (as nll_of_target clamps log q at -100).
MAX_NLL = 100.0


@final
@dataclass(frozen=True)
class REINFORCE(Estimator):
    """REINFORCE with ``num_samples`` tuples per example and a 0/1 reward.

    Args:
        num_samples: k, tuples drawn per example (program calls <= k per example, fewer with the cache).
        baseline: "none" or "leave-one-out" (needs num_samples >= 2).
        objective: "log" (-log p(y)) or "linear" (1 - p(y)); see the module docstring.
    """

    num_samples: int = setting(100, positive)
    baseline: str = setting("none", choice("none", "leave-one-out"))
    objective: str = setting("log", choice(*OBJECTIVES))

    name: ClassVar[str] = "reinforce"

    def check(self) -> None:
        if self.baseline == "leave-one-out" and self.num_samples < 2:
            raise ValueError(
                f"REINFORCE(baseline='leave-one-out'): needs num_samples >= 2 (the other samples form the "
                f"baseline), got num_samples={self.num_samples}; raise num_samples or use baseline='none'"
            )

    def loss(
        self, program: BaseProgram, beliefs: Beliefs, target: torch.Tensor, *, generator: Any, state: Any
    ) -> torch.Tensor:
        drawn = draw(program, beliefs, self.num_samples, generator)
        reward = rewards(drawn.outputs, target)  # [B, k]
        baseline = leave_one_out_mean(reward) if self.baseline == "leave-one-out" else torch.zeros_like(reward)
        surrogate = ((reward - baseline) * drawn.log_p).mean(dim=1)  # its gradient is grad_hat
        return objective_loss(reward.mean(dim=1), surrogate, self.objective)


def rewards(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The reward of each sampled output: 1[P(x) = y] as floats, ``outputs [B, ...]`` against ``target [B]``.

    For a ``Product`` output (``outputs [B, k, m]`` against ``target [B, m]``) the reward is the share
    of the m components that match, f = 1/m sum_c 1[P(x)_c = y_c]: 1 exactly when the whole output
    matches, and a signal cell by cell where a whole structured output (a sudoku board) is never
    sampled exactly, as ISED aggregates a Product output per component. The estimators stay
    unbiased for the gradient of E[f] under this f. Failed outputs (-1) get 0.

    >>> rewards(torch.tensor([[[1, 2], [1, 0], [-1, -1]]]), torch.tensor([[1, 2]])).tolist()
    [[1.0, 0.5, 0.0]]
    """
    target = target.to(outputs.device)
    if outputs.dim() == target.dim() + 1 and outputs.dim() >= 3:  # a Product output: per component
        return (outputs == target.unsqueeze(1)).float().mean(dim=-1)
    return output_matches(outputs, target).float()


def leave_one_out_mean(reward: torch.Tensor) -> torch.Tensor:
    """b_s = (sum_t f_t - f_s) / (k - 1) over the last dimension (k >= 2)."""
    k = reward.shape[-1]
    return (reward.sum(dim=-1, keepdim=True) - reward) / (k - 1)


def objective_loss(estimate: torch.Tensor, surrogate: torch.Tensor, objective: str) -> torch.Tensor:
    """Batch-mean loss from p_hat ``[B]`` (no gradient needed) and a surrogate ``[B]`` whose gradient is grad_hat.

    "log": value -log p_hat (at most ``MAX_NLL``), gradient -grad_hat / p_hat (0 where p_hat = 0);
    "linear": value 1 - p_hat, gradient -grad_hat.
    """
    estimate = estimate.detach().to(surrogate.dtype)
    if objective == "linear":
        return value_with_gradient(1.0 - estimate, -surrogate).mean()
    hit = estimate > 0
    value = (-estimate.log()).clamp(max=MAX_NLL)  # log 0 = -inf -> MAX_NLL
    weight = torch.where(hit, 1.0 / estimate.clamp(min=torch.finfo(estimate.dtype).tiny), torch.zeros_like(estimate))
    return value_with_gradient(value, -weight * surrogate).mean()
