"""Net1D, the RegNet-style 1-D CNN of ECGFounder (REFERENCE.md section 3), and its checkpoint adapter.

Input contract (ECGFounder): (batch, 12, 5000) = 500 Hz x 10 s, leads I..V6; 50 Hz notch, 0.67-40 Hz band-pass,
median baseline removal, z-score over the whole 12 x 5000 array. Embedding: time-average of the last stage,
1024-d. Head: ``dense``, Linear(1024, 150).

Module and parameter names (``first_conv.conv``, ``stage_list.i.block_list.j.conv2.conv``, ``se_fc1``,
``dense``, ...) follow the published checkpoint so that its ``state_dict`` loads as it is; the code is
ecgscope's own.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ecgscope.errors import EcgscopeError
from ecgscope.models.config import ModelCfg
from ecgscope.models.layers import HeadMixin, SamePadConv1d, SamePadMaxPool1d, Swish
from ecgscope.models.registry import register_model

ECGFOUNDER_CFG = ModelCfg(
    fs=500.0, n_samples=5000, normalisation="z-score over the whole 12 x 5000 array",
    band_hz=(0.67, 40.0), paper="Li et al., ECGFounder, NEJM AI 2025", licence="code MIT; weights separate",
    extra={"notch_hz": 50.0, "baseline": "median filter", "embedding_dim": 1024, "n_labels": 150},
)


class CheckpointMismatchError(EcgscopeError, ValueError):
    """A checkpoint's tensors do not fit the architecture it is loaded into."""


class Net1DBlock(nn.Module):
    """Pre-activation bottleneck: 1x1 conv, grouped k conv (strided if downsampling), 1x1 conv, SE gate.

    The shortcut is max-pooled when the block downsamples and zero-padded in channels when it widens.
    """

    def __init__(self, c_in: int, c_out: int, ratio: float, kernel: int, stride: int, groups: int,
                 downsample: bool, first: bool, use_bn: bool, use_do: bool):
        super().__init__()
        mid = int(c_out * ratio)
        self.c_in, self.c_out, self.first, self.downsample = c_in, c_out, first, downsample
        self.use_bn, self.use_do = use_bn, use_do
        stride = stride if downsample else 1
        self.bn1, self.conv1 = nn.BatchNorm1d(c_in), SamePadConv1d(c_in, mid, 1)
        self.bn2, self.conv2 = nn.BatchNorm1d(mid), SamePadConv1d(mid, mid, kernel, stride, groups)
        self.bn3, self.conv3 = nn.BatchNorm1d(mid), SamePadConv1d(mid, c_out, 1)
        self.se_fc1, self.se_fc2 = nn.Linear(c_out, c_out // 2), nn.Linear(c_out // 2, c_out)
        self.act, self.drop = Swish(), nn.Dropout(0.5)
        self.pool = SamePadMaxPool1d(stride) if downsample else None

    def _pre(self, x: torch.Tensor, bn: nn.BatchNorm1d) -> torch.Tensor:
        x = self.act(bn(x) if self.use_bn else x)
        return self.drop(x) if self.use_do else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x if self.first else self._pre(x, self.bn1)  # the network's very first block starts raw
        out = self.conv1(out)
        out = self.conv2(self._pre(out, self.bn2))
        out = self.conv3(self._pre(out, self.bn3))
        gate = torch.sigmoid(self.se_fc2(self.act(self.se_fc1(out.mean(-1)))))
        out = out * gate[:, :, None]
        shortcut = self.pool(x) if self.pool is not None else x
        if self.c_out != self.c_in:
            extra = self.c_out - self.c_in
            shortcut = F.pad(shortcut.transpose(1, 2), (extra // 2, extra - extra // 2)).transpose(1, 2)
        return out + shortcut


class Net1DStage(nn.Module):
    """A stage: its first block downsamples and changes width, the rest keep both."""

    def __init__(self, c_in: int, c_out: int, n_blocks: int, stage_index: int, ratio: float, kernel: int,
                 stride: int, groups: int, use_bn: bool, use_do: bool):
        super().__init__()
        self.block_list = nn.ModuleList(
            Net1DBlock(c_in if j == 0 else c_out, c_out, ratio, kernel, stride, groups, downsample=(j == 0),
                       first=(stage_index == 0 and j == 0), use_bn=use_bn, use_do=use_do)
            for j in range(n_blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block_list:
            x = block(x)
        return x


class Net1D(HeadMixin, nn.Module):
    """Stem conv (stride 2), stages of Net1D blocks, time-average pooling, linear head ``dense``."""

    head_attr = "dense"

    def __init__(self, num_outputs: int = 150, in_leads: int = 12, base_filters: int = 64,
                 filters: tuple[int, ...] = (64, 160, 160, 400, 400, 1024, 1024),
                 blocks: tuple[int, ...] = (2, 2, 2, 3, 3, 4, 4), kernel: int = 16, stride: int = 2,
                 group_width: int = 16, ratio: float = 1.0, use_bn: bool = False, use_do: bool = False):
        super().__init__()
        if len(filters) != len(blocks):
            raise ValueError(f"{len(filters)} stage widths for {len(blocks)} stage depths")
        self.use_bn = use_bn
        self.first_conv = SamePadConv1d(in_leads, base_filters, kernel, stride=2)
        self.first_bn = nn.BatchNorm1d(base_filters)
        self.first_act = Swish()
        widths = (base_filters, *filters)
        self.stage_list = nn.ModuleList(
            Net1DStage(widths[i], widths[i + 1], blocks[i], i, ratio, kernel, stride, widths[i + 1] // group_width,
                       use_bn, use_do)
            for i in range(len(filters)))
        self.num_features = filters[-1]
        self.dense = nn.Linear(self.num_features, num_outputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The time-averaged output of the last stage (batch, num_features): ECGFounder's embedding."""
        x = self.first_conv(x)
        x = self.first_act(self.first_bn(x) if self.use_bn else x)
        for stage in self.stage_list:
            x = stage(x)
        return x.mean(-1)


@register_model
def net1d_ecgfounder(num_outputs: int = 150, in_leads: int = 12) -> Net1D:
    """ECGFounder's Net1D (about 30 M parameters); load published weights with ``load_ecgfounder``."""
    model = Net1D(num_outputs=num_outputs, in_leads=in_leads)
    model.pretrained_cfg = ECGFOUNDER_CFG
    return model


@register_model
def net1d_small(num_outputs: int = 4, in_leads: int = 12) -> Net1D:
    """The CPU default: Net1D at 0.15 M parameters (4 stages, narrower, kernel 9); 100 Hz x 10 s, mV, mean removed.

    Chosen by benchmarks/models_benchmark.py (20,000 ukb ECGs): it trains fastest of all the registered models,
    matches the oracle's AUROC, and its mean AUROC over two training seeds is 99.1 % of the best model's
    (inception1d, which trains 42x slower).
    """
    model = Net1D(num_outputs=num_outputs, in_leads=in_leads, base_filters=16, filters=(16, 32, 64, 128),
                  blocks=(1, 1, 2, 2), kernel=9, group_width=8, use_bn=True)
    model.pretrained_cfg = ModelCfg()
    return model


def load_ecgfounder(model: Net1D, checkpoint: str | Path, keep_head: bool = True) -> Net1D:
    """Load an ECGFounder checkpoint (a dict with ``state_dict``) into ``model`` without unpickling code.

    ``keep_head=False`` skips the 150-label ``dense`` layer (to fine-tune to other targets). Raises
    ``CheckpointMismatchError`` naming the first tensors whose names or shapes do not fit.
    """
    try:
        payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or non-tensor payloads
        raise CheckpointMismatchError(f"{checkpoint}: not a loadable weights-only checkpoint ({exc})") from exc
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict):
        raise CheckpointMismatchError(f"{checkpoint}: expected a dict with a 'state_dict' of tensors")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if not keep_head:
        state = {k: v for k, v in state.items() if not k.startswith("dense.")}
    own = model.state_dict()
    missing = [k for k in own if k not in state and (keep_head or not k.startswith("dense."))]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(v.shape)} != {tuple(own[k].shape)}" for k, v in state.items()
             if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append(f"{len(wrong)} tensor(s) of the wrong shape, e.g. {wrong[:2]}")
        if missing:
            parts.append(f"{len(missing)} missing, e.g. {missing[:2]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected, e.g. {unexpected[:2]}")
        raise CheckpointMismatchError(f"{checkpoint} does not fit {type(model).__name__}: " + "; ".join(parts)
                                      + ". Is it an ECGFounder Net1D checkpoint (12 leads, 1024-d)?")
    state |= {k: v for k, v in own.items() if k not in state}  # only the skipped head: keeps the model's own
    model.load_state_dict(state)
    return model
