"""The first main job: RV size and function from the ECG on a simulated UK Biobank-like cohort.

simulate -> WFDB files (PTB-XL layout) -> ingest into a store -> pair each MRI with its ECG and label it
(cohort) -> train a compact CNN -> held-out AUROC / MAE with patient-level bootstrap CIs, beside the
oracle fitted on the noise-free waveform parameters of the same training patients.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from ecgscope.cohort import RULES, build_cohort, carve_calibration
from ecgscope.config import DEFAULT_MODEL, LR_GRID, RunConfig, TrainConfig
from ecgscope.evaluate import auroc, bootstrap_ci, mae, r2
from ecgscope.io import write_parquet, write_text
from ecgscope.report.figures import plot_ecg, plot_roc_and_scatter
from ecgscope.store import Store
from ecgscope.studies.evidence import run_evidence
from ecgscope.studies.oracle import fit_oracle, phenotype_score, predict_oracle
from ecgscope.studies.simulated import simulate_into_store
from ecgscope.studies.timing import StageClock
from ecgscope.studies.transfer import run_transfer
from ecgscope.train import load_model
from ecgscope.train.predict import predict_store
from ecgscope.train.run import train_model

REGRESSION = ["rvef", "rvedvi"]
PHENOTYPES = ["rv_dysfunction", "rv_dilation"]
UNITS = {"rvef": "%", "rvedvi": "mL/m2"}
#: The model reads PTB-XL's 100 Hz tree: 10 s = 1,000 samples per lead.
MODEL_FS = 100.0
#: The ukb cohort size the other cohorts' default sizes are set against (a smaller ``n`` shrinks them alike).
DEFAULT_N = 6000


def _scaled(size: int, n: int, floor: int) -> int:
    """A cohort's default ``size`` at ``DEFAULT_N`` ukb subjects, in proportion to ``n`` (at least ``floor``)."""
    return max(floor, round(size * n / DEFAULT_N))


@dataclass
class DemoResult:
    """Where the demo wrote its outputs and the metrics tables it printed."""

    out: Path
    metrics: pd.DataFrame
    transfer: pd.DataFrame
    transfer_differences: pd.DataFrame
    report: Path


def run_demo(out: str | Path = "runs/demo", n: int = DEFAULT_N, seed: int = 0, epochs: int = 15,
             model_name: str = DEFAULT_MODEL, progress: bool = True, n_hospital: int | None = None,
             n_prospective: int | None = None, n_survival: int | None = None, n_boot: int = 500,
             small_hospital_train: int | None = None, lr_grid: bool = False,
             clock: StageClock | None = None) -> DemoResult:
    """Run study A on simulated cohorts: train on a ``ukb`` cohort of ``n`` subjects, take that model to a
    hospital (pretrained only / from scratch / fine-tuned) and a prospective cohort, follow a hospital cohort
    of ``n_survival`` for death, and write everything, ending with ``report.html``, under ``out``.

    The transfer step runs on all the hospital's training patients (``out/transfer``) and, when
    ``small_hospital_train`` is given (``demo --full`` gives ``config.SMALL_HOSPITAL_TRAIN``), again on only that
    many of them (``out/transfer_small``; same validation, test and prospective patients).
    ``clock`` records each stage's wall time. Cohort sizes not given are 1,500 hospital, 115 prospective and
    3,019 survival subjects at ``n`` = 6,000, in proportion to ``n`` otherwise; the small transfer runs only when
    ``small_hospital_train`` is under the hospital's training patients (0.6 of its subjects). ``lr_grid``
    trains every model at each rate of ``LR_GRID`` and keeps the one validation loss chooses (``demo --full``);
    otherwise each trains once at the default rate, 3e-3, the rate validation chose for the ukb model when
    the grid ran (so study A's ukb figures are the same either way)."""
    clock = clock or StageClock()
    n_hospital = n_hospital or _scaled(1500, n, 100)
    n_prospective = n_prospective or _scaled(115, n, 60)
    n_survival = n_survival or _scaled(3019, n, 300)
    if small_hospital_train is not None and small_hospital_train >= 0.6 * n_hospital:
        small_hospital_train = None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cohort_dir = out / "cohort"
    ukb = simulate_into_store("ukb", n, seed, cohort_dir, out / "store", fs=MODEL_FS, progress=progress,
                              written=lambda: clock.lap("A: simulate ukb"))
    store = Store(out / "store")
    clock.lap("A: ingest ukb")

    pairs = build_cohort(store, cohort_dir / "measurements" / "mri.parquet", labels=PHENOTYPES,
                         split=(0.6, 0.1, 0.3), stratify="rv_dysfunction", seed=seed).table
    # the patients that calibrate the intervals, untouched by training (written down here, so the table says so)
    pairs["split"] = carve_calibration(pairs, TrainConfig().calibration_fraction, seed)
    write_parquet(pairs, out / "cohort.parquet")
    labels = pairs[REGRESSION + PHENOTYPES]
    oracle = pd.read_parquet(cohort_dir / "truth" / "oracle.parquet")
    oracle = oracle.set_index(oracle["ecg_id"].astype(str))
    tr, te = (pairs["split"].to_numpy() == s for s in ("train", "test"))

    # the one training path every model in the demo shares (study A's transfer arms use it too)
    shutil.rmtree(out / "training", ignore_errors=True)
    chosen = train_model(RunConfig.model_validate({
        "out": str(out / "training"),
        "data": {"store": str(out / "store"), "cohort": str(out / "cohort.parquet"), "regression": REGRESSION,
                 "binary": PHENOTYPES},
        "model": {"name": model_name},
        "train": {"max_epochs": epochs, "seed": seed, "lr_grid": list(LR_GRID) if lr_grid else None}}),
        progress=progress)
    clock.lap("A: train on ukb" + (" (learning-rate grid)" if lr_grid else ""))
    shutil.rmtree(out / "model", ignore_errors=True)
    shutil.copytree(chosen, out / "model")
    scored = predict_store(out / "model", store, rows=pairs["ecg_row"].to_numpy()[te], progress=False)
    pred = {c: scored[c].to_numpy() for c in scored.columns
            if c not in ("ecg_id", "patient_id", "acquired_at", "age", "sex")}
    conformal = load_model(out / "model").conformal

    ecg_ids = pairs["ecg_id"].astype(str)
    oracle_models = fit_oracle(oracle.loc[ecg_ids[tr]], labels.loc[tr, REGRESSION], seed)
    oracle_pred = predict_oracle(oracle_models, oracle.loc[ecg_ids[te]])
    for name in PHENOTYPES:
        measure, direction, _ = RULES[name]
        oracle_pred[name] = phenotype_score(oracle_pred[measure].to_numpy(), direction)

    groups = pairs["patient_id"].to_numpy()[te]
    rows = []
    for name in PHENOTYPES:
        yt = labels[name].to_numpy()[te]
        for source, score in (("ECG model", pred[name]), ("oracle", oracle_pred[name].to_numpy())):
            est, lo, hi = bootstrap_ci(auroc, yt, score, groups, n_boot=n_boot, seed=seed)
            rows.append((name, "AUROC", source, est, lo, hi, int(yt.sum())))
    for name in REGRESSION:
        yt = labels[name].to_numpy()[te]
        for source, value in (("ECG model", pred[name]), ("oracle", oracle_pred[name].to_numpy())):
            for metric_name, fn in (("MAE", mae), ("R2", r2)):
                est, lo, hi = bootstrap_ci(fn, yt, value, groups, n_boot=n_boot, seed=seed)
                rows.append((name, metric_name, source, est, lo, hi, int(te.sum())))
        lower, upper = pred[f"{name}_lower"], pred[f"{name}_upper"]
        inside = ((yt >= lower) & (yt <= upper)).astype(float)
        est, lo, hi = bootstrap_ci(lambda a, b: float(np.mean(b)), yt, inside, groups, n_boot=n_boot, seed=seed)
        rows.append((name, "90% interval coverage", "ECG model", est, lo, hi, int(te.sum())))
    columns = ["target", "metric", "model", "estimate", "ci_low", "ci_high", "n_or_positives"]
    metrics = pd.DataFrame(rows, columns=columns)
    n_calibration = {k: c.n_calibration_ for k, c in conformal.items()}

    predictions = pd.DataFrame({"ecg_id": ecg_ids[te].to_numpy(), "patient_id": groups,
                                **{f"{k}_pred": v for k, v in pred.items()},
                                **{f"{k}_true": labels[k].to_numpy()[te] for k in labels.columns}})
    write_parquet(predictions, out / "predictions.parquet")
    write_text(out / "metrics.csv", metrics.to_csv(index=False))
    write_text(out / "metrics.json", json.dumps({
        "preset": "ukb", "n_subjects": n, "seed": seed, "epochs": epochs, "model": model_name,
        "split_sizes": pairs["split"].value_counts().to_dict(), "conformal_calibration_ecgs": n_calibration,
        "learning_rate": (json.loads((out / "training" / "learning_rates.json").read_text())["chosen"] if lr_grid
                          else TrainConfig().lr),
        "metrics": metrics.to_dict(orient="records"),
    }, indent=2) + "\n")

    figures = out / "figures"
    figures.mkdir(exist_ok=True)
    curves = {name: {"ECG model": roc_curve(labels[name][te], pred[name])[:2],
                     "oracle": roc_curve(labels[name][te], oracle_pred[name])[:2]} for name in PHENOTYPES}
    scatters = {k: (labels[k].to_numpy()[te], pred[k], UNITS[k]) for k in REGRESSION}
    plot_roc_and_scatter(curves, scatters, figures / "rv_performance.png")
    example = np.flatnonzero(te & (labels["rv_dysfunction"].to_numpy() == 1))
    example_id = int(pairs["ecg_id"].iloc[example[0] if len(example) else np.flatnonzero(te)[0]])
    # drawn at the simulator's 500 Hz (the files hold only the 100 Hz tree the model reads)
    ecg = next(ukb.records(example_id - 1, example_id)).to_standard()  # ecg_id is the 1-based row
    plot_ecg(ecg, figures / "example_ecg.png", title=f"simulated ECG {example_id} ({ukb.fs:g} Hz)")
    clock.lap("A: ukb test metrics, oracle, figures")
    transfer, differences = run_transfer(out / "model", out / "transfer", n_hospital=n_hospital,
                                         n_prospective=n_prospective, seed=seed, epochs=epochs, fs=MODEL_FS,
                                         lr_grid=lr_grid, n_boot=n_boot, progress=progress)
    clock.lap("A: transfer to the hospital (all training patients)")
    if small_hospital_train is not None:
        small_transfer, small_differences = run_transfer(
            out / "model", out / "transfer_small", n_train=small_hospital_train, cohorts_from=out / "transfer",
            seed=seed, epochs=epochs, fs=MODEL_FS, lr_grid=lr_grid, n_boot=n_boot, progress=progress)
        transfer = pd.concat([small_transfer, transfer], ignore_index=True)
        differences = pd.concat([small_differences, differences], ignore_index=True)
        clock.lap(f"A: transfer with {small_hospital_train} hospital training patients")
    ukb_predictions = pd.DataFrame({"ecg_id": pairs["ecg_id"].to_numpy()[te], "patient_id": groups,
                                    **{k: pred[k] for k in REGRESSION + PHENOTYPES}})
    oracle_auroc = {r.target: r.estimate for r in metrics[(metrics.model == "oracle") &
                                                         (metrics.metric == "AUROC")].itertuples()}
    report = run_evidence(out, ukb_predictions, pairs, oracle_auroc, seed=seed,
                          fs=MODEL_FS, n_survival=n_survival, n_boot=n_boot, progress=progress)
    clock.lap("A: evidence (survival cohort, evaluations, report)")
    return DemoResult(out, metrics, transfer, differences, report)
