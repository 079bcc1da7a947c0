"""The one Lightning ``Trainer`` set-up that every training run shares (supervised, contrastive pretraining,
the motion GAN): checkpoints every epoch (``OUT/checkpoints/last.ckpt`` resumes), torch's random state and
batch-norm buffers carried across checkpoints and ranks, CSV logs, the epoch-seeded sampler's own sharding, and
a progress bar that counts epochs as people do."""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger

from ecgscope.train.module import RngState, SameBuffersOnEveryRank, trainer_settings


class EpochProgressBar(RichProgressBar):
    """Lightning's rich bar, naming epochs from 1 ("Epoch 3/3" in the last of three), not "Epoch 2/2"."""

    def _get_train_description(self, current_epoch: int) -> str:
        text = f"Epoch {current_epoch + 1}/{self.trainer.max_epochs}"
        return f"{text:{len(self.validation_description)}}" if len(self.validation_description) > len(text) else text


def make_trainer(out: Path, max_epochs: int, trainer=None, callbacks: list[L.Callback] = (), *,
                 progress: bool = True, unused_parameters: bool = False) -> L.Trainer:
    """A ``Trainer`` writing under ``out`` for ``max_epochs``, on the processes a
    :class:`~ecgscope.config.TrainerConfig` ``trainer`` names (None: one). ``unused_parameters``: a step leaves
    some parameters without gradients (the GAN's discriminator step), which DDP must be told."""
    settings = trainer_settings(trainer)
    if unused_parameters and settings.get("strategy") == "ddp":
        settings["strategy"] = "ddp_find_unused_parameters_true"
    # save_top_k=1 with no monitor keeps the latest epoch; with save_top_k=0 last.ckpt would only appear at
    # the very end, and a killed run could not resume
    hooks = [*callbacks, ModelCheckpoint(dirpath=Path(out) / "checkpoints", save_last=True, save_top_k=1,
                                         every_n_epochs=1), RngState(), SameBuffersOnEveryRank()]
    if progress:
        hooks.append(EpochProgressBar())
    return L.Trainer(max_epochs=max_epochs, **settings, deterministic=True, callbacks=hooks,
                     logger=CSVLogger(out, name="logs", version=0), num_sanity_val_steps=0,
                     enable_progress_bar=progress, enable_model_summary=False,
                     use_distributed_sampler=False)  # EpochSeededSampler shards by rank itself


#: glibc's mallopt parameters and the values training sets (see :func:`reuse_freed_memory`).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's largest on 64-bit; a batch's activations are a few MiB each
_TRIM_THRESHOLD_BYTES = 256 * 2**20


@functools.cache
def reuse_freed_memory() -> bool:
    """Keep the memory freed between training steps for the next step (glibc only; elsewhere nothing happens).

    By default glibc maps every allocation above 128 KiB (a CPU batch's activations, the gradients) from the
    kernel and unmaps it on free, so each step page-faults its working set back in (about 4,000 faults a step for
    the demo's CNN on one thread, its system time). Serving such allocations from the heap, and trimming it only
    above 256 MiB, leaves the numbers as they were (allocation does not touch them) and the faults go;
    ``benchmarks/alloc_benchmark.py`` measures both. Returns whether glibc took the settings.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): its allocator stays as it is
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES))


def fit(trainer: L.Trainer, module: L.LightningModule, datamodule: L.LightningDataModule, out: Path,
        resume: bool) -> None:
    """Train, continuing from ``OUT/checkpoints/last.ckpt`` when ``resume`` and it exists."""
    reuse_freed_memory()
    last = Path(out) / "checkpoints" / "last.ckpt"
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if resume and last.exists() else None)
