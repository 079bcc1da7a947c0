"""A compact residual 1-D CNN: a plain baseline, and (tiny) the model of the tests.

Input contract: (batch, 12, samples) in mV, standard lead order, any rate (the demo uses 100 Hz x 10 s);
each lead's mean is removed by the caller's preprocessing. Output: ``num_outputs`` raw values per ECG.
"""

from __future__ import annotations

import torch
from torch import nn

from ecgscope.models.config import ModelCfg
from ecgscope.models.layers import HeadMixin
from ecgscope.models.registry import register_model


class ResidualBlock1d(nn.Module):
    """Two convolutions with batch norm and a strided shortcut."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, dropout: float):
        super().__init__()
        pad = kernel // 2
        self.body = nn.Sequential(
            nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=pad, bias=False), nn.BatchNorm1d(c_out), nn.ReLU(),
            nn.Dropout(dropout),
            nn.Conv1d(c_out, c_out, kernel, padding=pad, bias=False), nn.BatchNorm1d(c_out),
        )
        self.skip = (nn.Identity() if c_in == c_out and stride == 1 else
                     nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out)))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class CompactECGNet(HeadMixin, nn.Module):
    """Stem, four residual stages that halve the length, global average and max pooling, linear head."""

    def __init__(self, num_outputs: int = 4, in_leads: int = 12, width: int = 32, kernel: int = 9,
                 dropout: float = 0.1):
        super().__init__()
        self.in_leads = in_leads
        chans = [width, width, 2 * width, 2 * width, 4 * width]
        self.stem = nn.Sequential(nn.Conv1d(in_leads, chans[0], 15, stride=2, padding=7, bias=False),
                                  nn.BatchNorm1d(chans[0]), nn.ReLU())
        self.stages = nn.Sequential(*[ResidualBlock1d(chans[i], chans[i + 1], kernel, 2, dropout) for i in range(4)])
        self.num_features = 2 * chans[-1]
        self.head = nn.Linear(self.num_features, num_outputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled embedding (batch, num_features)."""
        h = self.stages(self.stem(x))
        return torch.cat([h.mean(-1), h.amax(-1)], dim=1)

@register_model
def compact_cnn(num_outputs: int = 4, in_leads: int = 12, width: int = 32, dropout: float = 0.2) -> CompactECGNet:
    """A plain residual baseline, about 0.4 M parameters (the default, ``net1d_small``, is faster and as good)."""
    model = CompactECGNet(num_outputs=num_outputs, in_leads=in_leads, width=width, dropout=dropout)
    model.pretrained_cfg = ModelCfg()
    return model


@register_model
def compact_cnn_tiny(num_outputs: int = 4, in_leads: int = 12) -> CompactECGNet:
    """A very small variant for tests and smoke runs."""
    model = CompactECGNet(num_outputs=num_outputs, in_leads=in_leads, width=8, dropout=0.0)
    model.pretrained_cfg = ModelCfg()
    return model
