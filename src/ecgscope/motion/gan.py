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

from ecgscope.motion.generator import MotionGenerator


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
