"""Predictions of a saved model for every ECG of a store: point estimates, intervals, probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ecgscope.progress import progress_bar
from ecgscope.store import Store
from ecgscope.train.artifact import load_model
from ecgscope.train.module import predict_batches


def predict_store(model_dir: str | Path, store: str | Path | Store, rows: np.ndarray | None = None,
                  batch_size: int = 256, progress: bool = True) -> pd.DataFrame:
    """One row per ECG: ecg_id, patient_id, acquired_at, age, sex (where the store has them), and per target
    its value (with ``_std`` and conformal ``_lower`` / ``_upper`` when the model has them), probability, or
    log-risk."""
    loaded = load_model(model_dir)
    st = store if isinstance(store, Store) else Store(store)
    rows = np.arange(len(st)) if rows is None else np.asarray(rows)
    model = loaded.model.to("cuda" if torch.cuda.is_available() else "cpu")

    def batches(bar, task):
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            yield torch.from_numpy(loaded.pipeline(np.stack([st.read(int(r)) for r in chunk]), st.config.fs))
            bar.advance(task, len(chunk))

    with progress_bar(progress) as bar:
        decoded = predict_batches(model, loaded.spec, batches(bar, bar.add_task("predicting", total=len(rows))))
    keep = [c for c in ("ecg_id", "patient_id", "acquired_at", "age", "sex") if c in st.manifest.columns]
    table = st.manifest.iloc[rows][keep].reset_index(drop=True)
    for name, values in decoded.items():
        table[name] = values
    for name, conf in loaded.conformal.items():
        std = decoded.get(f"{name}_std") if conf.normalised_ else None
        table[f"{name}_lower"], table[f"{name}_upper"] = conf.interval(decoded[name], std)
    return table
