"""Predictions of a saved model for every ECG of a store: point estimates, intervals, probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ecgscope.contract import StoreInput, usable_batches
from ecgscope.progress import progress_bar
from ecgscope.store import Store
from ecgscope.train.artifact import load_model
from ecgscope.train.inference import inference_device, predict_batches


def predict_store(model_dir: str | Path, store: str | Path | Store, rows: np.ndarray | None = None,
                  batch_size: int = 256, progress: bool = True, allow_resample: bool = True,
                  engine: str = "local", ray_address: str | None = None, shard_size: int = 4096) -> pd.DataFrame:
    """One row per ECG: ecg_id, patient_id, acquired_at, age, sex, lead_warning (where the store has them),
    ``input_note`` ("ok", or why the ECG got no prediction), and per target its value (with ``_std`` and
    conformal ``_lower`` / ``_upper`` when the model has them), probability, or log-risk.

    The store is read through the model's input contract (``preprocess.json``): resampled to its rate (unless
    ``allow_resample`` is off), its leads in the model's order; a store in other units or without the model's
    leads raises ``ContractError``, and a record shorter than the model's input gets NaN, not zero padding.

    ``engine="ray"`` predicts shards of ``shard_size`` rows as Ray tasks (on the cluster at ``ray_address`` or a
    local one), each loading the model once; the table is the same as the local engine's. The model directory
    and the store must be on a filesystem every node can read."""
    st = store if isinstance(store, Store) else Store(store)
    rows = np.arange(len(st)) if rows is None else np.asarray(rows, dtype=np.int64)
    if engine == "local":
        return _predict_rows(model_dir, st, rows, batch_size, progress, allow_resample)
    if engine != "ray":
        raise ValueError(f"engine must be local or ray, not {engine!r}")
    from ecgscope.engines import ray_map

    StoreInput(load_model(model_dir).pipeline, st, model=str(model_dir), allow_resample=allow_resample)  # fail early
    shards = [rows[i:i + shard_size] for i in range(0, len(rows), shard_size)] or [rows]
    parts = ray_map(_predict_shard, [(str(model_dir), str(st.root), shard, batch_size, allow_resample)
                                     for shard in shards], address=ray_address, progress=progress,
                    what="predicting")
    return pd.concat(parts, ignore_index=True)


def _predict_shard(job: tuple) -> pd.DataFrame:
    model_dir, root, rows, batch_size, allow_resample = job
    return _predict_rows(model_dir, Store(root), rows, batch_size, False, allow_resample)


def _predict_rows(model_dir: str | Path, st: Store, rows: np.ndarray, batch_size: int, progress: bool,
                  allow_resample: bool) -> pd.DataFrame:
    loaded = load_model(model_dir)
    source = StoreInput(loaded.pipeline, st, model=str(model_dir), allow_resample=allow_resample)
    model = loaded.model.to(inference_device())
    kept: list[np.ndarray] = []

    def batches(bar, task):
        for positions, x in usable_batches(source, rows, batch_size):
            kept.append(positions)
            yield torch.from_numpy(x)
            bar.advance(task, len(positions))

    with progress_bar(progress) as bar:
        decoded = predict_batches(model, loaded.spec, batches(bar, bar.add_task("predicting", total=len(rows))))
    keep = [c for c in ("ecg_id", "patient_id", "acquired_at", "age", "sex", "lead_warning")
            if c in st.manifest.columns]
    table = st.manifest.iloc[rows][keep].reset_index(drop=True)
    table["input_note"] = source.notes(rows)
    positions = np.concatenate(kept) if kept else np.empty(0, np.int64)
    for name, values in decoded.items():
        column = np.full(len(rows), np.nan)
        column[positions] = values
        table[name] = column
    for name, conf in loaded.conformal.items():
        std = table[f"{name}_std"].to_numpy() if conf.normalised_ else None
        table[f"{name}_lower"], table[f"{name}_upper"] = conf.interval(table[name].to_numpy(), std)
    return table
