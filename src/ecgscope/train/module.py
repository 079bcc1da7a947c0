"""Masked multi-task training with Lightning: regression (with uncertainty), binary phenotypes, survival.

Missing labels (NaN) are masked out of the loss, since imaging cohorts are ragged. Device and precision
are chosen by Lightning (``accelerator="auto"``; bf16/fp16 mixed precision on a GPU), nothing else changes.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import nn

from ecgscope.train.inference import TaskSpec, predict_batches
from ecgscope.train.losses import cox_partial_likelihood, gaussian_nll, masked_bce, masked_mse


def masked_multitask_loss(outputs: torch.Tensor, targets: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    """Mean over tasks of Gaussian NLL or MSE (regression), weighted BCE (binary) and Cox partial
    likelihood (survival); missing targets are ignored, and a task with none in the batch is skipped."""
    outputs = outputs.float()
    losses, layout, t = [], spec.layout, 0
    for name in spec.regression:
        col, width = layout[name]
        if width == 2:
            loss = gaussian_nll(outputs[:, col], outputs[:, col + 1], targets[:, t])
        else:
            loss = masked_mse(outputs[:, col], targets[:, t])
        losses.append(loss)
        t += 1
    for name in spec.binary:
        losses.append(masked_bce(outputs[:, layout[name][0]], targets[:, t], spec.pos_weight.get(name, 1.0)))
        t += 1
    for name in spec.survival:
        losses.append(cox_partial_likelihood(outputs[:, layout[name][0]], targets[:, t], targets[:, t + 1]))
        t += 2
    present = [loss for loss in losses if loss is not None]
    if not present:
        return outputs.sum() * 0.0  # keeps the graph: a batch with no labels at all contributes nothing
    return torch.stack(present).mean()


def validation_metrics(spec: TaskSpec, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """``val/mae_NAME`` (in the target's units) per regression and ``val/auroc_NAME`` per binary target,
    from head outputs and encoded targets; missing labels are skipped, an undefined AUROC is left out."""
    from ecgscope.evaluate import auroc

    decoded, metrics = spec.decode(outputs), {}
    for t, name in enumerate(spec.regression):
        y = targets[:, t] * spec.std[name] + spec.mean[name]
        seen = np.isfinite(y)
        if seen.any():
            metrics[f"val/mae_{name}"] = float(np.abs(decoded[name][seen] - y[seen]).mean())
    for t, name in enumerate(spec.binary, start=len(spec.regression)):
        seen = np.isfinite(targets[:, t])
        value = auroc(targets[seen, t], decoded[name][seen]) if seen.any() else float("nan")
        if np.isfinite(value):
            metrics[f"val/auroc_{name}"] = value
    return metrics


def monitor_mode(monitor: str) -> str:
    """Whether a monitored validation metric improves by going down ("min") or up ("max", for AUROC)."""
    return "max" if monitor.startswith("val/auroc_") else "min"


class MultiTaskModule(L.LightningModule):
    """Wraps any registry model whose head has ``len(spec.names)`` outputs."""

    def __init__(self, model: nn.Module, spec: TaskSpec, lr: float = 3e-3, weight_decay: float = 0.05,
                 max_epochs: int = 10, param_groups: list[dict] | None = None):
        super().__init__()
        self.model, self.spec = model, spec
        self.lr, self.weight_decay, self.max_epochs = lr, weight_decay, max_epochs
        self.param_groups = param_groups  # per-group learning rates (discriminative fine-tuning)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch, _):
        x, y = batch
        loss = masked_multitask_loss(self(x), y, self.spec)
        self.log("train/loss", loss, prog_bar=True, on_epoch=True, on_step=False, sync_dist=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_outputs, self._val_targets, self._val_loss = [], [], []

    def validation_step(self, batch, _):
        x, y = batch
        outputs = self(x)
        self._val_loss.append((float(masked_multitask_loss(outputs, y, self.spec)), len(x)))
        self._val_outputs.append(outputs.detach().float().cpu())
        self._val_targets.append(y.detach().cpu())

    def on_validation_epoch_end(self) -> None:
        """``val/loss`` (the batch-size-weighted mean of the batch losses) and the per-target metrics over the
        whole validation set: under distributed training, gathered from every rank first, so each rank logs
        the same values and the best epoch, early stop and learning-rate choice see all validation ECGs."""
        if not self._val_outputs:
            return
        outputs, targets = torch.cat(self._val_outputs), torch.cat(self._val_targets)
        loss = torch.tensor([sum(v * n for v, n in self._val_loss), sum(n for _, n in self._val_loss)],
                            dtype=torch.float64)
        if self.trainer.world_size > 1:
            outputs, targets = gather_rows(self, outputs), gather_rows(self, targets)
            loss = self.all_gather(loss.to(self.device)).reshape(-1, 2).sum(0).cpu()
        self.log("val/loss", float(loss[0] / loss[1]), prog_bar=True)
        for name, value in validation_metrics(self.spec, outputs.numpy(), targets.numpy()).items():
            self.log(name, value)

    def predict_step(self, batch, _):
        return self(batch[0]).float()

    def configure_optimizers(self):
        groups = self.param_groups or [{"params": list(self.parameters()), "lr": self.lr}]
        opt = torch.optim.AdamW(groups, lr=self.lr, weight_decay=self.weight_decay)
        steps = self.trainer.estimated_stepping_batches
        sched = ResumableOneCycleLR(opt, max_lr=[g["lr"] for g in groups], total_steps=steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class ResumableOneCycleLR(torch.optim.lr_scheduler.OneCycleLR):
    """One-cycle learning rates that a checkpoint written with another number of steps per epoch (another
    number of ranks) resumes: the restored position is scaled to this run's total steps, so the schedule
    continues from the same fraction of training. With the same total it is exactly ``OneCycleLR``."""

    def load_state_dict(self, state_dict: dict) -> None:
        total, phases = self.total_steps, self._schedule_phases
        saved_total = state_dict.get("total_steps", total)
        super().load_state_dict(state_dict)
        if saved_total != total:
            self.total_steps, self._schedule_phases = total, phases
            self.last_epoch = min(round(self.last_epoch * total / saved_total), total - 1)
            self._step_count = self.last_epoch + 1


def gather_rows(module: L.LightningModule, rows: torch.Tensor) -> torch.Tensor:
    """Every rank's ``rows`` (n_rank, ...) stacked into one (sum of n_rank, ...) tensor on the CPU, on every
    rank; ranks may hold different numbers of rows (padded for the collective, then trimmed)."""
    sizes = module.all_gather(torch.tensor(len(rows), device=module.device)).reshape(-1).tolist()
    padded = torch.zeros((max(sizes), *rows.shape[1:]), dtype=rows.dtype)
    padded[: len(rows)] = rows
    gathered = module.all_gather(padded.to(module.device)).cpu()
    return torch.cat([gathered[rank, :size] for rank, size in enumerate(sizes)])


def seeded_model(name: str, seed: int, **kwargs) -> nn.Module:
    """Build registry model ``name`` with its weights initialised from ``seed`` (reproducible across runs)."""
    from ecgscope.models import create_model

    L.seed_everything(seed, workers=True, verbose=False)
    return create_model(name, **kwargs)


def select_device() -> tuple[str, str]:
    """Lightning accelerator and precision for this machine: mixed precision on a GPU, fp32 on a CPU."""
    if torch.cuda.is_available():
        return "gpu", "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "cpu", "32-true"


def trainer_settings(cfg=None) -> dict:
    """Lightning ``Trainer`` arguments for where training runs, from a :class:`ecgscope.config.TrainerConfig`
    (None: one process on the best device): accelerator, devices, nodes, strategy, and the precision
    (mixed on a GPU, fp32 on a CPU)."""
    accelerator, precision = select_device()
    if cfg is None:
        return {"accelerator": accelerator, "devices": 1, "precision": precision}
    if cfg.accelerator == "cpu":
        accelerator, precision = "cpu", "32-true"
    elif cfg.accelerator == "gpu" and accelerator != "gpu":
        from ecgscope.config import ConfigError

        raise ConfigError("trainer.accelerator is gpu, but this machine has no CUDA device")
    return {"accelerator": accelerator, "devices": cfg.devices, "num_nodes": cfg.num_nodes, "strategy": cfg.strategy,
            "precision": precision}


def is_global_zero() -> bool:
    """Whether this process is rank 0 of a distributed run (or the only process): the one that writes."""
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


class RestoreBestWeights(L.Callback):
    """Remember the weights of the epoch with the best ``monitor`` and load them when training ends."""

    def __init__(self, monitor: str = "val/loss"):
        self.monitor, self.best, self.state = monitor, float("inf"), None
        self.sign = -1.0 if monitor_mode(monitor) == "max" else 1.0  # best is the lowest sign * value

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and not trainer.sanity_checking and self.sign * float(value) < self.best:
            self.best = self.sign * float(value)
            self.state = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.state is not None:
            pl_module.load_state_dict(self.state)

    def state_dict(self) -> dict:
        # saved in every checkpoint, so a resumed run keeps its best-so-far
        return {"best": self.best, "state": self.state}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best, self.state = state_dict["best"], state_dict["state"]


class ValidationHistory(L.Callback):
    """Every epoch's validation metrics, carried in the checkpoints and written to ``path`` after each
    validation: Lightning's CSV logger starts a resumed run's file afresh, so its record alone would lose the
    epochs before a resume (and the learning-rate grid would compare runs on part of their history)."""

    def __init__(self, path: str | Path):
        self.path, self.rows = Path(path), []

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        from ecgscope.io.atomic import write_text


        row = {"epoch": int(trainer.current_epoch),
               **{k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if k.startswith("val/")}}
        self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]
        columns = sorted({k for r in self.rows for k in r} - {"epoch"})
        lines = [",".join(["epoch", *columns])]
        lines += [",".join([str(r["epoch"]), *(repr(r[c]) if c in r else "" for c in columns)]) for r in self.rows]
        if trainer.is_global_zero:  # every rank holds the same gathered metrics; one writes them
            write_text(self.path, "\n".join(lines) + "\n")

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rows = list(state_dict["rows"])


class SameBuffersOnEveryRank(L.Callback):
    """Under DDP, give every rank rank 0's buffers (batch-norm running statistics) before validating.

    DDP copies rank 0's buffers to the others at each training forward, but each rank then updates its own with
    its own batch, so after the last step they differ; without this, each rank would validate a slightly
    different model from the one rank 0 saves. (SyncBatchNorm would keep them equal, but runs on GPUs only.)"""

    def on_validation_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.world_size > 1:
            for buffer in module.buffers():
                torch.distributed.broadcast(buffer, src=0)


class RngState(L.Callback):
    """Carry torch's random state (dropout, GAN noise) through checkpoints, CPU and every CUDA device, so a
    resumed run draws the same numbers as an uninterrupted one on either."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["ecgscope_torch_rng"] = torch.get_rng_state()
        if torch.cuda.is_available():
            checkpoint["ecgscope_cuda_rng"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if "ecgscope_torch_rng" in checkpoint:
            torch.set_rng_state(checkpoint["ecgscope_torch_rng"])
        if "ecgscope_cuda_rng" in checkpoint and torch.cuda.is_available():
            states = checkpoint["ecgscope_cuda_rng"]
            if len(states) != torch.cuda.device_count():
                warnings.warn(f"the checkpoint holds the random state of {len(states)} GPU(s), this machine has "
                              f"{torch.cuda.device_count()}: the resumed run will not repeat the original exactly",
                              stacklevel=2)
            for device, state in enumerate(states[:torch.cuda.device_count()]):
                torch.cuda.set_rng_state(state, device)


def quiet_lightning() -> None:
    """Keep Lightning's banners (accelerator info, tips) out of the user's terminal; warnings still show."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # losses are logged per epoch, so a small cohort's few batches per epoch lose nothing
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    # validation metrics are computed from every rank's predictions gathered, so each rank logs the same value
    warnings.filterwarnings("ignore", message=r".*self.log\('val/.*sync_dist=True.*")
    warnings.filterwarnings("ignore", message=r".*torch.distributed.nn.functional.all_gather is deprecated.*")


def completed_epochs(checkpoint: Path) -> int:
    """How many whole epochs the end-of-epoch checkpoint ``checkpoint`` holds (Lightning counts from 0)."""
    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["epoch"]) + 1


def predict_multitask(module: MultiTaskModule, x: np.ndarray, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Decoded predictions of a fitted module for signals ``x`` (n, leads, samples) already through its pipeline."""
    signals = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return predict_batches(module.model, module.spec, signals.split(batch_size))
