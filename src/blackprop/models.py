"""Perception networks of the benchmark tasks: every ``torch.nn.Module`` a task's ``make_model`` builds.

Digit and symbol networks map images ``[B, 1, 28, 28]`` to class probabilities; the task models
wrap them and map a batch of examples ``[B, n, ...]`` to the tuple of program inputs (one
probability tensor, or ``padded`` sequence, per input).

* ``MNISTNet`` (the ISED paper's MNIST-R network): conv 1->32 k5, maxpool 2, conv 32->64 k5,
  maxpool 2, FC 1024->1024 ReLU, dropout 0.5, FC 1024->classes, softmax; its widths are arguments.
* ``LeNet`` (the sample-efficiency experiments): conv 1->6 k5, maxpool, conv 6->16 k5, maxpool,
  FC 256->120->84->classes, softmax.
* ``lenet_wide()`` (the long sums, sum64 to sum1024): ``MNISTNet`` at 16/32 channels, FC 512->128,
  dropout 0.3; about 2x LeNet's time per image and 1/14 of MNISTNet's parameters (0.08M against 1.1M).
  ``lenet_wide_bn()`` adds BatchNorm1d on its hidden layer (shorter plateaus on sum256 / sum1024).
* ``SymbolNet`` (HWF), ``LeafNet`` (leaf features), ``ObjectNet`` (scene objects).
* Task models: ``DigitsModel`` (MNIST-R, sum-n), ``FormulaModel`` (hwf, hwf-typed), ``LeafModel``,
  ``SceneModel``, ``SudokuModel``.

Example:
    >>> import torch
    >>> probs = MNISTNet()(torch.zeros(3, 1, 28, 28))
    >>> probs.shape, torch.allclose(probs.sum(dim=1), torch.ones(3))
    (torch.Size([3, 10]), True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, final

import torch
from torch import nn

from .data.leaves import MARGINS, SHAPES, TEXTURES
from .data.scenes import CROP_SIZE, OBJECTS
from .spaces import padded

__all__ = ["NETWORKS", "DigitsModel", "FormulaModel", "LeNet", "LeafModel", "LeafNet", "MNISTNet", "ObjectNet",
           "SceneModel", "SudokuModel", "SymbolNet", "lenet_wide", "lenet_wide_bn"]


@final
class MNISTNet(nn.Module):
    def __init__(self, num_classes: int = 10, dropout: float = 0.5, channels: tuple[int, int] = (32, 64),
                 hidden: int = 1024, batch_norm: bool = False):
        super().__init__()
        first, second = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, first, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(first, second, 5), nn.MaxPool2d(2), nn.ReLU()
        )
        normalise = [nn.BatchNorm1d(hidden)] if batch_norm else []
        self.classifier = nn.Sequential(
            nn.Linear(16 * second, hidden), *normalise, nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(self.features(images).flatten(1)), dim=1)


@final
class LeNet(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(6, 16, 5), nn.MaxPool2d(2), nn.ReLU()
        )
        self.classifier = nn.Sequential(
            nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(self.features(images).flatten(1)), dim=1)


def lenet_wide(num_classes: int = 10) -> MNISTNet:
    """MNISTNet's shape at LeNet's scale (16/32 channels, FC 512->128, dropout 0.3): sum64's network,
    chosen on validation (``benchmarks/network_ceiling.py``)."""
    return MNISTNet(num_classes, dropout=0.3, channels=(16, 32), hidden=128)


def lenet_wide_bn(num_classes: int = 10) -> MNISTNet:
    """``lenet_wide`` with BatchNorm1d on its hidden layer: the long sums' network (sum1024).

    On sum-n the fold's gradient reaches all n images of a sum through one shared factor (about
    (y - mean) / variance), so a step's weight gradient is that factor times the *sum* of the
    images' hidden features: n times their mean, whose sign flips from sum to sum (noise), plus a
    fluctuation of size sqrt(n), the only part that says which images are large digits. Centring the
    features over the batch (16 sums x n images) removes the noise term. Measured on sum256, seed 0,
    lr 1e-3: per-digit validation accuracy after one epoch 48.6% with it, 13.3% without
    (``experiments/scale/notes.md``)."""
    return MNISTNet(num_classes, dropout=0.3, channels=(16, 32), hidden=128, batch_norm=True)


NETWORKS: dict[str, Callable[[], nn.Module]] = {"mnistnet": MNISTNet, "lenet": LeNet, "lenet-wide": lenet_wide,
                                                "lenet-wide-bn": lenet_wide_bn}


@final
class SymbolNet(nn.Module):
    """The HWF symbol network (ISED reference, sized by ``image_size``): conv 1->32 k3 pad 1, ReLU,
    conv 32->64 k3 pad 1, ReLU, maxpool 2, dropout 0.25, FC 64*(s/2)^2 -> 128, ReLU, dropout 0.5,
    FC 128 -> classes, softmax. The reference used 45x45 images (FC 30976 -> 128); blackprop's HWF
    data is 28x28 (FC 12544 -> 128).

    Example:
        >>> SymbolNet()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 14])
    """

    def __init__(self, num_classes: int = 14, image_size: int = 28):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Dropout(0.25),
        )
        self.classifier = nn.Sequential(
            nn.Linear(64 * (image_size // 2) ** 2, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, num_classes)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(self.features(images).flatten(1)), dim=1)


NETWORKS["symbolnet"] = SymbolNet

#: HWF's symbols: 10 digits, then the 4 operators; formulas of at most 7 symbols
HWF_DIGITS, HWF_SYMBOLS, HWF_MAX_LEN = 10, 14, 7


@final
class FormulaModel(nn.Module):
    """A symbol network applied to every non-padding image of a formula.

    ``[B, n, 1, 28, 28]`` -> ``(padded(probs [B, 7, 14], lengths),)``; with ``typed=True`` (hwf-typed)
    the positions are read by the grammar: ``(padded(digits [B, 4, 10]), padded(operators [B, 3, 4]))``,
    each renormalised over its classes, so a 7-symbol formula has 10**4 * 4**3 = 640,000 readings
    instead of 14**7. Padding positions (all-zero images, or past ``lengths`` when given) are not run
    through the network; they carry a uniform distribution that the program never sees.
    """

    def __init__(self, network: nn.Module | None = None, max_len: int = HWF_MAX_LEN, typed: bool = False):
        super().__init__()
        self.network = network if network is not None else SymbolNet(num_classes=HWF_SYMBOLS, image_size=28)
        self.max_len = max_len
        self.typed = typed

    def valid_positions(self, images: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, max_len]`` bools: True on the formula's images (a prefix of each row)."""
        batch, n = images.shape[:2]
        if n > self.max_len:
            raise ValueError(f"FormulaModel: images have {n} positions, more than max_len={self.max_len}")
        if lengths is None:
            valid = images.reshape(batch, n, -1).ne(0).any(dim=2)
        else:
            valid = torch.arange(n, device=images.device).unsqueeze(0) < torch.as_tensor(lengths, device=images.device).unsqueeze(1)
        return torch.nn.functional.pad(valid, (0, self.max_len - n), value=False)

    def _symbols_probs(self, images: torch.Tensor, lengths: torch.Tensor | None = None) -> Any:
        batch, n = images.shape[:2]
        valid = self.valid_positions(images, lengths)
        scores = self.network(images[valid[:, :n]])
        probs = torch.full((batch, self.max_len, scores.shape[1]), 1.0 / scores.shape[1], dtype=scores.dtype,
                           device=scores.device)
        probs = probs.masked_scatter(valid.unsqueeze(2), scores)
        return padded(probs, mask=valid)

    def forward(self, images: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[Any, ...]:
        formula = self._symbols_probs(images, lengths)
        if not self.typed:
            return (formula,)
        digits = formula.probs[:, 0::2, :HWF_DIGITS]
        operators = formula.probs[:, 1::2, HWF_DIGITS:]
        return (
            padded(digits / digits.sum(dim=2, keepdim=True), (formula.lengths + 1) // 2),
            padded(operators / operators.sum(dim=2, keepdim=True), formula.lengths // 2),
        )

    @torch.no_grad()
    def symbols(self, images: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Most likely symbol of every image ``[B, n]`` (typed: a digit at even, an operator at odd
        positions), -1 on padding."""
        formula = self._symbols_probs(images, lengths)
        n = images.shape[1]
        probs = formula.probs[:, :n]
        valid = torch.arange(n, device=probs.device).unsqueeze(0) < formula.lengths.unsqueeze(1)
        if not self.typed:
            return probs.argmax(dim=2).masked_fill(~valid, -1)
        digit = probs[:, :, :HWF_DIGITS].argmax(dim=2)
        operator = probs[:, :, HWF_DIGITS:].argmax(dim=2) + HWF_DIGITS
        even = torch.arange(n, device=probs.device) % 2 == 0
        return torch.where(even, digit, operator).masked_fill(~valid, -1)


@final
class DigitsModel(torch.nn.Module):
    """One digit network applied to each of the n images: ``[B, n, 1, 28, 28]`` -> n tensors ``[B, 10]``."""

    def __init__(self, network: torch.nn.Module):
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        batch, n = images.shape[:2]
        probs = self.network(images.flatten(0, 1)).view(batch, n, -1)
        return tuple(probs.unbind(1))

    def symbols(self, images: torch.Tensor) -> torch.Tensor:
        """Most likely class of every image ``[B, n]``."""
        return torch.stack(self.forward(images), dim=1).argmax(dim=2)


@final
class LeafNet(nn.Module):
    """A feature network on 64x64 RGB leaves: four blocks of conv 3x3 + batch norm + ReLU + max-pool 2
    (16, 32, 64, 64 channels), global average pooling, FC 64 -> 64 ReLU, dropout, FC -> classes,
    softmax (small: three of them train on one CPU thread in seconds per epoch)."""

    def __init__(self, num_classes: int, dropout: float = 0.2):
        super().__init__()
        blocks: list[nn.Module] = []
        channels = 3
        for width in (16, 32, 64, 64):
            blocks += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Dropout(dropout), nn.Linear(64, num_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(self.features(images)), dim=1)


@final
class LeafModel(nn.Module):
    """Three feature networks on one image: ``[B, 1, 3, 64, 64]`` -> (margin [B, 6], shape [B, 5], texture [B, 4])."""

    def __init__(self) -> None:
        super().__init__()
        self.margin = LeafNet(len(MARGINS))
        self.shape = LeafNet(len(SHAPES))
        self.texture = LeafNet(len(TEXTURES))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        leaf = images[:, 0]
        return self.margin(leaf), self.shape(leaf), self.texture(leaf)

    def symbols(self, images: torch.Tensor) -> torch.Tensor:
        """Most likely (margin, shape, texture) indices ``[B, 3]``."""
        return torch.stack([p.argmax(dim=1) for p in self.forward(images)], dim=1)


@final
class ObjectNet(nn.Module):
    """Object classifier on 32x32 RGB crops: conv 3->32, 32->64, 64->128 (3x3, batch norm, ReLU, max-pool 2),
    FC 2048 -> 256 ReLU, dropout, FC -> 47, softmax."""

    def __init__(self, num_classes: int = len(OBJECTS), dropout: float = 0.3):
        super().__init__()
        blocks: list[nn.Module] = []
        channels = 3
        for width in (32, 64, 128):
            blocks += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*blocks, nn.Flatten())
        self.classifier = nn.Sequential(nn.Linear(128 * (CROP_SIZE // 8) ** 2, 256), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(256, num_classes))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(self.features(crops)), dim=1)


@final
class SceneModel(nn.Module):
    """``[B, 10, 3, 32, 32]`` crops (all-zero past the last object) -> ``(padded(probs [B, 10, 47], lengths),)``."""

    def __init__(self) -> None:
        super().__init__()
        self.objects = ObjectNet()

    def forward(self, images: torch.Tensor) -> tuple[Any]:
        batch, slots = images.shape[:2]
        lengths = (images.flatten(2).abs().sum(dim=2) > 0).sum(dim=1)
        probs = self.objects(images.flatten(0, 1)).view(batch, slots, -1)
        return (padded(probs, lengths=lengths),)

    def symbols(self, images: torch.Tensor) -> torch.Tensor:
        """Most likely object label of every slot ``[B, 10]``."""
        return self.forward(images)[0].probs.argmax(dim=2)


@final
class SudokuModel(torch.nn.Module):
    """Board images ``[B, 81, 1, 28, 28]`` -> (digit probabilities, one-hot positions) of the given cells.

    Both are ``padded`` sequences ``[B, 81, 9]`` and ``[B, 81, 81]`` with the number of givens as
    lengths; given cells come first in board order. ``symbols`` gives the most likely class
    (0..8 for digits 1..9) of every cell in board layout, -1 on blanks.
    """

    def __init__(self, network: torch.nn.Module):
        super().__init__()
        self.network = network

    @staticmethod
    def given_mask(images: torch.Tensor) -> torch.Tensor:
        return images.flatten(2).ne(0).any(dim=2)

    def forward(self, images: torch.Tensor) -> tuple[Any, Any]:
        batch, cells = images.shape[:2]
        given = self.given_mask(images)
        lengths = given.sum(dim=1)
        probs = self.network(images[given])  # [total givens, 9]
        # given cells first, in board order: a stable sort of the blank flags
        order = torch.sort((~given).to(torch.int8), dim=1, stable=True).indices
        prefix = torch.arange(cells, device=images.device).unsqueeze(0) < lengths.unsqueeze(1)
        digits = torch.full((batch, cells, probs.shape[1]), 1.0 / probs.shape[1], dtype=probs.dtype, device=images.device)
        digits = digits.masked_scatter(prefix.unsqueeze(2), probs)
        positions = torch.nn.functional.one_hot(order, cells).to(probs.dtype)
        return padded(digits, lengths), padded(positions, lengths)

    @torch.no_grad()
    def symbols(self, images: torch.Tensor) -> torch.Tensor:
        given = self.given_mask(images)
        out = torch.full(given.shape, -1, dtype=torch.long, device=images.device)
        out[given] = self.network(images[given]).argmax(dim=1)
        return out
