"""Symbol spaces: what a network predicts and what a program returns.

* ``Discrete(values)``: a finite, ordered set of hashable symbols. A network gives one
  probability vector ``[batch, len(values)]`` per variable.
* ``Sequence(element, max_len)``: a variable-length list of ``element`` symbols, given as
  ``[batch, max_len, len(element)]`` probabilities plus lengths or a mask (see ``padded``).
  Positions past an example's length never reach the program.
* ``Open(canonical=None)``: an output space whose vocabulary is discovered from program outputs.
  Indices are assigned in order of first appearance and never change, so ``layer(...)`` columns
  stay stable across batches (the result only gains columns).

Example:
    >>> digit = Discrete(range(10))
    >>> digit.index(7), digit.size
    (7, 10)
    >>> rooms = Open()
    >>> rooms.index("kitchen"), rooms.index("office"), rooms.index("kitchen")
    (0, 1, 0)
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Coroutine, Hashable, Iterable, Iterator
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass
from typing import Any, final

import torch

__all__ = ["Discrete", "Open", "Padded", "Sequence", "Space", "padded"]


class OutputSpaceError(ValueError):
    """A program returned a value its output space does not contain."""


@final
class Discrete:
    """A finite ordered set of hashable symbols; ``index(v)`` gives the column of ``v``."""

    is_open = False

    def __init__(self, values: Iterable[Hashable]):
        if not isinstance(values, Iterable):
            hint = f"; did you mean Discrete(range({values}))?" if isinstance(values, int) else ""
            raise TypeError(f"Discrete(values): expected an iterable of symbols, got {type(values).__name__} "
                            f"{values!r}{hint}")
        self.values: tuple[Any, ...] = tuple(values)
        if not self.values:
            raise ValueError("Discrete(values): values is empty; give at least one symbol, e.g. Discrete(range(10))")
        self._index: dict[Any, int] = {}
        for position, value in enumerate(self.values):
            try:
                key = _key(value)
            except TypeError as error:
                raise TypeError(f"Discrete(values): value {value!r} is not hashable ({error})") from None
            if key in self._index:
                raise ValueError(f"Discrete(values): value {value!r} appears twice; symbols must be distinct")
            self._index[key] = position

    @property
    def size(self) -> int:
        return len(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        shown = ", ".join(repr(v) for v in self.values[:6])
        more = ", ..." if len(self.values) > 6 else ""
        return f"Discrete([{shown}{more}], size={self.size})"

    def __contains__(self, value: object) -> bool:
        try:
            return _key(value) in self._index
        except (TypeError, OutputSpaceError):
            return False

    def index(self, value: Any) -> int:
        """Column of ``value``; raises ``OutputSpaceError`` naming the value if it is absent."""
        if type(value) is int or type(value) is str:  # fast path: their own key (see _key)
            found = self._index.get(value)
            if found is not None:
                return found
        try:
            return self._index[_key(value)]
        except (KeyError, TypeError):
            raise OutputSpaceError(
                f"value {value!r} is not in {self!r}; widen the space or use Open() to discover values"
            ) from None

    def int_lookup(self) -> Callable[[int], int | None]:
        """A function from an int value to its column, or None if absent (an int is its own key): the
        per-tuple hot path of programs, one dict lookup."""
        return self._index.get

    def encode(self, values: Any) -> torch.Tensor:
        """Indices of a batch of values (a tensor or a list) as a LongTensor ``[batch]``."""
        items = values.tolist() if isinstance(values, torch.Tensor) else list(values)
        return torch.tensor([self.index(v) for v in items], dtype=torch.long)


@final
class Open:
    """An output space whose vocabulary grows as programs return new values.

    ``canonical`` maps a raw output to the key that decides equality (default: the value itself),
    e.g. ``Open(canonical=lambda x: round(x, 2))`` for float outputs compared to 0.01.
    """

    is_open = True

    #: at most this many raw values remembered by ``index`` (past it, new raw values are canonicalised each time)
    RAW_LIMIT = 1 << 16

    def __init__(self, canonical: Callable[[Any], Hashable] | None = None):
        self.canonical = canonical
        self.values: list[Any] = []
        self._index: dict[Any, int] = {}
        self._raw: dict[Any, int] = {}  # (type, value) -> position, for ints, strs and nonzero floats

    @property
    def size(self) -> int:
        return len(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        return f"Open(size={self.size})"

    def __contains__(self, value: object) -> bool:
        try:
            return self._canon(value) in self._index
        except (TypeError, OutputSpaceError):
            return False

    def _canon(self, value: Any) -> Any:
        return _key(self.canonical(value) if self.canonical is not None else value)

    def index(self, value: Any) -> int:
        """Column of ``value``, adding it to the vocabulary on first sight.

        A raw int, str or float seen before skips ``canonical`` (a float key such as hwf's exact
        rounding costs tens of microseconds): a deterministic ``canonical`` gives it the same key
        again. Keys carry the type, so 1 and 1.0 stay apart; 0.0 and -0.0 (equal floats that differ)
        are never remembered.
        """
        kind = value.__class__
        raw = (kind, value) if kind is int or kind is str or (kind is float and value) else None
        if raw is not None:
            position = self._raw.get(raw)
            if position is not None:
                return position
        key = self._canon(value)
        position = self._index.get(key)
        if position is None:
            position = len(self.values)
            self._index[key] = position
            self.values.append(value)
        if raw is not None and len(self._raw) < self.RAW_LIMIT:
            self._raw[raw] = position
        return position

    def encode(self, values: Any) -> torch.Tensor:
        items = values.tolist() if isinstance(values, torch.Tensor) else list(values)
        return torch.tensor([self.index(v) for v in items], dtype=torch.long)


@final
class Sequence:
    """A list of 0..max_len ``element`` symbols; one probability vector per position."""

    def __init__(self, element: Discrete, max_len: int):
        if not isinstance(element, Discrete):
            raise TypeError(f"Sequence(element, max_len): element must be a Discrete space, got {element!r}")
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
            raise ValueError(f"Sequence(element, max_len): max_len must be an int >= 1, got {max_len!r}")
        self.element = element
        self.max_len = max_len

    def __repr__(self) -> str:
        return f"Sequence({self.element!r}, max_len={self.max_len})"


Space = Discrete | Sequence


@dataclass(frozen=True)
@final
class Padded:
    """Probabilities ``[batch, max_len, classes]`` of a Sequence input plus the valid length of each row."""

    probs: torch.Tensor
    lengths: torch.Tensor


def padded(probs: torch.Tensor, lengths: Any = None, mask: Any = None) -> Padded:
    """Bundle sequence probabilities with ``lengths`` ([batch] ints) or a ``mask`` ([batch, max_len] bools).

    A mask must be a prefix mask (True for the first ``length`` positions). Without either, every
    position is valid.
    """
    if not isinstance(probs, torch.Tensor) or probs.dim() != 3:
        raise ValueError(
            f"padded(probs, ...): probs must be a [batch, max_len, classes] tensor, got "
            f"{tuple(probs.shape) if isinstance(probs, torch.Tensor) else type(probs).__name__}"
        )
    batch, max_len = probs.shape[0], probs.shape[1]
    if lengths is not None and mask is not None:
        raise ValueError("padded(probs, ...): give lengths or mask, not both")
    if mask is not None:
        mask = torch.as_tensor(mask, dtype=torch.bool, device=probs.device)
        if mask.shape != (batch, max_len):
            raise ValueError(f"padded: mask must have shape {(batch, max_len)}, got {tuple(mask.shape)}")
        lengths = mask.sum(dim=1)
        prefix = torch.arange(max_len, device=probs.device).unsqueeze(0) < lengths.unsqueeze(1)
        if not torch.equal(prefix, mask):
            raise ValueError("padded: mask must be True on a prefix of each row (valid positions first)")
    elif lengths is None:
        lengths = torch.full((batch,), max_len, dtype=torch.long, device=probs.device)
    lengths = torch.as_tensor(lengths, device=probs.device)
    if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
        if lengths.dtype == torch.bool or not bool((lengths == lengths.round()).all()):
            raise TypeError(f"padded: lengths must be whole numbers (valid positions per row), got "
                            f"{lengths.tolist()}; for a [batch, max_len] bool mask pass mask=...")
    lengths = lengths.long()
    if lengths.shape != (batch,):
        raise ValueError(f"padded: lengths must have shape ({batch},), got {tuple(lengths.shape)}")
    if bool(((lengths < 0) | (lengths > max_len)).any()):
        raise ValueError(f"padded: lengths must lie in 0..{max_len}, got {lengths.tolist()}")
    return Padded(probs, lengths)


def _key(value: Any) -> Any:
    """Hashable identity of a symbol; floats that are whole numbers equal their int (3.0 == 3).

    A generator, coroutine or other iterator is not a symbol (it hashes by identity, so every call
    would look new): ``OutputSpaceError``.
    """
    if isinstance(value, (Iterator, Coroutine, AsyncIterator)):
        raise OutputSpaceError(
            f"value {value!r} is a {type(value).__name__}, not a symbol; return the value itself (did the "
            "program use yield, async def or return an iterator? e.g. return list(...) or next(...))"
        )
    if isinstance(value, torch.Tensor):
        value = value.item() if value.numel() == 1 else tuple(value.tolist())
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return tuple(_key(v) for v in value)
    hash(value)
    return value


def is_sequence_of_spaces(spaces: Any) -> bool:
    return isinstance(spaces, SequenceABC) and all(isinstance(s, (Discrete, Sequence)) for s in spaces)


# --- structured outputs (appended for the sudoku task; a general feature) ------------------------
@final
class Product:
    """Tuple-valued program outputs, scored component by component.

    ``Product(*components)`` holds tuples whose j-th entry lies in the ``Discrete`` space
    ``components[j]``. ``index(value)`` is a tuple of component indices, so ``Program.evaluate``
    gives ``[..., m]`` indices and estimators aggregate each component on its own: for ISED,
    w_j(v) = sum over samples s with P(x_s)_j = v of p(x_s); the loss is the mean over components
    of the per-component loss. A whole tuple (e.g. a solved sudoku board, 9^81 values) is never
    sampled twice, but each of its components is.

    A component that is ``None`` in a returned tuple is *unknown*: index -1, and that sample adds
    nothing to that component (a failure of one component, not of the whole call).

    Example:
        >>> pair = Product(Discrete(range(5)), Discrete(range(5)))
        >>> pair.index((3, 0)), pair.index((4, None)), pair.size, pair.num_components
        ((3, 0), (4, -1), 5, 2)
    """

    is_open = False

    def __init__(self, *components: Discrete):
        if len(components) == 1 and isinstance(components[0], (list, tuple)):
            components = tuple(components[0])
        if not components or not all(isinstance(c, Discrete) for c in components):
            raise TypeError(
                f"Product(*components): give one or more Discrete spaces, e.g. Product(Discrete(range(9)), "
                f"Discrete(range(9))); got {components!r}"
            )
        self.components: tuple[Discrete, ...] = tuple(components)

    @property
    def num_components(self) -> int:
        return len(self.components)

    @property
    def size(self) -> int:
        """Width of the per-component layout ``[batch, m, size]``: the largest component size."""
        return max(c.size for c in self.components)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(c.size for c in self.components)

    @property
    def values(self) -> tuple[tuple[Any, ...], ...]:
        """The values of each component (not the product set, which is far too large to list)."""
        return tuple(c.values for c in self.components)

    def __len__(self) -> int:
        return self.num_components

    def __repr__(self) -> str:
        if all(c.values == self.components[0].values for c in self.components):
            return f"Product({self.components[0]!r} x {self.num_components})"
        return f"Product({', '.join(map(repr, self.components))})"

    def __contains__(self, value: object) -> bool:
        try:
            self.index(value)
        except OutputSpaceError:
            return False
        return True

    def index(self, value: Any) -> tuple[int, ...]:
        """Component indices of a tuple (-1 for ``None`` components); raises ``OutputSpaceError``."""
        if isinstance(value, torch.Tensor):
            value = value.tolist()
        if not isinstance(value, (tuple, list)) or len(value) != self.num_components:
            raise OutputSpaceError(
                f"value {value!r} is not a tuple of {self.num_components} components for {self!r}; "
                "the program must return one value per component"
            )
        return tuple(map(_component_index, self.components, value))  # lengths checked above

    def encode(self, values: Any) -> torch.Tensor:
        """Indices of a batch of tuples as a LongTensor ``[batch, m]``."""
        items = values.tolist() if isinstance(values, torch.Tensor) else list(values)
        if not items:
            return torch.empty((0, self.num_components), dtype=torch.long)
        return torch.tensor([self.index(v) for v in items], dtype=torch.long)

    def decode(self, indices: Any) -> tuple[Any, ...]:
        """The tuple of values of one row of component indices (None where the index is -1)."""
        row = indices.tolist() if isinstance(indices, torch.Tensor) else list(indices)
        return tuple(None if i < 0 else c.values[i] for c, i in zip(self.components, row, strict=True))

    def failed_index(self) -> tuple[int, ...]:
        """The index row of a failed call: every component unknown."""
        return (-1,) * self.num_components


def _component_index(space: Discrete, value: Any) -> int:
    if value is None:
        return -1
    if type(value) is int:  # the common case, without _key's normalisation
        position = space._index.get(value)
        if position is not None:
            return position
    return space.index(value)


def output_matches(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Whether each sampled output equals its example's target, for any output space.

    ``outputs [B, k]`` against ``target [B]`` (a Discrete or Open output), or ``outputs [B, k, m]``
    against ``target [B, m]`` (a ``Product``: all components equal). Returns bools ``[B, k]``;
    failed outputs (-1) never match. Score-function estimators can use it as their 0/1 reward.
    """
    target = target.to(outputs.device)
    if outputs.dim() == target.dim() + 1 and outputs.dim() >= 3:
        return (outputs == target.unsqueeze(1)).all(dim=-1)
    return outputs == target.reshape(-1, *([1] * (outputs.dim() - 1)))
