"""Study A's transfer step: the ukb model, taken to a hospital system, tested prospectively.

Three models are compared on the hospital test patients and on the prospective cohort: the ukb model as
it is (pretrained only), a model trained from scratch on the hospital training patients, and the ukb
model fine-tuned on them. Every figure carries a patient-level bootstrap 95 % CI, and the fine-tuned
model's edge over each of the others is a paired difference on the same patients with its own CI.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ecgscope.cohort import CohortError, build_cohort
from ecgscope.config import LR_GRID, RunConfig, TrainConfig
from ecgscope.evaluate import auroc, bootstrap_ci, mae, paired_difference_ci
from ecgscope.io import write_parquet, write_text
from ecgscope.studies.simulated import simulate_into_store
from ecgscope.train.predict import predict_store
from ecgscope.train.run import train_model

REGRESSION = ["rvef", "rvedvi"]
PHENOTYPES = ["rv_dysfunction", "rv_dilation"]
PRETRAINED = "pretrained only (ukb)"
FROM_SCRATCH = "from scratch (hospital)"
FINE_TUNED = "fine-tuned (ukb -> hospital)"


def _cohort(preset: str, n: int, seed: int, out: Path, fs: float, split: tuple[float, float, float],
            progress: bool, n_train: int | None = None) -> tuple[Path, pd.DataFrame]:
    """Simulate ``preset``, ingest it, pair MRI with ECGs, label and split (keeping ``n_train`` training
    patients if given); return store and table."""
    sim, store = out / f"{preset}_files", out / f"{preset}_store"
    simulate_into_store(preset, n, seed, sim, store, fs=fs, progress=progress)
    table = build_cohort(store, sim / "measurements" / "mri.parquet", labels=PHENOTYPES, days_before=90,
                         days_after=90, split=split if split[0] < 1 else (0, 0, 1), stratify="rv_dysfunction",
                         seed=seed).table
    return store, _save_table(preset, table, out, seed, n_train)


def _scores(model_dir: Path, store: Path, table: pd.DataFrame) -> pd.DataFrame:
    preds = predict_store(model_dir, store, rows=table["ecg_row"].to_numpy(), progress=False)
    return preds.assign(patient_id=table["patient_id"].to_numpy())


def keep_training_patients(table: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``table`` with only ``n`` of its training patients (drawn at random) left in the 'train' split; the
    others move to 'unused', so validation and test stay as they were (one point of a learning curve)."""
    patients = table.loc[table["split"] == "train", "patient_id"].unique()
    if n > len(patients):
        raise CohortError(f"asked for {n} training patients; the cohort has {len(patients)}")
    kept = np.random.default_rng(seed).permutation(patients)[:n]
    unused = (table["split"] == "train") & ~table["patient_id"].isin(kept)
    return table.assign(split=table["split"].mask(unused, "unused"))


def _save_table(preset: str, table: pd.DataFrame, out: Path, seed: int, n_train: int | None) -> pd.DataFrame:
    """Keep ``n_train`` training patients if given, write the cohort table under ``out`` and return it."""
    if n_train is not None:
        table = keep_training_patients(table, n_train, seed)
    write_parquet(table, out / f"{preset}_cohort.parquet")
    return table


def _reuse_cohort(preset: str, source: Path, out: Path, seed: int, n_train: int | None) -> tuple[Path, pd.DataFrame]:
    """The store and table an earlier transfer run wrote under ``source`` (the store is shared)."""
    table = pd.read_parquet(source / f"{preset}_cohort.parquet")
    return source / f"{preset}_store", _save_table(preset, table, out, seed, n_train)


def run_transfer(pretrained: Path, out: Path, *, n_hospital: int = 1500, n_prospective: int = 115, seed: int = 0,
                 epochs: int = 15, fs: float = 100.0, n_train: int | None = None, cohorts_from: Path | None = None,
                 lr_grid: bool = True, n_boot: int = 500, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare pretrained-only, from-scratch and fine-tuned models.

    ``n_train`` keeps only that many of the hospital's training patients (validation and test unchanged).
    ``cohorts_from`` reuses the hospital and prospective cohorts an earlier run (same seed) wrote in that
    directory instead of simulating them again, so two training-set sizes are scored on the same patients.
    ``lr_grid`` lets each arm choose its learning rate from ``LR_GRID`` on hospital validation loss; without
    it both train at the default rate (neither is tuned). ``n_boot``: bootstrap resamples behind each CI.
    Returns the metrics table (each model with its CI) and the paired differences (fine-tuned minus each
    other model on the same patients, with paired-bootstrap CIs), each with the number of hospital training
    patients; both are also written as CSV under ``out``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    hospital_seed, prospective_seed = seed + 1, seed + 2  # both paths draw the same training patients
    if cohorts_from is None:
        hospital_store, hospital = _cohort("hospital", n_hospital, hospital_seed, out, fs, (0.6, 0.2, 0.2),
                                           progress, n_train)
        prospective_store, prospective = _cohort("prospective", n_prospective, prospective_seed, out, fs,
                                                 (1.0, 0.0, 0.0), progress)
    else:
        hospital_store, hospital = _reuse_cohort("hospital", Path(cohorts_from), out, hospital_seed, n_train)
        prospective_store, prospective = _reuse_cohort("prospective", Path(cohorts_from), out, prospective_seed,
                                                       None)
    n_hospital_train = int(hospital.loc[hospital["split"] == "train", "patient_id"].nunique())

    architecture = json.loads((Path(pretrained) / "model.json").read_text())["architecture"]  # same for all three

    def config(name: str, **train) -> RunConfig:
        data = {"store": str(hospital_store), "cohort": str(out / "hospital_cohort.parquet"),
                "regression": REGRESSION, "binary": PHENOTYPES}
        return RunConfig.model_validate({
            "out": str(out / name), "data": data,
            "model": {"name": architecture}, "train": {"max_epochs": epochs, "seed": seed, **train}})

    # Each arm picks its learning rate on the hospital validation patients, never on test: the same small grid
    # for both (or the same single rate), so neither gets more tuning than the other.
    chosen = {}
    for arm, init in (("from_scratch", None), ("fine_tuned", Path(pretrained))):
        shutil.rmtree(out / arm, ignore_errors=True)  # a demo re-run starts these runs afresh
        extra = {"finetune": {"mode": "full"}} if init else {}
        model_dir = train_model(config(arm, lr_grid=list(LR_GRID) if lr_grid else None, **extra),
                                progress=progress, init_from=init)
        lr = json.loads((out / arm / "learning_rates.json").read_text())["chosen"] if lr_grid else TrainConfig().lr
        chosen[arm] = (lr, model_dir)
    write_text(out / "learning_rates.json", json.dumps({arm: lr for arm, (lr, _) in chosen.items()}) + "\n")
    write_text(out / "models.json", json.dumps({arm: str(path) for arm, (_, path) in chosen.items()}) + "\n")
    models = {PRETRAINED: Path(pretrained), FROM_SCRATCH: chosen["from_scratch"][1],
              FINE_TUNED: chosen["fine_tuned"][1]}
    test = hospital[hospital["split"] == "test"].reset_index(drop=True)
    rows, comparisons = [], []
    for cohort_name, store, table in (("hospital test", hospital_store, test),
                                      ("prospective", prospective_store, prospective)):
        preds = {name: _scores(model_dir, store, table) for name, model_dir in models.items()}
        groups = table["patient_id"].to_numpy()
        for target, metric_name, metric in [(p, "AUROC", auroc) for p in PHENOTYPES] + [
                (r, "MAE", mae) for r in REGRESSION]:
            y = table[target].to_numpy()
            count = int(np.nansum(y)) if metric_name == "AUROC" else len(y)
            for model_name, pred in preds.items():
                est, lo, hi = bootstrap_ci(metric, y, pred[target].to_numpy(), groups, n_boot=n_boot, seed=seed)
                rows.append((cohort_name, model_name, target, metric_name, est, lo, hi, count))
            tuned = preds[FINE_TUNED][target].to_numpy()
            for other in (FROM_SCRATCH, PRETRAINED):
                est, lo, hi = paired_difference_ci(metric, y, tuned, preds[other][target].to_numpy(), groups,
                                                   n_boot=n_boot, seed=seed)
                comparisons.append((cohort_name, f"fine-tuned minus {other}", target, metric_name, est, lo, hi))
    metrics = pd.DataFrame(rows, columns=["cohort", "model", "target", "metric", "estimate", "ci_low", "ci_high",
                                          "n_or_positives"]).assign(hospital_training_patients=n_hospital_train)
    differences = pd.DataFrame(comparisons, columns=["cohort", "comparison", "target", "metric", "difference",
                                                     "ci_low", "ci_high"]).assign(
                                                         hospital_training_patients=n_hospital_train)
    write_text(out / "transfer_metrics.csv", metrics.to_csv(index=False))
    write_text(out / "transfer_differences.csv", differences.to_csv(index=False))
    return metrics, differences
