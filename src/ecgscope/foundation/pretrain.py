"""``ecgscope pretrain``: a self-supervised encoder from the unlabeled ECGs of a store.

The encoder is saved as an ordinary model directory (safetensors weights, ``model.json`` with no targets,
``preprocess.json``), so ``ecgscope embed`` reads it and ``ecgscope finetune --from`` starts from it.
Checkpoints are written every epoch; ``resume=True`` continues a killed run.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np

from ecgscope.config import AugmentConfig, ConfigError, TrainerConfig
from ecgscope.contract import StoreInput
from ecgscope.foundation.contrastive import VIEW_AUGMENT, ContrastiveModule, TwoViewDataset
from ecgscope.io import write_text
from ecgscope.signal import default_pipeline
from ecgscope.store.layout import Store
from ecgscope.train.artifact import save_model
from ecgscope.train.datamodule import CohortDataModule
from ecgscope.train.inference import TaskSpec
from ecgscope.train.module import quiet_lightning, seeded_model
from ecgscope.train.trainer import fit, make_trainer


def pretrain_encoder(store: str | Path, out: str | Path, *, model: str = "net1d_small", epochs: int = 10,
                     batch_size: int = 128, lr: float = 1e-3, view_s: float = 5.0, temperature: float = 0.1,
                     val_fraction: float = 0.1, rows: np.ndarray | None = None, seed: int = 0,
                     augment: AugmentConfig = VIEW_AUGMENT, num_workers: int | None = None, resume: bool = False,
                     progress: bool = True, callbacks: list[L.Callback] | None = None,
                     trainer: TrainerConfig | None = None) -> Path:
    """Pretrain registry model ``model`` contrastively on ``rows`` of ``store`` (all by default); hold out
    ``val_fraction`` of the patients for the validation loss; return the saved encoder's directory.
    ``trainer``: where and on how many processes (one by default; under DDP the negatives come from every
    rank and rank 0 writes the encoder)."""
    out = Path(out)
    settings = {"store": str(store), "model": model, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                "view_s": view_s, "temperature": temperature, "val_fraction": val_fraction, "seed": seed,
                "method": "contrastive (segments and leads, NT-Xent)", "augment": augment.model_dump()}
    saved = out / "pretrain.json"
    if resume and saved.exists() and json.loads(saved.read_text()) != settings:
        raise ConfigError(f"{saved} differs from the settings given: resume with the same ones")
    if not resume and (out / "checkpoints").exists():
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it or choose another out")
    out.mkdir(parents=True, exist_ok=True)
    write_text(saved, json.dumps(settings, indent=2) + "\n")

    st = Store(store)
    rows = np.arange(len(st)) if rows is None else np.asarray(rows)
    patients = st.manifest["patient_id"].astype(str).to_numpy()[rows]
    unique = np.unique(patients)
    held = np.random.default_rng(seed).permutation(unique)[: max(1, int(round(val_fraction * len(unique))))]
    is_val = np.isin(patients, held)
    if is_val.all() or len(rows) < 4:
        raise ConfigError(f"pretraining needs at least a few ECGs from more than one patient; got {len(rows)}")
    pipeline = default_pipeline(st.config.fs, st.config.n_samples)
    source = StoreInput(pipeline, st, model=model)
    source.refuse_short(rows, f"pretraining on {st.root}")
    data = {name: TwoViewDataset(source, rows[mask], view_s, seed, augment)
            for name, mask in (("train", ~is_val), ("val", is_val))}

    quiet_lightning()
    encoder = seeded_model(model, seed, num_outputs=0)
    module = ContrastiveModule(encoder, lr=lr, temperature=temperature, max_epochs=epochs)
    fitter = make_trainer(out, epochs, trainer, list(callbacks or []), progress=progress)
    # drop_last is not needed: NT-Xent works with any batch of two or more
    fit(fitter, module, CohortDataModule(data, batch_size, num_workers, seed), out, resume)
    if not fitter.is_global_zero:
        return out / "model"
    logged = fitter.callback_metrics
    metrics = {k.replace("/", "_"): float(v) for k, v in logged.items()}
    return save_model(out / "model", encoder.cpu(), model, TaskSpec(), pipeline, model_kwargs={}, metrics=metrics,
                      data=f"{store}: {int((~is_val).sum())} ECGs, self-supervised ({settings['method']})")
