"""xresnet1d: the fastai "bag of tricks" ResNet in 1-D, as benchmarked on PTB-XL (Strodthoff et al. 2021).

Stem of three kernel-5 convolutions and a max pool; stages of basic (expansion 1) or bottleneck (expansion
4) blocks; shortcuts average-pool then project when the shape changes; each block's last BN starts at zero;
the head concatenates average and max pooling. xresnet1d101 was among the best on PTB-XL (macro AUROC
0.925 on all statements, 100 Hz x 10 s input).
"""

from __future__ import annotations

import torch
from torch import nn

from ecgscope.models.config import ModelCfg
from ecgscope.models.layers import HeadMixin
from ecgscope.models.registry import register_model

PTBXL_CFG = ModelCfg(fs=100.0, n_samples=1000, normalisation="per-lead standardisation on the training set",
                     paper="Strodthoff et al., IEEE JBHI 2021")


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, act: bool = True, zero: bool = False):
    bn = nn.BatchNorm1d(c_out)
    nn.init.constant_(bn.weight, 0.0 if zero else 1.0)
    layers = [nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False), bn]
    return nn.Sequential(*layers, nn.ReLU()) if act else nn.Sequential(*layers)


class XBlock(nn.Module):
    """Basic (two convs) or bottleneck (1-k-1) block with an average-pooled, projected shortcut."""

    def __init__(self, c_in: int, width: int, expansion: int, stride: int, kernel: int):
        super().__init__()
        c_out = width * expansion
        if expansion == 1:
            self.body = nn.Sequential(_conv_bn(c_in, width, kernel, stride),
                                      _conv_bn(width, c_out, kernel, act=False, zero=True))
        else:
            self.body = nn.Sequential(_conv_bn(c_in, width, 1), _conv_bn(width, width, kernel, stride),
                                      _conv_bn(width, c_out, 1, act=False, zero=True))
        pool = [nn.AvgPool1d(stride, ceil_mode=True)] if stride > 1 else []
        proj = [_conv_bn(c_in, c_out, 1, act=False)] if c_in != c_out else []
        self.shortcut = nn.Sequential(*pool, *proj)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class XResNet1d(HeadMixin, nn.Module):
    """Stem, four stages, concat pooling, BN-dropout-linear head."""

    def __init__(self, layers: tuple[int, ...], expansion: int, num_outputs: int = 4, in_leads: int = 12,
                 kernel: int = 5, widths: tuple[int, ...] = (64, 128, 256, 512), dropout: float = 0.25):
        super().__init__()
        self.stem = nn.Sequential(_conv_bn(in_leads, 32, kernel, stride=2), _conv_bn(32, 32, kernel),
                                  _conv_bn(32, 64, kernel), nn.MaxPool1d(3, stride=2, padding=1))
        stages, c_in = [], 64
        for i, (n_blocks, width) in enumerate(zip(layers, widths, strict=True)):
            for j in range(n_blocks):
                stages.append(XBlock(c_in, width, expansion, 2 if (j == 0 and i > 0) else 1, kernel))
                c_in = width * expansion
        self.stages = nn.Sequential(*stages)
        self.num_features = 2 * c_in
        self.pool_norm = nn.Sequential(nn.BatchNorm1d(self.num_features), nn.Dropout(dropout))
        self.head = nn.Linear(self.num_features, num_outputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenated average and max pooling of the last stage (batch, num_features)."""
        h = self.stages(self.stem(x))
        return self.pool_norm(torch.cat([h.mean(-1), h.amax(-1)], dim=1))


def _xresnet(layers, expansion, num_outputs, in_leads):
    model = XResNet1d(layers, expansion, num_outputs, in_leads)
    model.pretrained_cfg = PTBXL_CFG
    return model


@register_model
def xresnet1d18(num_outputs: int = 4, in_leads: int = 12) -> XResNet1d:
    """Basic blocks [2, 2, 2, 2] (about 6 M parameters)."""
    return _xresnet((2, 2, 2, 2), 1, num_outputs, in_leads)


@register_model
def xresnet1d50(num_outputs: int = 4, in_leads: int = 12) -> XResNet1d:
    """Bottleneck blocks [3, 4, 6, 3]."""
    return _xresnet((3, 4, 6, 3), 4, num_outputs, in_leads)


@register_model
def xresnet1d101(num_outputs: int = 4, in_leads: int = 12) -> XResNet1d:
    """Bottleneck blocks [3, 4, 23, 3], the PTB-XL benchmark's variant."""
    return _xresnet((3, 4, 23, 3), 4, num_outputs, in_leads)
