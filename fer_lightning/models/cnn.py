"""The report's from-scratch CNN (Table 1): 584,807 parameters for 7 classes."""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class FERCNN(nn.Module):
    """Blocks 1-3: 2x(Conv3x3+BN+ReLU)+MaxPool (32, 64, 128); block 4: Conv3x3(128->256)+BN+ReLU+Dropout2d; global
    average pool (any input side >= 8); Linear(256, num_classes). init="dirac" (cifar10-airbench's): each conv starts
    as the identity on its first in_channels filters, bias 0; "default": PyTorch's Kaiming-uniform init."""

    min_input_size = 8
    default_in_channels = 1
    has_backbone = False

    def __init__(self, num_classes: int = 7, dropout: float = 0.55, in_channels: int = 1,
                 init: str = "default") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for c_out in (32, 64, 128):
            layers += _conv_bn_relu(c_in, c_out) + _conv_bn_relu(c_out, c_out) + [nn.MaxPool2d(2)]
            c_in = c_out
        layers += [*_conv_bn_relu(128, 256), nn.Dropout2d(dropout)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(256, num_classes)
        if init == "dirac":
            for conv in (m for m in self.features if isinstance(m, nn.Conv2d)):
                nn.init.dirac_(conv.weight[: conv.in_channels])
                nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))
