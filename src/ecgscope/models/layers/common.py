"""Small building blocks and the head API every model shares."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class HeadMixin:
    """``forward_features`` (pooled embedding), ``forward_head``, ``reset_head`` and ``num_features``.

    A model sets ``self.num_features`` and a linear ``self.<head_attr>``; generic code (linear probes,
    fine-tuning, stacking) then works with any backbone.
    """

    head_attr = "head"
    num_features: int

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Map pooled features (batch, num_features) to outputs."""
        return getattr(self, self.head_attr)(features)

    def reset_head(self, num_outputs: int) -> None:
        """Replace the output layer with a fresh one of ``num_outputs``."""
        setattr(self, self.head_attr, nn.Linear(self.num_features, num_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class Swish(nn.Module):
    """x * sigmoid(x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


def same_padding(length: int, kernel: int, stride: int) -> tuple[int, int]:
    """(left, right) zero padding so that the output has ceil(length / stride) samples."""
    out = (length + stride - 1) // stride
    total = max(0, (out - 1) * stride + kernel - length)
    return total // 2, total - total // 2


class SamePadConv1d(nn.Module):
    """A Conv1d (kept as ``.conv``) with TensorFlow-style SAME padding computed from the input length."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, same_padding(x.shape[-1], self.kernel_size, self.stride)))


class SamePadMaxPool1d(nn.Module):
    """Max pooling with window = stride = ``kernel_size`` after SAME-style padding of kernel_size - 1."""

    def __init__(self, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size
        self.pool = nn.MaxPool1d(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = self.kernel_size - 1
        return self.pool(F.pad(x, (total // 2, total - total // 2)))


class SqueezeExcite1d(nn.Module):
    """Channel attention: squeeze over time, two linear layers, sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        self.fc1 = nn.Linear(channels, max(channels // reduction, 1))
        self.fc2 = nn.Linear(max(channels // reduction, 1), channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(-1)))))
        return x * gate[:, :, None]
