"""ResNet-1D in the style of the CODE model (Ribeiro et al., Nat Commun 2020) and the EchoNext baseline.

Four residual blocks widen 64 -> 128 -> 196 -> 256 -> 320 channels and shorten the signal 4x each (kernel 17);
the skip path is max-pooled and projected when shapes change. Input contract of the CODE model: 400 Hz,
4,096 samples, leads I..V6, mV. Unlike the original (flatten + dense), features are averaged over time,
so any length works.
"""

from __future__ import annotations

import torch
from torch import nn

from ecgscope.models.config import ModelCfg
from ecgscope.models.layers import HeadMixin
from ecgscope.models.registry import register_model

CODE_CFG = ModelCfg(fs=400.0, n_samples=4096, normalisation="none (mV)", paper="Ribeiro et al., Nat Commun 2020")


class ResBlock1d(nn.Module):
    """conv-BN-ReLU-dropout-conv(stride) plus a pooled, projected skip; BN-ReLU-dropout after the sum."""

    def __init__(self, c_in: int, c_out: int, kernel: int, downsample: int, dropout: float):
        super().__init__()
        pad = kernel // 2
        self.conv1 = nn.Conv1d(c_in, c_out, kernel, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel, stride=downsample, padding=pad, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.drop = nn.Dropout(dropout)
        skip = [nn.MaxPool1d(downsample, ceil_mode=True)] if downsample > 1 else []
        if c_in != c_out:
            skip.append(nn.Conv1d(c_in, c_out, 1, bias=False))
        self.skip = nn.Sequential(*skip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.drop(torch.relu(self.bn1(self.conv1(x))))
        out = self.conv2(out)
        skip = self.skip(x)
        out = out[..., : skip.shape[-1]] + skip[..., : out.shape[-1]]
        return self.drop(torch.relu(self.bn2(out)))


class ResNet1D(HeadMixin, nn.Module):
    """Stem, residual blocks, average pooling over time, linear head."""

    def __init__(self, num_outputs: int = 4, in_leads: int = 12, widths: tuple[int, ...] = (64, 128, 196, 256, 320),
                 kernel: int = 17, downsample: int = 4, dropout: float = 0.2):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(in_leads, widths[0], kernel, padding=kernel // 2, bias=False),
                                  nn.BatchNorm1d(widths[0]), nn.ReLU())
        self.blocks = nn.Sequential(*[ResBlock1d(widths[i], widths[i + 1], kernel, downsample, dropout)
                                      for i in range(len(widths) - 1)])
        self.num_features = widths[-1]
        self.head = nn.Linear(self.num_features, num_outputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Time-averaged output of the last block (batch, num_features)."""
        return self.blocks(self.stem(x)).mean(-1)


@register_model
def resnet1d_code(num_outputs: int = 4, in_leads: int = 12) -> ResNet1D:
    """The CODE-style ResNet (about 7 M parameters), built for 400 Hz x 4,096 samples."""
    model = ResNet1D(num_outputs, in_leads)
    model.pretrained_cfg = CODE_CFG
    return model
