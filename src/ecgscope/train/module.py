"""Masked multi-task training with Lightning: regression targets (standardised) and binary phenotypes.

Missing labels (NaN) are masked out of the loss, since imaging cohorts are ragged. Device and precision
are chosen by Lightning (``accelerator="auto"``; bf16/fp16 mixed precision on a GPU), nothing else changes.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


@dataclass
class TaskSpec:
    """Which outputs are regressions and which are binary, and the regression scaling (mean, std)."""

    regression: list[str] = field(default_factory=list)
    binary: list[str] = field(default_factory=list)
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    pos_weight: dict[str, float] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Output names in head order: regressions first, then binary."""
        return self.regression + self.binary

    @classmethod
    def from_targets(cls, targets: dict[str, np.ndarray], regression: list[str], binary: list[str]) -> TaskSpec:
        """Derive scaling and class weights from training targets (NaN ignored)."""
        mean = {k: float(np.nanmean(targets[k])) for k in regression}
        std = {k: float(np.nanstd(targets[k]) or 1.0) for k in regression}
        pos = {}
        for k in binary:
            p = float(np.nanmean(targets[k]))
            # capped: at 1 % prevalence an uncapped weight of ~100 makes the loss follow a few positives
            pos[k] = float(np.clip((1 - p) / max(p, 1e-3), 1.0, 10.0))
        return cls(list(regression), list(binary), mean, std, pos)

    def encode(self, targets: dict[str, np.ndarray]) -> np.ndarray:
        """Targets (n, outputs) float32 in head order, regressions standardised, NaN where missing."""
        cols = [(np.asarray(targets[k], float) - self.mean[k]) / self.std[k] for k in self.regression]
        cols += [np.asarray(targets[k], float) for k in self.binary]
        return np.stack(cols, 1).astype(np.float32)

    def decode(self, outputs: np.ndarray) -> dict[str, np.ndarray]:
        """Raw head outputs -> regression values in their units and binary probabilities."""
        out = {}
        for j, k in enumerate(self.regression):
            out[k] = outputs[:, j] * self.std[k] + self.mean[k]
        for j, k in enumerate(self.binary, start=len(self.regression)):
            out[k] = 1 / (1 + np.exp(-outputs[:, j]))
        return out


def masked_multitask_loss(outputs: torch.Tensor, targets: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    """Mean over tasks of MSE (regression) and weighted BCE (binary), ignoring NaN targets."""
    losses = []
    n_reg = len(spec.regression)
    for j, name in enumerate(spec.names):
        y, out = targets[:, j], outputs[:, j].float()
        mask = ~torch.isnan(y)
        if not mask.any():
            continue
        if j < n_reg:
            losses.append(nn.functional.mse_loss(out[mask], y[mask]))
        else:
            weight = torch.tensor(spec.pos_weight[name], device=out.device)
            losses.append(nn.functional.binary_cross_entropy_with_logits(out[mask], y[mask], pos_weight=weight))
    return torch.stack(losses).mean()


class MultiTaskModule(L.LightningModule):
    """Wraps any registry model whose head has ``len(spec.names)`` outputs."""

    def __init__(self, model: nn.Module, spec: TaskSpec, lr: float = 3e-3, weight_decay: float = 0.05,
                 max_epochs: int = 10):
        super().__init__()
        self.model, self.spec = model, spec
        self.lr, self.weight_decay, self.max_epochs = lr, weight_decay, max_epochs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch, _):
        x, y = batch
        loss = masked_multitask_loss(self(x), y, self.spec)
        self.log("train/loss", loss, prog_bar=True, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val/loss", masked_multitask_loss(self(x), y, self.spec), prog_bar=True)

    def predict_step(self, batch, _):
        return self(batch[0]).float()

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        steps = self.trainer.estimated_stepping_batches
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def select_device() -> tuple[str, str]:
    """Lightning accelerator and precision for this machine: mixed precision on a GPU, fp32 on a CPU."""
    if torch.cuda.is_available():
        return "gpu", "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "cpu", "32-true"


def _loader(x: np.ndarray, y: np.ndarray | None, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    tensors = [torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))]
    if y is not None:
        tensors.append(torch.from_numpy(y))
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=shuffle, generator=gen)


class RestoreBestWeights(L.Callback):
    """Remember the weights of the epoch with the lowest ``monitor`` and load them when training ends."""

    def __init__(self, monitor: str = "val/loss"):
        self.monitor, self.best, self.state = monitor, float("inf"), None

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and not trainer.sanity_checking and float(value) < self.best:
            self.best = float(value)
            self.state = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.state is not None:
            pl_module.load_state_dict(self.state)


def _quiet_lightning() -> None:
    """Keep Lightning's banners (accelerator info, tips) out of the user's terminal; warnings still show."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


def fit_multitask(model: nn.Module, spec: TaskSpec, x_train: np.ndarray, y_train: np.ndarray,
                  x_val: np.ndarray, y_val: np.ndarray, *, max_epochs: int = 10, batch_size: int = 64,
                  lr: float = 3e-3, seed: int = 0, progress: bool = True) -> MultiTaskModule:
    """Train ``model`` on encoded targets (see :meth:`TaskSpec.encode`) and return the fitted module.

    The one-cycle schedule runs its full course (stopping early would skip its annealing); the module
    returned carries the weights of the epoch with the lowest validation loss.
    """
    _quiet_lightning()
    L.seed_everything(seed, workers=True, verbose=False)
    accelerator, precision = select_device()
    module = MultiTaskModule(model, spec, lr=lr, max_epochs=max_epochs)
    callbacks = [RestoreBestWeights("val/loss")]
    trainer = L.Trainer(max_epochs=max_epochs, accelerator=accelerator, devices=1, precision=precision,
                        deterministic=True, logger=False, enable_checkpointing=False, callbacks=callbacks,
                        enable_progress_bar=progress, enable_model_summary=False)
    trainer.fit(module, _loader(x_train, y_train, batch_size, True, seed), _loader(x_val, y_val, 256, False, seed))
    return module


def predict_multitask(module: MultiTaskModule, x: np.ndarray, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Decoded predictions of a fitted module for signals ``x`` (n, leads, samples)."""
    module.eval()
    device = next(module.parameters()).device
    outs = []
    with torch.no_grad():
        for (xb,) in _loader(x, None, batch_size, False, 0):
            outs.append(module(xb.to(device)).float().cpu().numpy())
    return module.spec.decode(np.concatenate(outs))
