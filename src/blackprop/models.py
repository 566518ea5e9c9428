"""Perception networks of the benchmark tasks. Each maps images to class probabilities.

* ``MNISTNet`` (the ISED paper's MNIST-R network): conv 1->32 k5, maxpool 2, conv 32->64 k5,
  maxpool 2, FC 1024->1024 ReLU, dropout 0.5, FC 1024->classes, softmax.
* ``LeNet`` (the sample-efficiency experiments): conv 1->6 k5, maxpool, conv 6->16 k5, maxpool,
  FC 256->120->84->classes, softmax.

Example:
    >>> import torch
    >>> probs = MNISTNet()(torch.zeros(3, 1, 28, 28))
    >>> probs.shape, torch.allclose(probs.sum(dim=1), torch.ones(3))
    (torch.Size([3, 10]), True)
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LeNet", "MNISTNet", "NETWORKS"]


class MNISTNet(nn.Module):
    def __init__(self, num_classes: int = 10, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(32, 64, 5), nn.MaxPool2d(2), nn.ReLU()
        )
        self.classifier = nn.Sequential(
            nn.Linear(1024, 1024), nn.ReLU(), nn.Dropout(dropout), nn.Linear(1024, num_classes)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(self.features(images).flatten(1)), dim=1)


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


NETWORKS = {"mnistnet": MNISTNet, "lenet": LeNet}


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
__all__ += ["SymbolNet"]
