"""``ecgscope motion generate``: load a generator directory and generate one cycle of annular motion per ECG;
the paired true curves and the agreement of generated with true. Lightning is not imported (training is in
:mod:`ecgscope.motion.train`).

A generator directory holds ``weights.safetensors``, ``motion.json`` (architecture and checksum),
``preprocess.json`` and ``metrics.json``; loading never unpickles.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ecgscope.contract import StoreInput, usable_batches
from ecgscope.errors import EcgscopeError
from ecgscope.io import write_text
from ecgscope.io.atomic import atomic_dir
from ecgscope.motion.features import curve_errors, motion_features
from ecgscope.motion.generator import MotionGenerator, rr_from_log, unscale_curves
from ecgscope.progress import progress_bar
from ecgscope.signal import Pipeline
from ecgscope.store.layout import Store
from ecgscope.train.artifact import file_sha256, read_model_directory
from ecgscope.train.inference import infer

FORMAT_VERSION = 1
MOTION_COLUMNS = ("rr_ms", "tdi_velocity_cm_s", "annular_displacement_mm")


class MotionError(EcgscopeError, ValueError):
    """Paired motion data or a generator directory that cannot be used."""


@dataclass
class LoadedGenerator:
    """A generator ready to run, with its input pipeline and settings."""

    generator: MotionGenerator
    pipeline: Pipeline
    info: dict


def paired_curves(cohort: pd.DataFrame, motion: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Velocity (n, T), displacement (n, T) and RR (n,) of each cohort row, matched on ``patient_id``."""
    missing = [c for c in ("patient_id", *MOTION_COLUMNS) if c not in motion.columns]
    if missing:
        raise MotionError(f"the motion table lacks column(s) {missing}")
    by_patient = motion.assign(patient_id=motion["patient_id"].astype(str)).drop_duplicates("patient_id")
    by_patient = by_patient.set_index("patient_id")
    wanted = cohort["patient_id"].astype(str)
    absent = sorted(set(wanted) - set(by_patient.index))
    if absent:
        raise MotionError(f"no motion curves for {len(absent)} patient(s) of the cohort, e.g. {absent[:3]}")
    rows = by_patient.loc[wanted]
    velocity = np.stack(rows["tdi_velocity_cm_s"].to_numpy()).astype(np.float32)
    displacement = np.stack(rows["annular_displacement_mm"].to_numpy()).astype(np.float32)
    return velocity, displacement, rows["rr_ms"].to_numpy(np.float32)


def motion_agreement(velocity: np.ndarray, displacement: np.ndarray, rr_ms: np.ndarray, gen_velocity: np.ndarray,
                     gen_displacement: np.ndarray, gen_rr_ms: np.ndarray) -> dict[str, float]:
    """Generated against true cycles: mean curve RMSE and correlation, RR error, and the Pearson r between
    generated and true features (s', e', a', e'/a', displacement)."""
    velocity_err, displacement_err = curve_errors(velocity, gen_velocity), curve_errors(displacement, gen_displacement)
    true_f = motion_features(velocity, displacement, rr_ms)
    gen_f = motion_features(gen_velocity, gen_displacement, gen_rr_ms)
    out = {"velocity_rmse_cm_s": float(velocity_err["rmse"].mean()),
           "velocity_correlation": float(velocity_err["correlation"].mean()),
           "displacement_rmse_mm": float(displacement_err["rmse"].mean()),
           "rr_mae_ms": float(np.mean(np.abs(rr_ms - gen_rr_ms)))}
    for name in ("s_prime", "e_prime", "a_prime", "e_over_a_prime", "displacement_mm"):
        ok = true_f[name].notna() & gen_f[name].notna()
        out[f"{name}_r"] = float(np.corrcoef(true_f[name][ok], gen_f[name][ok])[0, 1]) if ok.sum() > 2 else np.nan
    return out


def save_generator(path: str | Path, generator: MotionGenerator, pipeline: Pipeline, info: dict,
                   metrics: dict | None = None) -> Path:
    """Write a generator directory atomically; return its path."""
    from safetensors.torch import save_file

    with atomic_dir(path, overwrite=True) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()},
                  str(tmp / "weights.safetensors"))
        meta = {"format_version": FORMAT_VERSION, "kind": "motion_generator", **info,
                "weights_sha256": file_sha256(tmp / "weights.safetensors")}
        (tmp / "motion.json").write_text(json.dumps(meta, indent=2) + "\n")
        (tmp / "preprocess.json").write_text(pipeline.to_json())
        (tmp / "metrics.json").write_text(json.dumps(metrics or {}, indent=2) + "\n")
    return Path(path)


def load_generator(path: str | Path) -> LoadedGenerator:
    """Load a generator directory; raises ``MotionError`` if a file is missing, altered or of another shape."""
    path = Path(path)
    info, state, pipeline = read_model_directory(path, "motion.json", "a motion generator directory", MotionError)
    if info.get("kind") != "motion_generator":
        raise MotionError(f"{path / 'motion.json'} does not describe a motion generator")
    generator = MotionGenerator(info["encoder"], info["n_points"], info["noise_dim"], info["width"],
                                info.get("encoder_kwargs"))
    try:
        generator.load_state_dict(state)
    except RuntimeError as exc:
        raise MotionError(f"{path}: the weights do not fit the generator described in motion.json ({exc})") from exc
    return LoadedGenerator(generator.eval(), pipeline, info)


def generate_batches(loaded: LoadedGenerator, store: Store, rows: np.ndarray, batch_size: int = 128,
                     progress: bool = True, source: StoreInput | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                                      np.ndarray]:
    """Generated velocity (n, T) cm/s, displacement (n, T) mm and RR (n,) ms for ``rows`` of ``store``
    (the noise is set to zero: the generator's central cycle for each ECG); NaN for records too short for
    the generator's input contract (``source``: the store already seen through it, if the caller has one)."""
    source = source or StoreInput(loaded.pipeline, store, model="the motion generator")
    rows = np.asarray(rows, dtype=np.int64)
    n = loaded.generator.n_points
    velocity, displacement = np.full((len(rows), n), np.nan, np.float32), np.full((len(rows), n), np.nan, np.float32)
    rr_ms = np.full(len(rows), np.nan, np.float32)
    with progress_bar(progress) as bar:
        task = bar.add_task("generating motion", total=len(rows))
        for positions, x in usable_batches(source, rows, batch_size):
            curves, rr = next(infer(loaded.generator, [x]))
            v, d = unscale_curves(curves)
            velocity[positions], displacement[positions] = v.numpy(), d.numpy()
            rr_ms[positions] = rr_from_log(rr).numpy()
            bar.advance(task, len(positions))
    return velocity, displacement, rr_ms


def _generate_shard(loaded: LoadedGenerator, job: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A Ray task: :func:`generate_batches` on one shard of a store's rows."""
    root, rows = job
    return generate_batches(loaded, Store(root), rows, progress=False)


def generate_motion(model_dir: str | Path, store: str | Path, out: str | Path, rows: np.ndarray | None = None,
                    progress: bool = True, engine: str = "local", ray_address: str | None = None,
                    shard_size: int = 4096) -> pd.DataFrame:
    """Generate a cycle for each ECG of ``store`` and write curves and features to the Parquet file ``out``;
    ``engine="ray"`` generates shards of ``shard_size`` rows as Ray tasks (the generator sent once)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ecgscope.io.atomic import atomic_file

    if engine not in ("local", "ray"):
        raise ValueError(f"engine must be local or ray, not {engine!r}")
    loaded, st = load_generator(model_dir), Store(store)
    rows = np.arange(len(st)) if rows is None else np.asarray(rows)
    source = StoreInput(loaded.pipeline, st, model=str(model_dir))
    if engine == "ray":
        from ecgscope.engines import ray_map

        shards = ray_map(_generate_shard, [(str(st.root), rows[i:i + shard_size])
                                           for i in range(0, len(rows), shard_size)],
                         address=ray_address, progress=progress, what="generating motion", shared=loaded)
        velocity, displacement, rr_ms = (np.concatenate(part) for part in zip(*shards, strict=True))
    else:
        velocity, displacement, rr_ms = generate_batches(loaded, st, rows, progress=progress, source=source)
    table = st.manifest.iloc[rows][["ecg_id", "patient_id"]].astype(str).reset_index(drop=True)
    table["input_note"] = source.notes(rows)
    table["rr_ms"] = rr_ms
    features = motion_features(velocity, displacement, rr_ms)
    arrow = pa.Table.from_pandas(pd.concat([table, features], axis=1), preserve_index=False)
    for name, values in (("tdi_velocity_cm_s", velocity), ("annular_displacement_mm", displacement)):
        arrow = arrow.append_column(name, pa.FixedSizeListArray.from_arrays(values.ravel(), values.shape[1]))
    with atomic_file(out) as tmp:
        pq.write_table(arrow, tmp)
    write_text(Path(out).with_suffix(".json"), json.dumps({"generator": str(model_dir), **loaded.info}, indent=2))
    return pd.concat([table, features], axis=1)
