"""The ECG -> annular motion generator and the scaling of its curves, without the training machinery (Lightning
is not imported): what ``ecgscope motion generate`` loads and runs. The GAN that trains it is in
:mod:`ecgscope.motion.gan`."""

from __future__ import annotations

import torch
from torch import nn

from ecgscope.models import create_model

#: Curves are divided by these before the networks see them (velocity cm/s, displacement mm).
CURVE_SCALE = (10.0, 10.0)


class LinearUpsample2x(nn.Module):
    """Twice the length by linear interpolation, as ``nn.Upsample(scale_factor=2, mode="linear")`` with
    ``align_corners=False``, written with slices and sums: PyTorch's upsampling has no deterministic CUDA
    backward, and training runs with ``deterministic=True``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = torch.cat([x[..., :1], x[..., :-1]], dim=-1)
        right = torch.cat([x[..., 1:], x[..., -1:]], dim=-1)
        return torch.stack([0.75 * x + 0.25 * left, 0.75 * x + 0.25 * right], dim=-1).flatten(-2)


class MotionGenerator(nn.Module):
    """ECG (batch, 12, samples) -> curves (batch, 2, n_points) in scaled units, and log RR (batch,)."""

    def __init__(self, encoder: str = "net1d_small", n_points: int = 200, noise_dim: int = 16, width: int = 64,
                 encoder_kwargs: dict | None = None):
        super().__init__()
        if n_points % 8:
            raise ValueError(f"n_points must be a multiple of 8, not {n_points}")
        self.encoder_kwargs = dict(encoder_kwargs or {})
        self.encoder = create_model(encoder, num_outputs=0, **self.encoder_kwargs)
        self.noise_dim, self.n_points, self.width = noise_dim, n_points, width
        d = self.encoder.num_features
        self.seed_layer = nn.Linear(d + noise_dim, width * (n_points // 8))
        blocks = []
        for _ in range(3):
            blocks += [LinearUpsample2x(),
                       nn.Conv1d(width, width, 5, padding=2), nn.BatchNorm1d(width), nn.ReLU()]
        self.decoder = nn.Sequential(*blocks, nn.Conv1d(width, 2, 5, padding=2))
        self.rr = nn.Linear(d, 1)

    def features(self, ecg: torch.Tensor) -> torch.Tensor:
        """The ECG condition (batch, d)."""
        return self.encoder.forward_features(ecg)

    def decode(self, h: torch.Tensor, noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Curves and log RR from the ECG condition ``h`` (and noise; zero noise gives the central cycle)."""
        if noise is None:
            noise = torch.zeros(len(h), self.noise_dim, device=h.device, dtype=h.dtype)
        seed = self.seed_layer(torch.cat([h, noise], 1)).view(len(h), self.width, self.n_points // 8)
        return self.decoder(seed), self.rr(h).squeeze(1)

    def forward(self, ecg: torch.Tensor, noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decode(self.features(ecg), noise)


def scale_curves(velocity: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
    """Stack (n, T) velocity and displacement into the networks' scaled (n, 2, T)."""
    return torch.stack([velocity / CURVE_SCALE[0], displacement / CURVE_SCALE[1]], 1)


def unscale_curves(curves: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Back to velocity (cm/s) and displacement (mm)."""
    return curves[:, 0] * CURVE_SCALE[0], curves[:, 1] * CURVE_SCALE[1]


def log_rr(rr_ms: torch.Tensor) -> torch.Tensor:
    """The RR target: log of seconds."""
    return torch.log(rr_ms / 1000.0)


def rr_from_log(value: torch.Tensor) -> torch.Tensor:
    """RR in ms from the generator's output."""
    return torch.exp(value) * 1000.0
