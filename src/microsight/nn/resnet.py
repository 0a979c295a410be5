"""A small ResNet for crop classification and embedding (any number of input channels)."""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.short(x))


class ResNet(nn.Module):
    """ResNet (He et al. 2016) sized for small crops: a 3x3 stem, stages that halve the
    resolution, global average pooling and a linear head.

    Parameters
    ----------
    in_channels : int
        Input channels.
    out_features : int
        Outputs of the head (classes, or the projection size of an embedding).
    widths : sequence of int
        Channels per stage; every stage after the first halves the resolution.
    blocks : int
        Residual blocks per stage.
    dropout : float
        Dropout before the head.
    """

    divisor = 1  # global pooling: any input size works

    def __init__(self, in_channels: int, out_features: int, widths: tuple[int, ...] = (16, 32, 64),
                 blocks: int = 1, dropout: float = 0.0):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            for b in range(blocks):
                layers.append(BasicBlock(cin, w, 2 if (i > 0 and b == 0) else 1))
                cin = w
        self.stages = nn.Sequential(*layers)
        self.feature_size = cin
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(cin, out_features)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(B, feature_size)`` before the head."""
        return self.stages(self.stem(x)).mean(dim=(-2, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))
