"""Beliefs: the network's per-variable distributions, validated and laid out as one tensor.

Every program input becomes one or more *variables*: a Discrete argument is one variable, a
Sequence argument of ``max_len`` positions is ``max_len`` variables. All variables of a batch are
stacked into ``probs[batch, V, C]`` (``C`` the largest class count; missing classes have
probability 0) with ``valid[batch, V]`` false on padded sequence positions. Estimators sample,
gather and enumerate on this one layout, and a symbol tuple is a row of ``V`` class indices with
``-1`` on invalid positions, which is also the program's cache key.

Example:
    >>> import torch
    >>> from blackprop.spaces import Discrete
    >>> b = Beliefs.from_inputs((Discrete(range(3)), Discrete(range(2))),
    ...                         (torch.tensor([[.2, .3, .5]]), torch.tensor([[.4, .6]])))
    >>> b.probs.shape, b.valid.tolist()
    (torch.Size([1, 2, 3]), [[True, True]])
"""

from __future__ import annotations

import math
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, final

import torch

from ._math import safe_log
from .spaces import Discrete, Padded, Sequence, padded

__all__ = ["Beliefs"]

#: the least tolerance on |sum p - 1|; low-precision dtypes get more (``sum_tolerance``).
SUM_TOLERANCE = 1e-3


def sum_tolerance(dtype: torch.dtype, classes: int) -> float:
    """How far from 1 a softmax in ``dtype`` over ``classes`` values may sum: eps * (2 + log2 C), at least 1e-3.

    Each probability and the normaliser are rounded (eps each), and a pairwise sum in the dtype adds
    about eps per level; bfloat16 over 100 classes gets 0.068, float32 keeps 1e-3.

    >>> sum_tolerance(torch.float32, 10), round(sum_tolerance(torch.bfloat16, 100), 3)
    (0.001, 0.068)
    """
    return max(SUM_TOLERANCE, torch.finfo(dtype).eps * (2 + math.log2(max(classes, 1))))


@dataclass
@final
class Beliefs:
    """``probs[B, V, C]``, ``log_probs[B, V, C]`` (-inf where p=0), ``valid[B, V]``, ``sizes[V]``."""

    probs: torch.Tensor
    log_probs: torch.Tensor
    valid: torch.Tensor
    sizes: torch.Tensor
    #: every position is valid (no Sequence input), known without reading ``valid``: estimators
    #: then skip the masks of padded positions
    dense: bool = False

    @property
    def batch_size(self) -> int:
        return self.probs.shape[0]

    @property
    def num_variables(self) -> int:
        return self.probs.shape[1]

    @property
    def device(self) -> torch.device:
        return self.probs.device

    @cached_property
    def explorable(self) -> torch.Tensor | None:
        """Valid positions with more than one class of positive probability ``[B, V]``, or None when
        every position is (one host read, cached). A point mass, such as a one-hot input that only
        tells the program where a symbol sits, is not: redrawing it can only give draws with p = 0."""
        if self.dense and int(torch.count_nonzero(self.probs)) == self.probs.numel():
            return None  # no zero anywhere (the usual softmax): one cheap test
        spread = torch.count_nonzero(self.probs, dim=2) > 1
        if self.dense:
            return None if bool(spread.all()) else spread
        return spread & self.valid

    @cached_property
    def max_explorable(self) -> int:
        """The most ``explorable`` positions of an example in the batch (one host read, cached)."""
        mask = self.explorable
        if mask is None:
            return self.num_variables if self.batch_size else 0
        return int(mask.sum(dim=1).max()) if mask.numel() else 0

    @cached_property
    def log_sizes(self) -> torch.Tensor:
        """log of each variable's class count ``[V]``, in the dtype of ``probs``."""
        return self.sizes.to(self.probs.dtype).log()

    @cached_property
    def space_size(self) -> int:
        """How many tuples the variables span: the product of their class counts (padded Sequence
        positions counted as full, so an upper bound there; one host read, cached)."""
        return math.prod(int(size) for size in self.sizes.tolist())

    @cached_property
    def common_size(self) -> int | None:
        """The class count shared by every variable, or None when they differ (one host read, cached)."""
        sizes = self.sizes.unique()
        return int(sizes[0]) if sizes.numel() == 1 else None

    @staticmethod
    def from_inputs(
        spaces: SequenceABC[Discrete | Sequence], inputs: SequenceABC[Any], from_logits: bool = False
    ) -> Beliefs:
        """Validate one tensor (or ``padded``) per input space and stack them.

        ``from_logits``: the tensors hold unnormalised log-probabilities; softmax is applied over the
        last dimension first. The distributions are checked once on the stacked tensor (one host read);
        only when that check fails is each input checked on its own, for the message.
        """
        if len(inputs) != len(spaces):
            raise TypeError(
                f"the program takes {len(spaces)} input(s) ({', '.join(map(repr, spaces))}) but "
                f"{len(inputs)} probability tensor(s) were given; pass one per input, in order"
            )
        blocks: list[torch.Tensor] = []
        valids: list[torch.Tensor | None] = []
        sizes: list[int] = []
        batch: int | None = None
        device: torch.device | None = None
        for position, (space, value) in enumerate(zip(spaces, inputs, strict=True)):
            here = _device_of(value)
            if device is None:
                device = here
            elif here is not None and here != device:
                raise ValueError(
                    f"input {position}: on {here} but input 0 is on {device}; every input must be on one "
                    f"device, e.g. move it with .to({str(device)!r})"
                )
            probs, valid = _one_input(position, space, value, from_logits)
            if batch is None:
                batch = probs.shape[0]
            elif probs.shape[0] != batch:
                raise ValueError(
                    f"input {position}: batch size {probs.shape[0]} differs from input 0's {batch}; "
                    "every input must describe the same examples"
                )
            blocks.append(probs)
            valids.append(valid)
            sizes.extend([probs.shape[2]] * probs.shape[1])
        width = max(sizes)
        dense = all(v is None for v in valids)
        padded_blocks = [b if b.shape[2] == width else torch.nn.functional.pad(b, (0, width - b.shape[2])) for b in blocks]
        probs = padded_blocks[0] if len(padded_blocks) == 1 else torch.cat(padded_blocks, dim=1)
        device = probs.device
        if dense:
            valid = torch.ones(probs.shape[:2], dtype=torch.bool, device=device)
        else:
            valid = torch.cat([torch.ones(b.shape[:2], dtype=torch.bool, device=device) if v is None else v
                               for b, v in zip(blocks, valids, strict=True)], dim=1)
        if not _distributions_ok(probs, valid, dense, blocks):
            for position, (block, block_valid) in enumerate(zip(blocks, valids, strict=True)):
                _check_distribution(position, block, block_valid)
        if probs.dtype in (torch.float16, torch.bfloat16):
            # estimators work in float32 at least: p/q ratios and sums over k draws overflow half
            # precision; the gradient flows back through the cast to the low-precision inputs
            probs = probs.float()
        beliefs = Beliefs(probs=probs, log_probs=safe_log(probs), valid=valid,
                          sizes=_sizes_tensor(tuple(sizes), device), dense=dense)
        # per-layout constants, computed once per layout rather than once per batch
        beliefs.__dict__["log_sizes"] = _log_sizes(tuple(sizes), device, probs.dtype)
        beliefs.__dict__["common_size"] = sizes[0] if len(set(sizes)) == 1 else None
        return beliefs

    def sample(
        self, num_samples: int, generator: torch.Generator | None = None, exploration: float = 0.0
    ) -> torch.Tensor:
        """Draw ``num_samples`` tuples per example, i.i.d. per variable: LongTensor ``[B, k, V]``.

        Each variable is drawn from ``(1 - exploration) * p_v + exploration * uniform`` (uniform over
        its own classes). Invalid positions get -1. One ``torch.multinomial`` call covers the batch.
        """
        B, V, C = self.probs.shape
        probs = self.proposal(exploration)
        flat = probs.reshape(B * V, C)
        if not self.dense:
            flat = flat.clone()
            flat[~self.valid.reshape(-1), 0] = 1.0  # padded positions: any valid distribution, masked below
        draws = torch.multinomial(flat, num_samples, replacement=True, generator=generator)
        draws = draws.reshape(B, V, num_samples).transpose(1, 2)
        return draws if self.dense else draws.masked_fill(~self.valid.unsqueeze(1), -1)

    def proposal(self, exploration: float = 0.0) -> torch.Tensor:
        """The (detached) distribution ``sample`` draws from: ``(1 - e) p_v + e uniform`` ``[B, V, C]``."""
        probs = self.probs.detach()
        if exploration > 0:
            C = probs.shape[2]
            own = (torch.arange(C, device=probs.device) < self.sizes.unsqueeze(1)).to(probs.dtype)  # [V, C]
            probs = (1 - exploration) * probs + exploration * own / own.sum(dim=1, keepdim=True)
        return probs

    def proposal_log_prob_terms(self, tuples: torch.Tensor, exploration: float = 0.0) -> torch.Tensor:
        """log q_v(x_v) under the sampling distribution (no gradient) ``[B, k, V]``; 0 on invalid positions."""
        if exploration == 0:
            return self.log_prob_terms(tuples).detach()
        log_q = self.proposal(exploration).clamp(min=torch.finfo(self.probs.dtype).tiny).log()
        terms = torch.gather(log_q, 2, tuples.clamp(min=0).transpose(1, 2)).transpose(1, 2)
        return terms.masked_fill(tuples < 0, 0.0)

    def log_prob_terms(self, tuples: torch.Tensor, drawn: bool = False) -> torch.Tensor:
        """log p_v(x_v) of each variable of each tuple ``[B, k, V]``; 0 on invalid positions.

        ``drawn``: the tuples were drawn by ``sample`` from these beliefs, so with ``dense`` beliefs they
        hold no -1 and the gather needs no mask.
        """
        if drawn and self.dense:
            return torch.gather(self.log_probs, 2, tuples.transpose(1, 2)).transpose(1, 2)
        index = tuples.clamp(min=0).transpose(1, 2)  # [B, V, k]
        terms = torch.gather(self.log_probs, 2, index).transpose(1, 2)
        return terms.masked_fill(tuples < 0, 0.0)


def _device_of(value: Any) -> torch.device | None:
    """The device of one input (a tensor, ``padded`` or a ``(probs, lengths)`` pair); None for other types."""
    if isinstance(value, tuple) and len(value) == 2:
        value = value[0]
    if isinstance(value, Padded):
        value = value.probs
    return value.device if isinstance(value, torch.Tensor) else None


def _one_input(
    position: int, space: Discrete | Sequence, value: Any, from_logits: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``probs [B, v, C]`` of one input and its ``valid [B, v]`` (None for a Discrete input: all valid)."""
    valid: torch.Tensor | None = None
    if isinstance(space, Sequence):
        if isinstance(value, tuple) and len(value) == 2:
            second = torch.as_tensor(value[1])
            value = padded(value[0], mask=second) if second.dtype == torch.bool else padded(value[0], lengths=second)
        elif isinstance(value, torch.Tensor):
            value = padded(value)
        if not isinstance(value, Padded):
            raise TypeError(
                f"input {position} ({space!r}): expected padded(probs, lengths) or (probs, lengths), "
                f"got {type(value).__name__}"
            )
        probs = _softmax(position, value.probs) if from_logits else value.probs
        expected = (space.max_len, space.element.size)
        if probs.shape[1:] != expected:
            raise ValueError(
                f"input {position} ({space!r}): probabilities must have shape [batch, {expected[0]}, "
                f"{expected[1]}], got {list(probs.shape)}"
            )
        valid = torch.arange(space.max_len, device=probs.device).unsqueeze(0) < value.lengths.unsqueeze(1)
    else:
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"input {position} ({space!r}): expected a float tensor [batch, {space.size}], got "
                            f"{type(value).__name__}; convert with torch.as_tensor(value, dtype=torch.float32)")
        if value.dim() != 2 or value.shape[1] != space.size:
            raise ValueError(
                f"input {position} ({space!r}): probabilities must have shape [batch, {space.size}], "
                f"got {list(value.shape)}"
            )
        probs = (_softmax(position, value) if from_logits else value).unsqueeze(1)
    if not probs.is_floating_point():
        raise TypeError(f"input {position}: probabilities must be a float tensor, got {probs.dtype}; convert with "
                        ".float(), or apply softmax to the network's logits")
    if probs.device.type == "meta":
        raise ValueError(f"input {position}: a meta tensor holds no values; pass the network's real outputs")
    return probs, valid


def _softmax(position: int, logits: torch.Tensor) -> torch.Tensor:
    if not logits.is_floating_point():
        raise TypeError(f"input {position}: logits must be a float tensor, got {logits.dtype}")
    if logits.device.type != "meta" and not bool(torch.isfinite(logits.detach()).all()):
        raise ValueError(f"input {position}: logits contain NaN or infinite values; check the network's outputs "
                         "(e.g. lower the learning rate)")
    # in float32 at least: the gradient of a half-precision probability can exceed the dtype's range
    # (d loss / d p ~ 1/p for a rare class an estimator drew), the gradient of its logit cannot
    return torch.softmax(logits, dim=-1, dtype=torch.promote_types(logits.dtype, torch.float32))


@lru_cache(maxsize=64)
def _sizes_tensor(sizes: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """The class count of each variable ``[V]`` (one tensor per layout and device; read-only)."""
    return torch.tensor(sizes, device=device)


@lru_cache(maxsize=64)
def _log_sizes(sizes: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """log of each variable's class count ``[V]`` (one tensor per layout, device and dtype; read-only)."""
    return _sizes_tensor(sizes, device).to(dtype).log()


@lru_cache(maxsize=256)
def _tolerance(dtype: torch.dtype, classes: int) -> float:
    return sum_tolerance(dtype, classes)


def _distributions_ok(probs: torch.Tensor, valid: torch.Tensor, dense: bool, blocks: list[torch.Tensor]) -> bool:
    """One fused check of the stacked ``probs [B, V, C]`` (``blocks``: the inputs it was stacked from): no
    NaN or negative entry anywhere, and each valid position sums to 1 within its input's ``sum_tolerance``.
    One host read."""
    if probs.numel() == 0:
        return True
    detached = probs.detach()
    deviation = (detached.sum(dim=-1, dtype=torch.float64) - 1).abs()
    if not dense:
        deviation = deviation.masked_fill(~valid, 0.0)
    bounds = [_tolerance(block.dtype, block.shape[2]) for block in blocks]
    if len(set(bounds)) == 1:
        sums_ok = deviation.amax() <= bounds[0]
    else:  # inputs of several dtypes or class counts: one bound per variable
        per_variable = torch.tensor([bound for bound, block in zip(bounds, blocks, strict=True)
                                     for _ in range(block.shape[1])], dtype=torch.float64, device=probs.device)
        sums_ok = (deviation <= per_variable).all()
    # amin propagates NaN, and NaN >= 0 is False: one comparison catches NaN and negative entries
    return bool((detached.amin() >= 0) & sums_ok)


def _check_distribution(position: int, probs: torch.Tensor, valid: torch.Tensor | None) -> None:
    """The per-input check behind the error messages (run only once the fused check has failed)."""
    if not probs.is_floating_point():
        raise TypeError(f"input {position}: probabilities must be a float tensor, got {probs.dtype}; convert with "
                        ".float(), or apply softmax to the network's logits")
    if probs.device.type == "meta":
        raise ValueError(f"input {position}: a meta tensor holds no values; pass the network's real outputs")
    detached = probs.detach()
    if bool(torch.isnan(detached).any()):
        raise ValueError(f"input {position}: probabilities contain NaN; check the network's outputs")
    if bool((detached < 0).any()):
        raise ValueError(f"input {position}: probabilities contain negative values; apply softmax first, "
                         "or pass logits with BlackBox(..., from_logits=True)")
    sums = detached.double().sum(dim=-1)
    bad = (sums - 1).abs() > sum_tolerance(probs.dtype, probs.shape[-1])
    if valid is not None:
        bad &= valid
    if bool(bad.any()):
        worst = sums[bad][0].item()
        raise ValueError(
            f"input {position}: probabilities must sum to 1 over the last dimension (found {worst:.4f}); "
            "apply softmax to the network's logits, or pass logits with BlackBox(..., from_logits=True)"
        )
