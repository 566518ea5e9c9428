"""BlackBox: a program behind a network, as a torch module with an estimated gradient.

Example:
    >>> import torch, blackprop as bp
    >>> digit = bp.Discrete(range(10))
    >>> add = bp.Program(lambda a, b: a + b, inputs=(digit, digit), output=bp.Discrete(range(19)))
    >>> layer = bp.BlackBox(add, bp.ISED(num_samples=100), seed=0)
    >>> p_a = torch.softmax(torch.randn(4, 10, requires_grad=True), -1)
    >>> p_b = torch.softmax(torch.randn(4, 10), -1)
    >>> layer(p_a, p_b).shape
    torch.Size([4, 19])
    >>> loss = layer.loss(p_a, p_b, target=torch.tensor([3, 5, 9, 18]))
    >>> loss.backward()
"""

from __future__ import annotations

from typing import Any

import torch

from .beliefs import Beliefs
from .decoding import search_accepted
from .estimators import ISED, Estimator
from .program import BaseProgram, Program
from .spaces import OutputSpaceError, Product

__all__ = ["BlackBox"]


class BlackBox(torch.nn.Module):
    """``layer(*probs)`` -> ``[batch, |outputs|]``; ``layer.loss(*probs, target=values)`` -> scalar.

    Args:
        program: the ``Program`` to run on sampled symbols.
        estimator: any estimator (default ``ISED()``).
        seed: seed of the layer's own sampling generator (None: torch's global RNG).

    Inputs are probabilities, one tensor ``[batch, classes]`` per Discrete input and
    ``padded(probs, lengths)`` (or a ``(probs, lengths)`` pair) per Sequence input. ``target``
    holds output *values* (a tensor or a list), e.g. the sums for an addition program.
    """

    def __init__(self, program: Program, estimator: Estimator | None = None, *, seed: int | None = None):
        super().__init__()
        if not isinstance(program, BaseProgram):
            raise TypeError(f"BlackBox(program, ...): expected a blackprop.Program, got {type(program).__name__}")
        estimator = ISED() if estimator is None else estimator
        if not isinstance(estimator, Estimator):
            raise TypeError(
                f"BlackBox(program, estimator): expected an estimator such as bp.ISED(), got {estimator!r}"
            )
        self.program = program
        self.estimator = estimator
        self.state = estimator.build(program)
        self.seed = seed
        self._generators: dict[torch.device, torch.Generator] = {}

    def extra_repr(self) -> str:
        return f"program={self.program.name}, estimator={self.estimator!r}"

    def generator(self, device: torch.device) -> torch.Generator | None:
        """The layer's sampling generator on ``device`` (one per device, seeded from ``seed``)."""
        if self.seed is None:
            return None
        if device not in self._generators:
            generator = torch.Generator(device=device)
            generator.manual_seed(self.seed)
            self._generators[device] = generator
        return self._generators[device]

    def beliefs(self, *inputs: Any) -> Beliefs:
        return Beliefs.from_inputs(self.program.inputs, inputs)

    def forward(self, *inputs: Any) -> torch.Tensor:
        beliefs = self.beliefs(*inputs)
        return self.estimator.forward(
            self.program, beliefs, generator=self.generator(beliefs.device), state=self.state
        )

    def loss(self, *inputs: Any, target: Any) -> torch.Tensor:
        beliefs = self.beliefs(*inputs)
        target_index = self.encode_target(target, beliefs.batch_size).to(beliefs.device)
        return self.estimator.loss(
            self.program, beliefs, target_index, generator=self.generator(beliefs.device), state=self.state
        )

    def encode_target(self, target: Any, batch_size: int) -> torch.Tensor:
        """Output-space indices of target values; raises naming a value outside the space."""
        try:
            index = self.program.output.encode(target)
        except OutputSpaceError as error:
            raise ValueError(f"target: {error}") from None
        if index.shape[:1] != (batch_size,):  # [batch], or [batch, m] for a Product output
            raise ValueError(f"target: expected {batch_size} values (one per example), got {tuple(index.shape)}")
        return index

    @torch.no_grad()
    def predict(self, *inputs: Any, search: int = 1) -> list[Any]:
        """Program output on each example's most likely symbols (None where the program failed).

        ``search`` > 1: where the most likely symbols fail, the most probable of the ``search`` most
        probable tuples that the program accepts (``blackprop.decoding.search_accepted``).
        """
        beliefs = self.beliefs(*inputs)
        best = search_accepted(self.program, beliefs, search)
        index = self.program.evaluate(best).tolist()
        output = self.program.output
        if isinstance(output, Product):  # rows of component indices -> tuples (None if the call failed)
            return [output.decode(row) if any(i >= 0 for i in row) else None for row in index]
        values = output.values
        return [values[i] if i >= 0 else None for i in index]
