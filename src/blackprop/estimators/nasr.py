"""NASR-style policy gradient: one sample per example, batch-standardised 0/1 reward.

Cornelio, Stuehmer, Hu and Hospedales, "Learning where and when to reason in neuro-symbolic
inference" (NASR), ICLR 2023; the ISED paper's NASR baseline trains perception this way:

    x_b ~ prod_v p_{b,v},   f_b = 1[P(x_b) = y_b],   r_b = (f_b - mean_batch f) / (std_batch f + eps)
    loss = 1/B sum_b -log p(x_b) * r_b

The reported value is 1 - mean_b f_b (the share of sampled outputs that are wrong); the gradient
is that of the policy loss above and reaches the network (the reference code's NASR loss for
MNIST, HWF, leaf and scene was detached and never trained). With a batch of one, or a batch
whose rewards are all equal, r = 0 and the step carries no gradient.

Example:
    >>> import torch, blackprop as bp
    >>> add = bp.Program(lambda a, b: a + b, (bp.Discrete(range(3)),) * 2, bp.Discrete(range(5)))
    >>> layer = bp.BlackBox(add, bp.NASR(), seed=0)
    >>> p = torch.softmax(torch.zeros(8, 3, requires_grad=True), -1)
    >>> layer.loss(p, p, target=[2] * 8).backward()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, final

import torch

from ..beliefs import Beliefs
from ..program import BaseProgram
from ._base import Estimator, draw, greater_than, setting, value_with_gradient
from .reinforce import rewards

__all__ = ["NASR"]


@final
@dataclass(frozen=True)
class NASR(Estimator):
    """NASR-style policy gradient: one sampled tuple per example, reward standardised over the batch.

    Args:
        eps: added to the batch standard deviation (the reference used float32 machine epsilon).
    """

    eps: float = setting(1.1920929e-07, greater_than(0))

    name: ClassVar[str] = "nasr"

    def loss(
        self, program: BaseProgram, beliefs: Beliefs, target: torch.Tensor, *, generator: Any, state: Any
    ) -> torch.Tensor:
        drawn = draw(program, beliefs, 1, generator)  # one tuple per example
        reward = rewards(drawn.outputs, target).squeeze(1).to(beliefs.probs.dtype)  # [B]
        standardised = (reward - reward.mean()) / (reward.std(unbiased=False) + self.eps)
        policy = -(drawn.log_p.squeeze(1) * standardised).mean()
        return value_with_gradient(1.0 - reward.mean(), policy)
