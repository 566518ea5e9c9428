"""The estimator interface and the mechanics every estimator shares.

An estimator is a small frozen dataclass of hyper-parameters. Given the program and the
network's ``Beliefs`` it produces

* ``forward(...)``: an output distribution ``[batch, |outputs|]`` (differentiable where the
  estimator's gradient flows through it, e.g. ISED and Exact). The default is the sampling
  forward: the share of ``forward_samples`` fresh tuples per example giving each output;
* ``loss(...)``: a scalar whose gradient w.r.t. the beliefs is the estimator's gradient. Score-
  function estimators report one value and train on another gradient with
  ``value_with_gradient(value, surrogate) = value + (surrogate - surrogate.detach())``.

Each field declares its constraint once, ``num_samples: int = setting(100, positive)``; one
``__post_init__`` parses text values to the field's declared type (``blackprop.settings``) and
checks every constraint with one error message, ``Owner(field=...): must be ..., got ...``.
Rules that tie several fields together go in ``check``.

Estimators that learn something of their own (A-NeSI's surrogate) return it from ``build``; the
``BlackBox`` layer registers it as a sub-module, so it is saved, moved to a device and optimised
with the network.
"""

from __future__ import annotations

import math
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any, ClassVar, NamedTuple, final

import torch

from ..beliefs import Beliefs
from ..program import BaseProgram
from ..settings import SettingError, coerce

__all__ = [
    "Constraint",
    "Draws",
    "Estimator",
    "ExactLikelihood",
    "at_least",
    "between",
    "choice",
    "draw",
    "empirical_distribution",
    "field_types",
    "greater_than",
    "nll_of_target",
    "pad_outputs",
    "positive",
    "setting",
    "value_with_gradient",
]


@final
class Constraint(NamedTuple):
    """A rule on one field's value: ``test(value)`` must hold; ``expected`` says it in words."""

    test: Callable[[Any], bool]
    expected: str


def at_least(low: int | float) -> Constraint:
    return Constraint(lambda v: v >= low, f"{'an int' if isinstance(low, int) else 'a number'} >= {low}")


positive = at_least(1)


def between(low: float, high: float, *, closed: bool = False) -> Constraint:
    """low <= v < high (``closed``: low <= v <= high)."""
    return Constraint(lambda v: low <= v <= high if closed else low <= v < high,
                      f"a number in [{low}, {high}{']' if closed else ')'}")


def greater_than(low: float) -> Constraint:
    return Constraint(lambda v: v > low, f"a number > {low}")


def choice(*values: str) -> Constraint:
    return Constraint(lambda v: v in values, "one of " + ", ".join(values))


def setting(default: Any, constraint: Constraint | None = None) -> Any:
    """A dataclass field with its constraint declared in the field's metadata."""
    return field(default=default, metadata={"constraint": constraint} if constraint else {})


@dataclass(frozen=True)
class Estimator(ABC):
    """Abstract base: subclasses set ``name``, declare their fields and implement ``loss``."""

    name: ClassVar[str] = "estimator"
    #: True when ``forward``'s output carries the estimator's gradient.
    differentiable_forward: ClassVar[bool] = False

    def __post_init__(self) -> None:
        owner = type(self).__name__
        kinds = field_types(type(self))
        for f in fields(self):
            label = f"{owner}({f.name}=...)"
            value = coerce(getattr(self, f.name), kinds[f.name], field=label)
            if isinstance(value, float) and not math.isfinite(value):
                raise SettingError(f"{label}: must be a finite number, got {value!r}")
            object.__setattr__(self, f.name, value)
            constraint = f.metadata.get("constraint")
            if constraint is not None and value is not None and not constraint.test(value):
                raise SettingError(f"{label}: must be {constraint.expected}, got {value!r}")
        self.check()

    def check(self) -> None:  # noqa: B027 (a hook: most estimators have no cross-field rule)
        """Rules across fields (each field's own constraint is already checked)."""

    def build(self, program: BaseProgram) -> torch.nn.Module | None:
        """Learned state this estimator needs (None for most)."""
        return None

    def forward_samples(self, beliefs: Beliefs) -> int:
        """Tuples per example the default sampling ``forward`` draws (``num_samples``, else 1)."""
        return int(getattr(self, "num_samples", 1))

    def forward(
        self, program: BaseProgram, beliefs: Beliefs, *, generator: torch.Generator | None, state: Any
    ) -> torch.Tensor:
        """The share of ``forward_samples`` fresh tuples per example giving each output."""
        drawn = draw(program, beliefs, self.forward_samples(beliefs), generator)
        return empirical_distribution(drawn.outputs, program.output.size, beliefs.probs.dtype)

    @abstractmethod
    def loss(
        self,
        program: BaseProgram,
        beliefs: Beliefs,
        target: torch.Tensor,
        *,
        generator: torch.Generator | None,
        state: Any,
    ) -> torch.Tensor:
        """Scalar loss over a non-empty batch; its gradient is the estimator's."""

    def settings(self) -> dict[str, Any]:
        """Hyper-parameters as a plain dict (for result files)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ExactLikelihood(Estimator):
    """Abstract base of the estimators that compute log p(y) exactly (``log_probs``): the output is
    p(y) and the loss is -log p(target), whose gradient is the true one."""

    @abstractmethod
    def log_probs(self, program: BaseProgram, beliefs: Beliefs) -> torch.Tensor:
        """log p(y) ``[B, |outputs|]``."""

    def forward(self, program: BaseProgram, beliefs: Beliefs, *, generator: Any, state: Any) -> torch.Tensor:
        return self.log_probs(program, beliefs).exp()

    def loss(
        self, program: BaseProgram, beliefs: Beliefs, target: torch.Tensor, *, generator: Any, state: Any
    ) -> torch.Tensor:
        return nll_of_target(self.log_probs(program, beliefs), target, program.output.size)


@cache
def field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


@final
class Draws(NamedTuple):
    """k sampled tuples per example ``[B, k, V]``, their program outputs, and log p(x) ``[B, k]``."""

    tuples: torch.Tensor
    outputs: torch.Tensor
    log_p: torch.Tensor


def draw(
    program: BaseProgram, beliefs: Beliefs, num_samples: int, generator: torch.Generator | None, exploration: float = 0.0
) -> Draws:
    """Sample ``num_samples`` tuples per example, run the program on them, and score them."""
    tuples = beliefs.sample(num_samples, generator, exploration)
    return Draws(tuples, program.evaluate(tuples), beliefs.log_prob_terms(tuples).sum(dim=2))


def value_with_gradient(value: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """Reads as ``value``, differentiates as ``surrogate``: ``value + (surrogate - surrogate.detach())``."""
    return value + (surrogate - surrogate.detach())


def pad_outputs(log_probs: torch.Tensor, target: torch.Tensor, num_outputs: int) -> torch.Tensor:
    """Where a target lies beyond the summary's columns (a value an Open space has just learnt), pad
    ``[N, n]`` with log q = -inf up to the space's ``num_outputs``; otherwise return it unchanged."""
    if log_probs.shape[1] >= num_outputs or target.numel() == 0 or int(target.max()) < log_probs.shape[1]:
        return log_probs  # the first test needs no host read: the summary already spans the space
    return torch.nn.functional.pad(log_probs, (0, num_outputs - log_probs.shape[1]), value=float("-inf"))


def nll_of_target(log_probs: torch.Tensor, target: torch.Tensor, num_outputs: int | None = None) -> torch.Tensor:
    """Mean of -log q(target) over the batch, log q clamped at -100 (as torch's BCE does).

    ``num_outputs``: the output space's current size, for ``pad_outputs``.
    """
    target = target.to(log_probs.device)
    if num_outputs is not None:
        log_probs = pad_outputs(log_probs, target, num_outputs)
    picked = log_probs.gather(1, target.unsqueeze(1)).squeeze(1)
    return -picked.clamp(min=-100.0).mean()


def empirical_distribution(outputs: torch.Tensor, num_outputs: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Share of the k samples of each example that produced each output, ``[B, k]`` -> ``[B, num_outputs]``.

    Failed samples (-1) count towards k but no output, so a row sums to the success rate. A Product
    output's ``[B, k, m]`` gives ``[B, m, num_outputs]``, one distribution per component (the layout
    of ISED's forward; ``num_outputs`` is then the widest component).

    >>> empirical_distribution(torch.tensor([[0, 2, 2, -1]]), 3).tolist()
    [[0.25, 0.0, 0.5]]
    """
    if outputs.dim() == 3:
        batch, k, m = outputs.shape
        flat = outputs.permute(0, 2, 1).reshape(batch * m, k)
        return empirical_distribution(flat, num_outputs, dtype).reshape(batch, m, num_outputs)
    batch, k = outputs.shape
    ok = outputs >= 0
    counts = torch.zeros(batch, num_outputs, dtype=dtype, device=outputs.device)
    counts.scatter_add_(1, outputs.clamp(min=0), ok.to(dtype))
    return counts / k
