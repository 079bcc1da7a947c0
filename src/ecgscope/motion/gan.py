"""A conditional GAN from the 12-lead ECG to one cycle of annular motion (velocity and displacement).

Generator: a registry ECG encoder (``forward_features``) -> with a noise vector -> an upsampling 1-D conv
decoder to 2 curves x ``n_points``, plus the cycle length (log RR). Discriminator: a 1-D conv over the curves,
conditioned on the ECG by a projection of the generator's (detached) ECG features. Loss as in pix2pix: the
adversarial term (non-saturating) plus ``recon_weight`` x L1 to the true curves, which keeps the generated
cycle on the patient's own and lets the adversary sharpen what L1 alone would average away.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
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


class MotionDiscriminator(nn.Module):
    """(curves (batch, 2, n_points), condition (batch, d)) -> realness logit (batch,)."""

    def __init__(self, condition_dim: int, width: int = 64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(2, width, 7, stride=2, padding=3), nn.LeakyReLU(0.2),
            nn.Conv1d(width, width, 5, stride=2, padding=2), nn.LeakyReLU(0.2),
            nn.Conv1d(width, width, 5, stride=2, padding=2), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool1d(1), nn.Flatten())
        self.out = nn.Linear(width, 1)
        self.embed = nn.Linear(condition_dim, width)  # projection discriminator (Miyato & Koyama 2018)

    def forward(self, curves: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = self.body(curves)
        return self.out(h).squeeze(1) + (self.embed(condition) * h).sum(1)


class MotionGAN(L.LightningModule):
    """Adversarial training with a reconstruction term; the batch is (ecg, curves scaled, log RR)."""

    def __init__(self, generator: MotionGenerator, lr: float = 1e-3, recon_weight: float = 20.0,
                 adversarial_weight: float = 1.0, max_epochs: int = 30):
        super().__init__()
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = MotionDiscriminator(generator.encoder.num_features, generator.width)
        self.lr, self.recon_weight, self.adversarial_weight = lr, recon_weight, adversarial_weight
        self.max_epochs = max_epochs

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.generator.noise_dim, device=self.device)

    def training_step(self, batch, _):
        ecg, curves, log_rr = batch
        opt_g, opt_d = self.optimizers()
        condition = self.generator.features(ecg)  # one encoder pass serves the generator and the condition
        fake, rr_hat = self.generator.decode(condition, self._noise(len(ecg)))

        # discriminator: real pairs up, generated pairs down
        cond = condition.detach()
        d_loss = (F.softplus(-self.discriminator(curves, cond)).mean()
                  + F.softplus(self.discriminator(fake.detach(), cond)).mean())
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()

        # generator: fool the discriminator, stay close to the true cycle, get the cycle length right
        adversarial = F.softplus(-self.discriminator(fake, cond)).mean()
        recon = F.l1_loss(fake, curves) + F.l1_loss(rr_hat, log_rr)
        g_loss = self.adversarial_weight * adversarial + self.recon_weight * recon
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()
        n = len(ecg)
        self.log_dict({"train/d_loss": d_loss, "train/adversarial": adversarial, "train/recon": recon},
                      on_step=False, on_epoch=True, batch_size=n, sync_dist=True)

    def on_train_epoch_end(self) -> None:
        for scheduler in self.lr_schedulers():
            scheduler.step()

    def on_validation_epoch_start(self) -> None:
        self._val_recon = torch.zeros(2, dtype=torch.float64)  # sum of batch means x batch sizes, ECGs

    def validation_step(self, batch, _):
        ecg, curves, log_rr = batch
        fake, rr_hat = self.generator(ecg)
        recon = F.l1_loss(fake.float(), curves.float()) + F.l1_loss(rr_hat.float(), log_rr.float())
        self._val_recon += torch.tensor([float(recon) * len(ecg), len(ecg)], dtype=torch.float64)

    def on_validation_epoch_end(self) -> None:
        """``val/recon`` over the whole validation set: under distributed training, every rank's sums added."""
        total = self._val_recon
        if self.trainer.world_size > 1:
            total = self.all_gather(total.to(self.device)).reshape(-1, 2).sum(0).cpu()
        if total[1] > 0:
            self.log("val/recon", float(total[0] / total[1]), prog_bar=True)

    def configure_optimizers(self):
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.lr, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.lr, betas=(0.5, 0.999))
        schedules = [torch.optim.lr_scheduler.CosineAnnealingLR(o, self.max_epochs) for o in (opt_g, opt_d)]
        return [opt_g, opt_d], schedules


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
