"""inception1d: InceptionTime for ECG as benchmarked on PTB-XL (Strodthoff et al. 2021; Fawaz et al. 2020).

Each module: a 1x1 bottleneck to 32 channels, parallel convolutions of kernel 39, 19 and 9 plus a max-pool
branch, concatenated (4 x 32 channels), BN, ReLU. Six modules, with a projected residual every three; the
head concatenates average and max pooling. Best on PTB-XL "all statements" with xresnet1d101 (0.925).
"""

from __future__ import annotations

import torch
from torch import nn

from ecgscope.models.layers import HeadMixin
from ecgscope.models.registry import register_model
from ecgscope.models.xresnet1d import PTBXL_CFG


class InceptionModule(nn.Module):
    """Bottleneck, three kernel sizes and a pooled branch, concatenated."""

    def __init__(self, c_in: int, filters: int = 32, kernels: tuple[int, ...] = (39, 19, 9)):
        super().__init__()
        self.bottleneck = nn.Conv1d(c_in, filters, 1, bias=False) if c_in > 1 else nn.Identity()
        first = filters if c_in > 1 else c_in
        self.convs = nn.ModuleList(nn.Conv1d(first, filters, k, padding=k // 2, bias=False) for k in kernels)
        self.pool_branch = nn.Sequential(nn.MaxPool1d(3, stride=1, padding=1), nn.Conv1d(c_in, filters, 1, bias=False))
        self.out = nn.Sequential(nn.BatchNorm1d(filters * (len(kernels) + 1)), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.bottleneck(x)
        return self.out(torch.cat([conv(b) for conv in self.convs] + [self.pool_branch(x)], dim=1))


class Inception1d(HeadMixin, nn.Module):
    """Stacked inception modules with residual shortcuts every ``residual_every`` modules."""

    def __init__(self, num_outputs: int = 4, in_leads: int = 12, depth: int = 6, filters: int = 32,
                 residual_every: int = 3, dropout: float = 0.25):
        super().__init__()
        width = 4 * filters
        self.modules_ = nn.ModuleList(InceptionModule(in_leads if d == 0 else width, filters) for d in range(depth))
        self.shortcuts = nn.ModuleList(
            nn.Sequential(nn.Conv1d(in_leads if d == 0 else width, width, 1, bias=False), nn.BatchNorm1d(width))
            for d in range(0, depth, residual_every))
        self.residual_every = residual_every
        self.num_features = 2 * width
        self.pool_norm = nn.Sequential(nn.BatchNorm1d(self.num_features), nn.Dropout(dropout))
        self.head = nn.Linear(self.num_features, num_outputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenated average and max pooling of the last module (batch, num_features)."""
        residual = x
        for d, module in enumerate(self.modules_):
            x = module(x)
            if (d + 1) % self.residual_every == 0:
                x = torch.relu(x + self.shortcuts[d // self.residual_every](residual))
                residual = x
        return self.pool_norm(torch.cat([x.mean(-1), x.amax(-1)], dim=1))


@register_model
def inception1d(num_outputs: int = 4, in_leads: int = 12) -> Inception1d:
    """Depth 6, 32 filters per branch (about 0.5 M parameters)."""
    model = Inception1d(num_outputs, in_leads)
    model.pretrained_cfg = PTBXL_CFG
    return model
