"""``ecgscope motion train``: fit the ECG -> annular motion GAN on paired data (generation, which does not import
Lightning, is in :mod:`ecgscope.motion.generate`).

Paired data: a cohort table (``ecg_row``, ``patient_id``, ``split`` with train/val/test) over a store, and a
motion table keyed by ``patient_id`` with ``rr_ms`` and the curves ``tdi_velocity_cm_s`` and
``annular_displacement_mm`` (lists of equal length: one R-to-R cycle; the simulator writes it as
``truth/motion.parquet``). The generator is saved as a directory: ``weights.safetensors``, ``motion.json``
(architecture and checksum), ``preprocess.json``, ``metrics.json``; loading never unpickles.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch

from ecgscope.config import AugmentConfig, ConfigError, TrainerConfig
from ecgscope.contract import StoreInput
from ecgscope.motion.gan import MotionGAN
from ecgscope.motion.generate import (
    LoadedGenerator,
    MotionError,
    generate_batches,
    motion_agreement,
    paired_curves,
    save_generator,
)
from ecgscope.motion.generator import MotionGenerator, log_rr, scale_curves
from ecgscope.signal import default_pipeline
from ecgscope.store.layout import Store
from ecgscope.train.artifact import load_model
from ecgscope.train.datamodule import CohortDataModule, StoreDataset
from ecgscope.train.inference import inference_device
from ecgscope.train.module import quiet_lightning
from ecgscope.train.trainer import fit, make_trainer


def _targets(velocity: np.ndarray, displacement: np.ndarray, rr_ms: np.ndarray) -> np.ndarray:
    curves = scale_curves(torch.from_numpy(velocity), torch.from_numpy(displacement)).flatten(1)
    return torch.cat([curves, log_rr(torch.from_numpy(rr_ms))[:, None]], 1).numpy()


class _FlatTargetGAN(MotionGAN):
    """MotionGAN fed by ``StoreDataset``: the targets row is the flattened scaled curves then log RR."""

    def _split(self, batch):
        ecg, flat = batch
        n_points = self.generator.n_points
        return ecg, flat[:, : 2 * n_points].view(len(ecg), 2, n_points), flat[:, -1]

    def training_step(self, batch, index):
        return super().training_step(self._split(batch), index)

    def validation_step(self, batch, index):
        return super().validation_step(self._split(batch), index)


def train_motion(store: str | Path, cohort: pd.DataFrame, motion: pd.DataFrame, out: str | Path, *,
                 encoder: str = "net1d_small", init_encoder: str | Path | None = None, epochs: int = 30,
                 batch_size: int = 64, lr: float = 1e-3, recon_weight: float = 20.0, seed: int = 0,
                 num_workers: int | None = None, resume: bool = False, progress: bool = True,
                 trainer: TrainerConfig | None = None) -> Path:
    """Train the motion GAN on the train split (validation L1 on val), evaluate on test; return the model dir.

    ``init_encoder``: a saved model directory (e.g. from ``ecgscope pretrain``) whose weights start the
    generator's ECG encoder; its architecture replaces ``encoder``. ``trainer`` says where it runs (None: one
    process); under DDP each rank trains on its shard, ``val/recon`` covers every rank's validation ECGs, and
    rank 0 alone evaluates and writes the generator."""
    out = Path(out)
    if not resume and (out / "checkpoints").exists():
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it or choose another out")
    need = [c for c in ("ecg_row", "patient_id", "split") if c not in cohort.columns]
    if need:
        raise MotionError(f"the cohort table lacks column(s) {need}; build it with `ecgscope cohort build`")
    velocity, displacement, rr_ms = paired_curves(cohort, motion)
    n_points = velocity.shape[1]
    st = Store(store)
    pretrained = load_model(init_encoder) if init_encoder is not None else None
    # a pretrained encoder keeps the input contract its weights learnt; a new one takes the store as it is
    pipeline = pretrained.pipeline if pretrained is not None else default_pipeline(st.config.fs, st.config.n_samples)
    source = StoreInput(pipeline, st, model=str(init_encoder) if pretrained is not None else encoder)
    targets = _targets(velocity, displacement, rr_ms)
    split = cohort["split"].to_numpy()
    rows = cohort["ecg_row"].to_numpy()
    source.refuse_short(rows, f"the motion cohort on {st.root}")
    data = {s: StoreDataset(source, rows[split == s], targets[split == s],
                             AugmentConfig() if s == "train" else None, seed) for s in ("train", "val")}
    if not len(data["train"]) or not len(data["val"]):
        raise MotionError("the cohort needs rows in both the 'train' and 'val' splits")

    quiet_lightning()
    L.seed_everything(seed, workers=True, verbose=False)
    if pretrained is not None:
        encoder = pretrained.info["architecture"]
        kwargs = {k: v for k, v in pretrained.info.get("model_kwargs", {}).items() if k != "num_outputs"}
        generator = MotionGenerator(encoder, n_points=n_points, encoder_kwargs=kwargs)
        head = f"{getattr(pretrained.model, 'head_attr', 'head')}."
        # the pretrained head is not the generator's (which has no outputs): keep the generator's own, and load
        # strictly, so every other encoder weight comes from the pretrained model and none is left at random
        weights = {k: v for k, v in pretrained.model.state_dict().items() if not k.startswith(head)}
        weights |= {k: v for k, v in generator.encoder.state_dict().items() if k.startswith(head)}
        try:
            generator.encoder.load_state_dict(weights)
        except RuntimeError as exc:
            raise MotionError(f"{init_encoder}: its weights do not fit the generator's {encoder} encoder "
                              f"({exc})") from exc
    else:
        generator = MotionGenerator(encoder, n_points=n_points)
    module = _FlatTargetGAN(generator, lr=lr, recon_weight=recon_weight, max_epochs=epochs)
    # the discriminator's step leaves the generator without gradients: DDP must look for unused parameters
    fitter = make_trainer(out, epochs, trainer, progress=progress, unused_parameters=True)
    fit(fitter, module, CohortDataModule(data, batch_size, num_workers, seed), out, resume)
    if not fitter.is_global_zero:
        return out / "model"

    metrics: dict[str, float] = {}
    test = split == "test"
    if test.any():
        loaded = LoadedGenerator(generator.to(inference_device()).eval(), pipeline, {})
        gen_v, gen_d, gen_rr = generate_batches(loaded, st, rows[test], progress=False)
        metrics = motion_agreement(velocity[test], displacement[test], rr_ms[test], gen_v, gen_d, gen_rr)
    info = {"encoder": encoder, "encoder_kwargs": generator.encoder_kwargs, "n_points": n_points,
            "noise_dim": generator.noise_dim, "width": generator.width,
            "trained_on": f"{len(data['train'])} paired ECGs", "epochs": epochs, "recon_weight": recon_weight,
            "encoder_init": str(init_encoder) if init_encoder is not None else "random"}
    return save_generator(out / "model", generator, pipeline, info, metrics)
