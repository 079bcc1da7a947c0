"""A small model trained on a simulated cohort, for the service, viewer and clinic tests (and the latency and
out-of-distribution benchmarks, with a bigger cohort and the default architecture)."""

from __future__ import annotations

from pathlib import Path

from ecgscope.cohort import derive_labels, link_imaging, patient_split
from ecgscope.config import RunConfig
from ecgscope.simulate import simulate_cohort
from ecgscope.simulate.export import write_cohort
from ecgscope.store import Store, ingest
from ecgscope.train.run import train_from_config


def build_cohort(root: Path, *, preset: str = "hospital", n: int = 90, seed: int = 4, fs: int = 100,
                 progress: bool = False) -> tuple[Path, Path]:
    """Simulate ``n`` ECGs of ``preset``, store them at ``fs`` Hz under ``root / "store"`` and pair them with
    their MRI (RVEF, RV dysfunction) split by patient into ``root / "cohort.parquet"``; return both paths."""
    sim = write_cohort(simulate_cohort(preset, n=n, seed=seed), root / "sim", formats=("wfdb",), progress=progress,
                       workers=1)
    ingest([sim / "wfdb"], root / "store", fs=fs, rate=fs, workers=1, identifiers="keep", progress=progress)
    store = Store(root / "store")
    pairs = derive_labels(link_imaging(store.manifest, sim / "measurements" / "mri.parquet", days_before=90,
                                       days_after=90), ["rv_dysfunction"])
    pairs["split"] = patient_split(pairs, (0.6, 0.2, 0.2), seed=0)
    pairs.to_parquet(root / "cohort.parquet")
    return root / "store", root / "cohort.parquet"


def train_small_model(root: Path, *, preset: str = "hospital", n: int = 90, seed: int = 4, fs: int = 100,
                      architecture: str = "compact_cnn_tiny", epochs: int = 2, progress: bool = False) -> Path:
    """Train ``architecture`` for RVEF and RV dysfunction on :func:`build_cohort`'s cohort; return the model
    directory (with intervals, thresholds, OOD reference and model card)."""
    build_cohort(root, preset=preset, n=n, seed=seed, fs=fs, progress=progress)
    cfg = RunConfig.model_validate({
        "out": str(root / "run"), "data": {"store": str(root / "store"), "cohort": str(root / "cohort.parquet"),
                                           "regression": ["rvef"], "binary": ["rv_dysfunction"]},
        "model": {"name": architecture}, "train": {"max_epochs": epochs, "batch_size": 16}})
    return train_from_config(cfg, progress=progress)
