"""Study B's cohorts: simulated echo cohorts as files, ingested, each echo paired with the ECG before it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ecgscope.cohort import add_diastolic_labels, link_imaging, patient_split
from ecgscope.io import write_parquet
from ecgscope.store import Store
from ecgscope.studies.simulated import simulate_into_store

#: The EchoNext rule: the ECG within a year before the echo.
ECHO_DAYS_BEFORE = 365


@dataclass
class StudyCohort:
    """A simulated cohort on disk: its files, its store, and its table (one row per analysed ECG)."""

    name: str
    files: Path
    store: Path
    table: pd.DataFrame

    @property
    def truth(self) -> pd.DataFrame:
        """The simulator's latent state per patient (for checks, never for training)."""
        return pd.read_parquet(self.files / "truth" / "patients.parquet")


@dataclass
class EchoCohort(StudyCohort):
    """An echo cohort: each echo paired with the ECG before it, with labels and outcomes."""

    @property
    def motion(self) -> pd.DataFrame:
        """The simulator's true annular motion per patient (the GAN's paired targets)."""
        return pd.read_parquet(self.files / "truth" / "motion.parquet")


def build_echo_cohort(preset: str, n: int, seed: int, out: Path, *, fs: float = 100.0,
                      split: tuple[float, float, float] = (0.7, 0.1, 0.2), progress: bool = True) -> EchoCohort:
    """Simulate ``preset`` as WFDB files, ingest them at ``fs``, pair each echo with the patient's ECG of the year
    before, add age and sex, the ASE 2016 / 2025 labels and follow-up (``followup_years``, ``event``), and split
    by patient (``split=(0, 0, 1)`` makes a pure test cohort)."""
    out = Path(out)
    files, store = out / f"{preset}_files", out / f"{preset}_store"
    simulate_into_store(preset, n, seed, files, store, fs=fs, progress=progress)

    manifest = Store(store).manifest
    table = link_imaging(manifest, files / "measurements" / "echo.parquet", days_before=ECHO_DAYS_BEFORE,
                         days_after=0)
    table = add_diastolic_labels(table)  # link_imaging brought the ECG's age and sex
    outcomes = pd.read_parquet(files / "outcomes.parquet")[["patient_id", "followup_years", "event"]]
    table = table.merge(outcomes.assign(patient_id=outcomes["patient_id"].astype(str)), on="patient_id", how="left")
    table["split"] = patient_split(table, split, seed=seed)
    write_parquet(table, out / f"{preset}_cohort.parquet")
    return EchoCohort(preset, files, store, table)


def build_code15_cohort(n: int, seed: int, out: Path, *, fs: float = 100.0, progress: bool = True) -> StudyCohort:
    """Simulate ``code15`` in the CODE-15% layout, ingest it, and keep each patient's first exam (the one CODE-15%
    gives ``death`` / ``timey`` on) with follow-up years and the cause of death (1 HF, 2 other, 0 censored), which
    only the simulation knows: real CODE-15% has no cause of death."""
    out = Path(out)
    files, store = out / "code15_files", out / "code15_store"
    simulate_into_store("code15", n, seed, files, store, fs=fs, file_format="code15", progress=progress)
    exams = pd.read_csv(files / "code15" / "exams.csv")
    first = exams.loc[exams["timey"].notna(), "exam_id"].astype(str)
    manifest = Store(store).manifest
    table = manifest.loc[manifest["ecg_id"].astype(str).isin(set(first)), ["row", "ecg_id", "patient_id", "age", "sex"]]
    table = table.rename(columns={"row": "ecg_row"}).assign(patient_id=table["patient_id"].astype(str))
    outcomes = pd.read_parquet(files / "outcomes.parquet")[["patient_id", "followup_years", "event"]]
    table = table.merge(outcomes.assign(patient_id=outcomes["patient_id"].astype(str)), on="patient_id")
    write_parquet(table, out / "code15_cohort.parquet")
    return StudyCohort("code15", files, store, table.reset_index(drop=True))
