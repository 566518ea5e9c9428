"""A-NeSI: a learned surrogate of the program's output distribution (van Krieken et al., NeurIPS 2023).

"A-NeSI: A Scalable Approximate Method for Probabilistic Neurosymbolic Inference". A network
q(y | P) maps the beliefs P (every variable's distribution) to a distribution over outputs and
stands in for the exact p(y | P) = sum_{x : P(x) = y} prod_v P_v(x_v). Each training step:

1. remember the batch's beliefs (a ring buffer of the last ``num_beliefs``) and fit a prior to
   them: per variable, a logistic-normal over centred log-probabilities, mean mu and standard
   deviation sigma per class (a closed-form stand-in for A-NeSI's Dirichlet fit);
2. sample ``num_samples`` worlds: P = softmax(mu + s * eps), half with s = sigma (where the beliefs
   are) and half with s = max(sigma, ``broad_std``) (the simplex around them, corners included;
   the reference got the same breadth from a strong L2 pull of the Dirichlet's alpha towards 0);
   then x ~ P, y = P(x) (one program call per distinct x, through the cache); train q by
   minimising -log q(y | P). q has one extra outcome, "the program failed", trained on the worlds
   where the call failed, so q(y | P) estimates p(y) with the failure mass left out (not
   p(y | success), which would reward the network for tuples that make the program fail);
3. train perception by minimising -log q(y_label | P_network), with q held fixed; during the first
   ``warmup_steps`` steps only q learns.

The broad half and the warm-up keep the network from following an untrained q's arbitrary but
consistent slopes into one confident class early on.

Both parts go into one loss, ``perception_nll + (surrogate_nll - surrogate_nll.detach())``: the
value is the perception NLL and the gradient trains q on the worlds and the network on the
labels. q is learned state: ``build`` returns it, ``BlackBox`` registers it, and the trainer
optimises it with the network (``model.parameters()`` + ``layer.parameters()``). ``forward``
returns q(y | P). Needs a ``Discrete`` output space (q has one output unit per value).

Example:
    >>> import torch, blackprop as bp
    >>> add = bp.Program(lambda a, b: a + b, (bp.Discrete(range(3)),) * 2, bp.Discrete(range(5)))
    >>> layer = bp.BlackBox(add, bp.ANeSI(num_samples=100, hidden_size=64), seed=0)
    >>> p = torch.softmax(torch.zeros(4, 3, requires_grad=True), -1)
    >>> layer(p, p).shape
    torch.Size([4, 5])
    >>> layer.loss(p, p, target=[2, 0, 4, 1]).backward()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, final

import torch
from torch import nn

from .._math import safe_log
from ..beliefs import Beliefs
from ..program import BaseProgram
from ..spaces import Discrete, Sequence
from ._base import Estimator, at_least, nll_of_target, positive, setting, value_with_gradient

__all__ = ["ANeSI", "Surrogate"]

#: beliefs are floored at this before taking logs for the prior (log 1e-6 = -13.8).
PROBABILITY_FLOOR = 1e-6


@final
@dataclass(frozen=True)
class ANeSI(Estimator):
    """A-NeSI in its "predict only" form: q(y | P) trained on prior samples, perception on log q.

    Args:
        num_samples: worlds (P, x, y) sampled per step to train q (the reference used 600 for sum2).
        hidden_size: width of q's hidden layers (reference: 800 for sum2).
        num_layers: number of hidden layers of q (reference: 3).
        num_beliefs: recent beliefs the prior is fitted to (reference K_beliefs: 2500).
        broad_std: the least standard deviation of the broad half of the prior (in logits).
        warmup_steps: steps at the start during which only q learns (perception gets no gradient).
    """

    num_samples: int = setting(100, positive)
    hidden_size: int = setting(800, positive)
    num_layers: int = setting(3, positive)
    num_beliefs: int = setting(2500, positive)
    broad_std: float = setting(6.0, at_least(0.0))
    warmup_steps: int = setting(25, at_least(0))

    name: ClassVar[str] = "anesi"
    differentiable_forward: ClassVar[bool] = True

    def build(self, program: BaseProgram) -> Surrogate:
        if not isinstance(program.output, Discrete):
            raise ValueError(
                f"ANeSI: program {program.name!r} has output space {program.output!r}, but A-NeSI needs a "
                "Discrete one: its surrogate q(y | beliefs) has one output unit per value, fixed when it is "
                "built, while an Open space's vocabulary grows as the program returns new values. Declare "
                "the outputs with Discrete(values), or use an estimator that handles Open outputs (ised, "
                "reinforce, indecater, indecater+, nasr)"
            )
        sizes = [s.element.size if isinstance(s, Sequence) else s.size for s in program.inputs
                 for _ in range(s.max_len if isinstance(s, Sequence) else 1)]
        return Surrogate(sizes, program.output.size, self.hidden_size, self.num_layers, self.num_beliefs)

    def forward(self, program: BaseProgram, beliefs: Beliefs, *, generator: Any, state: Any) -> torch.Tensor:
        return surrogate_of(state).log_q(beliefs.probs, beliefs.valid).exp()

    def loss(
        self, program: BaseProgram, beliefs: Beliefs, target: torch.Tensor, *, generator: Any, state: Any
    ) -> torch.Tensor:
        q = surrogate_of(state)
        q.remember(beliefs.probs.detach(), beliefs.valid)
        world_probs, world_valid = q.sample_prior(self.num_samples, self.broad_std, generator)
        worlds = Beliefs(world_probs, safe_log(world_probs), world_valid, beliefs.sizes).sample(1, generator)
        world_outputs = program.evaluate(worlds).squeeze(1)  # [M]; -1 where the program failed
        failure = program.output.size  # q's last outcome: the program failed on this world
        outcome = torch.where(world_outputs >= 0, world_outputs, torch.full_like(world_outputs, failure))
        log_q_worlds = q.log_q(world_probs, world_valid, with_failure=True)
        surrogate_nll = -log_q_worlds.gather(1, outcome.unsqueeze(1)).mean()
        perception_nll = nll_of_target(q.log_q(beliefs.probs, beliefs.valid, frozen=True), target)
        if int(q.steps) < self.warmup_steps:
            perception_nll = perception_nll.detach()
        q.steps.add_(1)
        return value_with_gradient(perception_nll, surrogate_nll)


@final
class Surrogate(nn.Module):
    """q(y | P): an MLP on the flattened beliefs and valid flags (one output unit per value, plus one
    for failure), and the buffer of recent beliefs.

    The buffer (``recent_probs``, ``recent_valid``, ``filled``, ``cursor``) is part of the state dict,
    so a checkpointed run resumes with the same prior.
    """

    class_mask: torch.Tensor
    recent_probs: torch.Tensor
    recent_valid: torch.Tensor
    filled: torch.Tensor
    cursor: torch.Tensor
    steps: torch.Tensor

    def __init__(self, sizes: list[int], num_outputs: int, hidden_size: int, num_layers: int, num_beliefs: int):
        super().__init__()
        V, C = len(sizes), max(sizes)
        layers: list[nn.Module] = []
        width = V * C + V
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_size), nn.ReLU()]
            width = hidden_size
        layers.append(nn.Linear(width, num_outputs + 1))  # the last unit: "the program failed"
        self.net = nn.Sequential(*layers)
        self.register_buffer("class_mask", torch.arange(C).unsqueeze(0) < torch.tensor(sizes).unsqueeze(1))
        self.register_buffer("recent_probs", torch.zeros(num_beliefs, V, C))
        self.register_buffer("recent_valid", torch.zeros(num_beliefs, V, dtype=torch.bool))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("cursor", torch.zeros((), dtype=torch.long))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def log_q(
        self, probs: torch.Tensor, valid: torch.Tensor, frozen: bool = False, with_failure: bool = False
    ) -> torch.Tensor:
        """log q(y | P) ``[M, |outputs|]`` (``with_failure``: and log q(failure | P) as a last column);
        with ``frozen`` the gradient reaches P but not q's weights."""
        features = torch.cat([(probs * valid.unsqueeze(2)).flatten(1), valid.to(probs.dtype)], dim=1)
        if frozen:
            weights = {name: p.detach() for name, p in self.net.named_parameters()}
            logits = torch.func.functional_call(self.net, weights, (features,))
        else:
            logits = self.net(features)
        log_q = torch.log_softmax(logits, dim=1)
        return log_q if with_failure else log_q[:, :-1]

    @torch.no_grad()
    def remember(self, probs: torch.Tensor, valid: torch.Tensor) -> None:
        """Write a batch of beliefs into the ring buffer (the oldest are overwritten)."""
        capacity = self.recent_probs.shape[0]
        probs, valid = probs[-capacity:], valid[-capacity:]
        slots = (self.cursor + torch.arange(probs.shape[0], device=probs.device)) % capacity
        self.recent_probs[slots] = probs.to(self.recent_probs.dtype)
        self.recent_valid[slots] = valid
        self.cursor.copy_((self.cursor + probs.shape[0]) % capacity)
        self.filled.copy_(torch.clamp(self.filled + probs.shape[0], max=capacity))

    @torch.no_grad()
    def fit_prior(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std ``[V, C]`` of the centred log-beliefs, per variable over the rows where it is valid."""
        n = int(self.filled)
        probs, valid = self.recent_probs[:n], self.recent_valid[:n].unsqueeze(2)
        logs = probs.clamp(min=PROBABILITY_FLOOR).log().masked_fill(~self.class_mask, 0.0)
        centred = logs - logs.sum(dim=2, keepdim=True) / self.class_mask.sum(dim=1, keepdim=True)
        count = valid.sum(dim=0).clamp(min=1)
        mean = (centred * valid).sum(dim=0) / count
        variance = (((centred - mean) ** 2) * valid).sum(dim=0) / count
        return mean.masked_fill(~self.class_mask, 0.0), variance.sqrt().masked_fill(~self.class_mask, 0.0)

    @torch.no_grad()
    def sample_prior(
        self, num_worlds: int, broad_std: float, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``num_worlds`` belief tensors ``[M, V, C]`` from the prior, with valid patterns of remembered rows.

        P = softmax(mu + s * eps), eps ~ N(0, 1): the first half with s = sigma (where the beliefs
        are), the second with s = max(sigma, broad_std) (the simplex around them, corners included).
        """
        mean, std = self.fit_prior()
        near = num_worlds // 2
        scale = torch.cat([std.expand(near, -1, -1), std.clamp(min=broad_std).expand(num_worlds - near, -1, -1)])
        noise = torch.randn((num_worlds, *mean.shape), generator=generator, device=mean.device, dtype=mean.dtype)
        logits = (mean + scale * noise).masked_fill(~self.class_mask, float("-inf"))
        rows = torch.randint(int(self.filled), (num_worlds,), generator=generator, device=mean.device)
        return torch.softmax(logits, dim=2), self.recent_valid[rows]


def surrogate_of(state: Any) -> Surrogate:
    if not isinstance(state, Surrogate):
        raise TypeError(
            f"ANeSI: expected its Surrogate as state, got {type(state).__name__}; use it through "
            "bp.BlackBox(program, bp.ANeSI()), which builds and registers the surrogate"
        )
    return state
