"""Self-supervised pretraining by contrast across segments and leads (in the spirit of CLOCS and SimCLR).

Two views of one ECG are two different windows of it (``view_s`` seconds each, at independent random
starts), each with its own amplitude scaling, baseline wander, noise and lead dropout; the encoder learns to
map the two views of the same ECG close together and away from the other ECGs of the batch (NT-Xent loss
through a small projection head, which is dropped afterwards). What survives a change of window, of leads and
of noise is what belongs to the heart rather than to the recording: rhythm, axis, morphology.

Every random choice is a function of (seed, epoch, index), as in ``train.datamodule``, so a resumed run sees the
views an uninterrupted one would have.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ecgscope.config import AugmentConfig
from ecgscope.contract import StoreInput
from ecgscope.train.datamodule import augment

#: View augmentations: stronger than supervised training's, since invariance to them is what is learnt. Keeping
#: each lead's amplitude instead (``amplitude_scale_sd=0``) probed slightly better but started the motion GAN
#: worse (benchmarks/foundation_benchmark.py, README); the scaled views stay the default until more seeds decide.
VIEW_AUGMENT = AugmentConfig(amplitude_scale_sd=0.15, baseline_wander_mv=0.1, noise_mv=0.03, lead_dropout_p=0.2,
                             random_shift_s=0.0)


class TwoViewDataset(Dataset):
    """Two augmented windows of each ECG of ``rows`` (as the encoder's contract takes them)."""

    def __init__(self, source: StoreInput, rows: np.ndarray, view_s: float, seed: int,
                 aug: AugmentConfig = VIEW_AUGMENT):
        self.source, self.rows, self.seed, self.aug = source, np.asarray(rows), seed, aug
        pipeline = self.pipeline = source.pipeline
        self.view = int(round(view_s * pipeline.fs))
        if not 0 < self.view <= pipeline.n_samples:
            raise ValueError(f"view_s={view_s} must be > 0 and at most the input length "
                             f"({pipeline.n_samples / pipeline.fs:g} s)")

    @property
    def store(self):
        """The store the records come from (the loaders order reads by its parts)."""
        return self.source.store

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item):
        index, epoch = item if isinstance(item, tuple) else (item, 0)
        x = self.source.read(int(self.rows[index]))
        rng = np.random.default_rng([self.seed, epoch, index, 7])
        views = []
        for _ in range(2):
            start = int(rng.integers(0, x.shape[-1] - self.view + 1))
            views.append(torch.from_numpy(augment(x[:, start:start + self.view], self.pipeline.fs, self.aug, rng)))
        return views[0], views[1]


def gather_with_grad(z: torch.Tensor) -> torch.Tensor:
    """Every rank's rows of ``z`` in rank order, with gradients flowing back to each rank's own rows (``z``
    itself outside distributed training). Ranks must hold the same number of rows."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return z
    import warnings

    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():  # its deprecation names a private replacement; the public one still works
        warnings.simplefilter("ignore")
        return torch.cat(all_gather(z))


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float, gather: bool = False) -> torch.Tensor:
    """Normalised temperature-scaled cross-entropy: each view must pick its partner among the 2B - 1 others.

    With ``gather`` under distributed training the negatives come from every rank: each rank computes the loss
    of the global batch (every rank's views, in rank order), the same number the single process gives on that
    batch; the gradient reaching each rank's views is the world size times their share, which DDP's averaging
    of the parameter gradients turns back into the global batch's gradient.

    Computed in float32 with autocast off: under bf16 mixed precision the similarities (cosines divided by a
    small temperature) would keep 8 bits of mantissa, too few to rank near-equal partners."""
    with torch.autocast(device_type=z1.device.type, enabled=False):
        if gather:
            z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
        z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
        sim = z @ z.T / temperature
        sim.fill_diagonal_(float("-inf"))
        n = len(z1)
        partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
        return F.cross_entropy(sim, partner)


class ContrastiveModule(L.LightningModule):
    """An encoder (any registry model: ``forward_features``) with a projection head, trained with NT-Xent."""

    def __init__(self, encoder: nn.Module, lr: float = 1e-3, weight_decay: float = 1e-4, temperature: float = 0.1,
                 projection_dim: int = 64, max_epochs: int = 10):
        super().__init__()
        self.encoder = encoder
        for parameter in encoder.parameters():  # the zero-width head: nothing to learn, and DDP wants no idle weight
            if parameter.numel() == 0:
                parameter.requires_grad_(False)
        d = encoder.num_features
        self.projection = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, projection_dim))
        self.lr, self.weight_decay, self.temperature, self.max_epochs = lr, weight_decay, temperature, max_epochs

    def _loss(self, batch, gather: bool = False) -> torch.Tensor:
        v1, v2 = batch
        return nt_xent(self.projection(self.encoder.forward_features(v1)),
                       self.projection(self.encoder.forward_features(v2)), self.temperature, gather=gather)

    def training_step(self, batch, _):
        # negatives from every rank (training batches are the same size on every rank: the sampler pads)
        loss = self._loss(batch, gather=True)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch[0]),
                 sync_dist=True)
        return loss

    def validation_step(self, batch, _):
        # local negatives: validation shards are not padded, so ranks may hold different numbers of batches
        self.log("val/loss", self._loss(batch), on_epoch=True, prog_bar=True, batch_size=len(batch[0]),
                 sync_dist=True)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.max_epochs)}
