"""Study A's transfer step: the ukb model, taken to a hospital system, tested prospectively.

Three models are compared on the hospital test patients and on the prospective cohort: the ukb model as
it is (pretrained only), a model trained from scratch on the hospital training patients, and the ukb
model fine-tuned on them. Every figure carries a patient-level bootstrap 95 % CI.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ecgscope.cohort import derive_labels, link_imaging, patient_split
from ecgscope.config import RunConfig
from ecgscope.evaluate import auroc, bootstrap_ci, mae
from ecgscope.io import write_parquet
from ecgscope.simulate import simulate_cohort
from ecgscope.simulate.export import write_cohort
from ecgscope.store import Store, ingest
from ecgscope.train.predict import predict_store
from ecgscope.train.run import train_from_config

REGRESSION = ["rvef", "rvedvi"]
PHENOTYPES = ["rv_dysfunction", "rv_dilation"]


def _cohort(preset: str, n: int, seed: int, out: Path, fs: float, split: tuple[float, float, float],
            progress: bool) -> tuple[Path, pd.DataFrame]:
    """Simulate ``preset``, ingest it, pair MRI with ECGs, label and split; return store and table."""
    sim = write_cohort(simulate_cohort(preset, n=n, seed=seed), out / f"{preset}_files", formats=("wfdb",),
                       overwrite=True, progress=progress)
    store = out / f"{preset}_store"
    ingest([sim / "wfdb"], store, fs=fs, rate=int(fs), progress=progress)
    table = derive_labels(link_imaging(Store(store).manifest, sim / "measurements" / "mri.parquet",
                                       days_before=90, days_after=90), PHENOTYPES)
    table["split"] = patient_split(table, split, stratify="rv_dysfunction", seed=seed) if split[0] < 1 else "test"
    write_parquet(table, out / f"{preset}_cohort.parquet")
    return store, table


def _scores(model_dir: Path, store: Path, table: pd.DataFrame) -> pd.DataFrame:
    preds = predict_store(model_dir, store, rows=table["ecg_row"].to_numpy(), progress=False)
    return preds.assign(patient_id=table["patient_id"].to_numpy())


def run_transfer(pretrained: Path, out: Path, *, n_hospital: int = 1500, n_prospective: int = 115, seed: int = 0,
                 epochs: int = 15, fs: float = 100.0, progress: bool = True) -> pd.DataFrame:
    """Compare pretrained-only, from-scratch and fine-tuned models; return the metrics table."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    hospital_store, hospital = _cohort("hospital", n_hospital, seed + 1, out, fs, (0.6, 0.2, 0.2), progress)
    prospective_store, prospective = _cohort("prospective", n_prospective, seed + 2, out, fs, (1.0, 0.0, 0.0),
                                             progress)

    architecture = json.loads((Path(pretrained) / "model.json").read_text())["architecture"]  # same for all three

    def config(name: str, **train) -> RunConfig:
        data = {"store": str(hospital_store), "cohort": str(out / "hospital_cohort.parquet"),
                "regression": REGRESSION, "binary": PHENOTYPES}
        return RunConfig.model_validate({
            "out": str(out / name), "data": data,
            "model": {"name": architecture}, "train": {"max_epochs": epochs, "seed": seed, **train}})

    for name in ("from_scratch", "fine_tuned"):  # a demo re-run starts these runs afresh
        shutil.rmtree(out / name, ignore_errors=True)
    models = {
        "pretrained only (ukb)": Path(pretrained),
        "from scratch (hospital)": train_from_config(config("from_scratch"), progress=progress),
        "fine-tuned (ukb -> hospital)": train_from_config(config("fine_tuned", lr=1e-3, finetune={"mode": "full"}),
                                                          progress=progress, init_from=pretrained),
    }
    test = hospital[hospital["split"] == "test"].reset_index(drop=True)
    rows = []
    for cohort_name, store, table in (("hospital test", hospital_store, test),
                                      ("prospective", prospective_store, prospective)):
        for model_name, model_dir in models.items():
            preds = _scores(model_dir, store, table)
            groups = table["patient_id"].to_numpy()
            for name in PHENOTYPES:
                y = table[name].to_numpy()
                est, lo, hi = bootstrap_ci(auroc, y, preds[name].to_numpy(), groups, seed=seed)
                rows.append((cohort_name, model_name, name, "AUROC", est, lo, hi, int(np.nansum(y))))
            for name in REGRESSION:
                y = table[name].to_numpy()
                est, lo, hi = bootstrap_ci(mae, y, preds[name].to_numpy(), groups, seed=seed)
                rows.append((cohort_name, model_name, name, "MAE", est, lo, hi, len(y)))
    metrics = pd.DataFrame(rows, columns=["cohort", "model", "target", "metric", "estimate", "ci_low", "ci_high",
                                          "n_or_positives"])
    metrics.to_csv(out / "transfer_metrics.csv", index=False)
    return metrics
