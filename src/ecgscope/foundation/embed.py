"""``ecgscope embed``: one vector per ECG of a store, from a saved encoder or a published checkpoint.

Embeddings are the encoder's pooled features (``forward_features``), computed in batches and streamed to a
Parquet file (``ecg_id``, ``patient_id``, then ``emb_0`` ... ``emb_{d-1}`` as float32); the file appears
only when complete. ``ecgfounder_encoder`` wraps a downloaded ECGFounder checkpoint with its exact input
contract (REFERENCE.md section 3) so that it embeds like any saved model: 1,024 values per ECG.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from torch import nn

from ecgscope.contract import StoreInput, usable_batches
from ecgscope.io.atomic import atomic_file
from ecgscope.models import create_model
from ecgscope.models.net1d import load_ecgfounder
from ecgscope.progress import progress_bar
from ecgscope.signal import ECGFOUNDER_PIPELINE, Pipeline
from ecgscope.store import Store
from ecgscope.train.artifact import load_model, save_model
from ecgscope.train.inference import TaskSpec, infer, inference_device


@dataclass
class Encoder:
    """A model that embeds (``forward_features``) and the signal pipeline its input needs."""

    model: nn.Module
    pipeline: Pipeline
    name: str

    @property
    def dim(self) -> int:
        """Length of one embedding."""
        return int(self.model.num_features)


def load_encoder(model_dir: str | Path) -> Encoder:
    """The encoder of a saved ecgscope model directory (pretrained, trained or fine-tuned: the head is ignored)."""
    loaded = load_model(model_dir)
    return Encoder(loaded.model, loaded.pipeline, f"{loaded.info['architecture']} ({model_dir})")


def ecgfounder_encoder(checkpoint: str | Path) -> Encoder:
    """ECGFounder's Net1D with a downloaded checkpoint (a dict with ``state_dict``) and its preprocessing:
    500 Hz x 10 s, 50 Hz notch, 0.67-40 Hz band-pass, median baseline removal, global z-score; 1,024-d."""
    model = load_ecgfounder(create_model("net1d_ecgfounder"), checkpoint, keep_head=False)
    return Encoder(model.eval(), ECGFOUNDER_PIPELINE, f"ECGFounder ({Path(checkpoint).name})")


def save_ecgfounder(checkpoint: str | Path, out: str | Path) -> Path:
    """A model directory from a downloaded ECGFounder checkpoint: its Net1D weights (the 150-label head left
    out) and its documented preprocessing as the input contract, so ``ecgscope finetune --from`` and
    ``ecgscope embed`` feed it ECGFounder's input whatever the store (a 100 Hz store is resampled to 500 Hz)."""
    model = load_ecgfounder(create_model("net1d_ecgfounder"), checkpoint, keep_head=False)
    model.reset_head(0)
    return save_model(out, model, "net1d_ecgfounder", TaskSpec(), ECGFOUNDER_PIPELINE, model_kwargs={},
                      data=f"ECGFounder's released weights ({Path(checkpoint).name})")


def embed_batches(encoder: Encoder, signals, fs: float) -> np.ndarray:
    """Embeddings (n, dim) of an iterable of signal batches (batch, leads, samples) sampled at ``fs``."""
    out = [_features(encoder.model, encoder.pipeline(np.asarray(batch), fs)) for batch in signals]
    return np.concatenate(out) if out else np.empty((0, encoder.dim), np.float32)


def _features(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The pooled features (n, dim) of signals already through the encoder's pipeline, on its device."""
    return next(infer(model, [x], model.forward_features)).numpy()


def embed_store(encoder: Encoder, store: str | Path | Store, out: str | Path, rows: np.ndarray | None = None,
                batch_size: int = 64, progress: bool = True, engine: str = "local", ray_address: str | None = None,
                shard_size: int = 4096) -> Path:
    """Embed ``rows`` (all by default) of ``store`` into the Parquet file ``out``; return its path.

    The store is read through the encoder's input contract (``ContractError`` when it cannot fit); a record
    shorter than the contract's input gets NaN embeddings and says why in ``input_note``. ``engine="ray"``
    embeds shards of ``shard_size`` rows as Ray tasks (the encoder sent to the cluster once; the store on a
    filesystem every node reads); the file is the same as the local engine's, written here as shards arrive."""
    if engine not in ("local", "ray"):
        raise ValueError(f"engine must be local or ray, not {engine!r}")
    st = store if isinstance(store, Store) else Store(store)
    source = StoreInput(encoder.pipeline, st, model=encoder.name)
    rows = np.arange(len(st)) if rows is None else np.asarray(rows, dtype=np.int64)
    ids = st.manifest.iloc[rows][["ecg_id", "patient_id"]].astype(str).reset_index(drop=True)
    ids["input_note"] = source.notes(rows)
    names = [f"emb_{i}" for i in range(encoder.dim)]
    schema = pa.schema([("ecg_id", pa.string()), ("patient_id", pa.string()), ("input_note", pa.string())]
                       + [(n, pa.float32()) for n in names])
    if engine == "ray":
        from ecgscope.engines import ray_iter

        encoder.model.cpu()
        step = shard_size
        chunks = ray_iter(_embed_shard, [(str(st.root), rows[i:i + step], batch_size)
                                         for i in range(0, len(rows), step)], address=ray_address, shared=encoder)
    else:
        encoder.model.to(inference_device())
        step = batch_size  # streamed: memory stays one batch whatever the store
        chunks = (_embed_rows(encoder, source, rows[i:i + step], batch_size) for i in range(0, len(rows), step))
    with atomic_file(out) as tmp, pq.ParquetWriter(tmp, schema) as writer, progress_bar(progress) as bar:
        task = bar.add_task(f"embedding with {encoder.name}", total=len(rows))
        for start, vectors in zip(range(0, len(rows), step), chunks, strict=False):
            part = ids.iloc[start:start + len(vectors)].reset_index(drop=True)
            table = pd.concat([part, pd.DataFrame(vectors, columns=names)], axis=1)
            writer.write_table(pa.Table.from_pandas(table, schema=schema, preserve_index=False))
            bar.advance(task, len(vectors))
    return Path(out)


def _embed_rows(encoder: Encoder, source: StoreInput, rows: np.ndarray, batch_size: int) -> np.ndarray:
    """Embeddings (len(rows), dim) of store rows; NaN for a record too short for the contract."""
    vectors = np.full((len(rows), encoder.dim), np.nan, np.float32)
    for positions, x in usable_batches(source, rows, batch_size):
        vectors[positions] = _features(encoder.model, x)
    return vectors


def _embed_shard(encoder: Encoder, job: tuple) -> np.ndarray:
    """A Ray task: :func:`_embed_rows` of one shard of a store."""
    root, rows, batch_size = job
    return _embed_rows(encoder, StoreInput(encoder.pipeline, Store(root), model=encoder.name), rows, batch_size)


def read_embeddings(path: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """The id columns and the (n, dim) float32 matrix of an embeddings file."""
    table = pd.read_parquet(path)
    columns = [c for c in table.columns if c.startswith("emb_")]
    return table.drop(columns=columns), table[columns].to_numpy(np.float32)
