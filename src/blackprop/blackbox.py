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

Logits instead of probabilities (softmax applied over the last dimension):
    >>> logits_layer = bp.BlackBox(add, bp.ISED(num_samples=100), seed=0, from_logits=True)
    >>> logits_layer.loss(torch.randn(1, 10), torch.randn(1, 10), target=3).item() >= 0
    True

Saving: ``layer.state_dict()`` holds the estimator's learned state (A-NeSI's surrogate), the state
of the layer's sampling generators and, where the program has a ``state_dict`` method, the
program's state; a restored layer draws the same samples, so a custom loop resumes exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as SetABC
from numbers import Integral, Number
from typing import Any, final

import torch

from .beliefs import Beliefs
from .decoding import most_probable_outputs, search_accepted
from .estimators import ISED, Estimator
from .program import BaseProgram
from .spaces import OutputSpaceError, Product

__all__ = ["BlackBox"]


@final
class BlackBox(torch.nn.Module):
    """``layer(*probs)`` -> ``[batch, |outputs|]``; ``layer.loss(*probs, target=values)`` -> scalar.

    Args:
        program: the ``Program`` to run on sampled symbols.
        estimator: any estimator (default ``ISED()``).
        seed: the layer's own sampling: an int (one generator per device, seeded with it), a
            ``torch.Generator`` (used as is, on its device), or None (torch's global RNG).
        from_logits: the inputs are logits (softmax is applied over the last dimension), as in
            ``torch.distributions.Categorical(logits=...)``; default False: probabilities. The softmax
            runs in float32 at least: with a float16 network pass logits, since the gradient with
            respect to a rare class's probability (about 1/p) can exceed float16's range.

    Inputs are probabilities (or logits), one tensor ``[batch, classes]`` per Discrete input and
    ``padded(probs, lengths)`` (or a ``(probs, lengths)`` pair) per Sequence input. ``target``
    holds output *values*, one per example (a tensor or a list; a single value for a batch of one),
    e.g. the sums for an addition program. An empty batch gives a zero loss with a zero gradient.
    """

    def __init__(
        self,
        program: BaseProgram,
        estimator: Estimator | None = None,
        *,
        seed: int | torch.Generator | None = None,
        from_logits: bool = False,
    ):
        super().__init__()
        if not isinstance(program, BaseProgram):
            raise TypeError(f"BlackBox(program, ...): expected a blackprop.Program, got {type(program).__name__}")
        estimator = ISED() if estimator is None else estimator
        if not isinstance(estimator, Estimator):
            raise TypeError(
                f"BlackBox(program, estimator): expected an estimator such as bp.ISED(), got {estimator!r}"
            )
        if seed is not None and not isinstance(seed, torch.Generator):
            if isinstance(seed, bool) or not isinstance(seed, Integral):
                raise TypeError(
                    f"BlackBox(seed=...): expected an int, a torch.Generator or None, got {seed!r}; e.g. seed=0"
                )
            seed = int(seed)  # numpy integers as a plain int
            if not -(2**63) <= seed < 2**64:
                raise ValueError(f"BlackBox(seed=...): expected an int in -2**63..2**64-1 (torch.Generator's range), "
                                 f"got {seed}; e.g. seed=0")
        if not isinstance(from_logits, bool):
            raise TypeError(f"BlackBox(from_logits=...): expected True or False, got {from_logits!r}")
        self.program = program
        self.estimator = estimator
        self.state = estimator.build(program)
        self.seed = seed
        self.from_logits = from_logits
        self._generators: dict[torch.device, torch.Generator] = {}
        if isinstance(seed, torch.Generator):
            self._generators[_device_of(seed)] = seed
        self.register_load_state_dict_pre_hook(_accept_missing_extra_state)

    def extra_repr(self) -> str:
        return f"program={self.program.name}, estimator={self.estimator!r}"

    def generator(self, device: torch.device) -> torch.Generator | None:
        """The layer's sampling generator on ``device`` (one per device, seeded from ``seed``)."""
        if self.seed is None:
            return None
        device = torch.device(device)
        if device.type != "cpu" and device.index is None:
            device = torch.device(device.type, torch.cuda.current_device() if device.type == "cuda" else 0)
        if device not in self._generators:
            if isinstance(self.seed, torch.Generator):
                raise ValueError(
                    f"BlackBox(seed=generator): the generator is on {self.seed.device} but the inputs are on "
                    f"{device}; pass a generator on {device}, or an int seed (one generator per device)"
                )
            generator = torch.Generator(device=device)
            generator.manual_seed(self.seed)
            self._generators[device] = generator
        return self._generators[device]

    def get_extra_state(self) -> dict[str, Any]:
        """The sampling generators' states (by device) and the program's ``state_dict()`` where it has one."""
        state: dict[str, Any] = {"generators": {str(d): g.get_state() for d, g in self._generators.items()}}
        program_state = getattr(self.program, "state_dict", None)
        if callable(program_state):
            state["program"] = program_state()
        return state

    def set_extra_state(self, state: Any) -> None:
        if not state:  # a checkpoint written before the layer saved its generators
            return
        for device, rng in state.get("generators", {}).items():
            generator = self.generator(torch.device(device))
            if generator is not None:
                generator.set_state(rng)
        load_program = getattr(self.program, "load_state_dict", None)
        if "program" in state and callable(load_program):
            load_program(state["program"])

    def beliefs(self, *inputs: Any) -> Beliefs:
        return Beliefs.from_inputs(self.program.inputs, inputs, from_logits=self.from_logits)

    def forward(self, *inputs: Any) -> torch.Tensor:
        beliefs = self.beliefs(*inputs)
        if beliefs.batch_size == 0:
            return beliefs.probs.new_zeros(0, self.program.output.size)
        return self.estimator.forward(
            self.program, beliefs, generator=self.generator(beliefs.device), state=self.state
        )

    def loss(self, *inputs: Any, target: Any) -> torch.Tensor:
        beliefs = self.beliefs(*inputs)
        target_index = self.encode_target(target, beliefs.batch_size).to(beliefs.device)
        if beliefs.batch_size == 0:  # nothing to learn from: zero, with a zero gradient
            return beliefs.probs.sum() * 0.0
        return self.estimator.loss(
            self.program, beliefs, target_index, generator=self.generator(beliefs.device), state=self.state
        )

    def encode_target(self, target: Any, batch_size: int) -> torch.Tensor:
        """Output-space indices of target values; raises naming a value outside the space."""
        if target is None or isinstance(target, (Mapping, SetABC)):
            raise TypeError(
                f"target: expected the output values, one per example (a list or tensor), got {type(target).__name__}"
                f" {target!r}; e.g. target=[3, 5] for a batch of two"
            )
        if isinstance(target, torch.Tensor) and target.dim() > 1 and not isinstance(self.program.output, Product):
            raise ValueError(
                f"target: expected one value per example, a tensor of shape [{batch_size}], got shape "
                f"{list(target.shape)}; flatten it (target.view(-1)) if it holds one value per example"
            )
        if _is_single_value(target):
            if batch_size != 1:
                raise ValueError(
                    f"target: expected one value per example ({batch_size} values, as a list or tensor), got "
                    f"the single value {target!r}"
                )
            target = [target.item() if isinstance(target, torch.Tensor) else target]
        if batch_size == 0 and len(target) == 0:
            return torch.zeros(0, dtype=torch.long)
        try:
            index = self.program.output.encode(target)
        except OutputSpaceError as error:
            raise ValueError(f"target: {error}") from None
        if index.shape[:1] != (batch_size,):  # [batch], or [batch, m] for a Product output
            raise ValueError(f"target: expected {batch_size} values (one per example), got {tuple(index.shape)}")
        return index

    @torch.no_grad()
    def predict(self, *inputs: Any, search: int = 1, marginal: int = 0) -> list[Any]:
        """Program output on each example's most likely symbols (None where the program failed).

        ``search`` > 1: where the most likely symbols fail, the most probable of the ``search`` most
        probable tuples that the program accepts (``blackprop.decoding.search_accepted``).
        ``marginal`` > 0: instead, each example's most probable *output*, argmax over y of p(y), summed
        over every tuple when there are at most ``marginal`` of them, else estimated from ``marginal``
        draws (``blackprop.decoding.most_probable_outputs``). The draws come from a generator seeded
        with 0 on each call, so a prediction is reproducible and the layer's training draws are untouched.
        """
        if marginal and search > 1:
            raise ValueError("predict: pass search (the best accepted tuple) or marginal (the best output), not both")
        beliefs = self.beliefs(*inputs)
        with self.program.outside_training():  # failed predictions are a score, not a broken program
            if marginal:
                draws = torch.Generator(beliefs.device).manual_seed(0)
                index = most_probable_outputs(self.program, beliefs, marginal, draws).tolist()
            else:
                best = search_accepted(self.program, beliefs, search)
                index = self.program.evaluate(best).tolist()
        output = self.program.output
        if isinstance(output, Product):  # rows of component indices -> tuples (None if the call failed)
            return [output.decode(row) if any(i >= 0 for i in row) else None for row in index]
        values = output.values
        return [values[i] if i >= 0 else None for i in index]


def _is_single_value(target: Any) -> bool:
    """A number, a string or a 0-d tensor (not a list, tuple or tensor of values)."""
    return isinstance(target, (Number, str)) or (isinstance(target, torch.Tensor) and target.dim() == 0)


def _device_of(generator: torch.Generator) -> torch.device:
    device = torch.device(generator.device)
    if device.type != "cpu" and device.index is None:
        device = torch.device(device.type, 0)
    return device


def _accept_missing_extra_state(module: torch.nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Let a state dict saved before the layer kept its generators load: no generator state to restore."""
    state_dict.setdefault(prefix + "_extra_state", None)
