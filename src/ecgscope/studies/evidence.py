"""Study A's evidence on the simulated cohorts: evaluations, survival, Table 1, headline numbers, the report.

After the demo has trained the ukb model and taken it to the hospital (``transfer``), this step:

1. evaluates the ukb model on its held-out patients and the fine-tuned model on the hospital test patients
   and the prospective cohort (every metric with patient-bootstrap CIs, by sex, age band and LV function),
   the hospital one also against a demographics-only logistic model (DeLong, NRI, IDI);
2. follows a fresh hospital cohort of the published size (n = 3,019) for death: Cox HR per 10 % lower
   predicted RVEF (and, as the simulation's oracle, per 10 % lower true RVEF), Fine-Gray for heart-failure
   death with other deaths competing, Kaplan-Meier and cumulative incidence by predicted RV dysfunction,
   and the event rates at 2 years beside the truth the simulator knows;
3. writes Table 1 and ``study.json`` (each headline number beside the published one) and renders the report.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ecgscope.evaluate import age_bands
from ecgscope.evaluate.evaluation import run_evaluation
from ecgscope.evaluate.tables import table_one
from ecgscope.io import write_text
from ecgscope.report.html import build_report
from ecgscope.simulate import get_preset
from ecgscope.simulate.outcomes import true_cumulative_incidence
from ecgscope.store import Store
from ecgscope.studies.simulated import simulate_into_store
from ecgscope.survival import risk_groups
from ecgscope.survival.analysis import run_survival, survival_frame
from ecgscope.train.predict import predict_store

TARGETS = {"rvef": "regression", "rvedvi": "regression", "rv_dysfunction": "binary", "rv_dilation": "binary"}
UNITS = {"rvef": "(%)", "rvedvi": "(mL/m²)"}
#: Study A's published figures (REFERENCE.md section 1A).
PUBLISHED = {("ukb", "rv_dysfunction"): 0.86, ("ukb", "rv_dilation"): 0.91,
             ("hospital", "rv_dysfunction"): 0.81, ("hospital", "rv_dilation"): 0.81,
             ("prospective", "rv_dysfunction"): 0.77, ("prospective", "rv_dilation"): 0.92,
             ("hospital", "rvef"): 7.8, ("hospital", "rvedvi"): 17.6, "hr_per_10_lower_rvef": 1.40}
SURVIVAL_HORIZON = 2.0  # years; the study's median follow-up was 2.3 years
LV_DYSFUNCTION_LVEF = 50.0
RV_DYSFUNCTION_RVEF = 40.0  # the risk-group cut for survival, the study's dysfunction threshold


def _frame(predictions: pd.DataFrame, cohort: pd.DataFrame) -> pd.DataFrame:
    """Predictions joined to measured labels by ECG, with the subgroup columns the study reports."""
    labels = cohort[["ecg_id", "lvef", *TARGETS]].rename(columns={t: f"{t}_true" for t in TARGETS})
    frame = predictions.rename(columns={t: f"{t}_pred" for t in TARGETS}).merge(labels, on="ecg_id")
    frame["age_band"] = age_bands(frame["age"])
    frame["lv_function"] = np.where(frame["lvef"] < LV_DYSFUNCTION_LVEF, f"LVEF < {LV_DYSFUNCTION_LVEF:g} %",
                                    f"LVEF >= {LV_DYSFUNCTION_LVEF:g} %")
    return frame


def _demographic_baseline(train: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """A simpler model to reclassify against: logistic regression on age and sex, per phenotype."""
    def design(table: pd.DataFrame) -> np.ndarray:
        return np.column_stack([table["age"].to_numpy(float), (table["sex"] == "M").to_numpy(float)])

    baseline = frame.copy()
    for target, kind in TARGETS.items():
        if kind == "binary":
            model = LogisticRegression().fit(design(train), train[target].to_numpy(int))
            baseline[f"{target}_pred"] = model.predict_proba(design(frame))[:, 1]
    return baseline


def _with_demographics(predictions: pd.DataFrame, store: Store) -> pd.DataFrame:
    """Add age and sex from the store's manifest where the predictions lack them."""
    missing = [c for c in ("age", "sex") if c not in predictions.columns]
    if not missing:
        return predictions
    return predictions.merge(store.manifest[["ecg_id", *missing]], on="ecg_id", how="left")


def _survival_cohort(out: Path, model: Path, n: int, seed: int, fs: float, progress: bool) -> pd.DataFrame:
    """Simulate, ingest and predict a hospital cohort followed for death; one row per patient."""
    sim = out / "survival_files"
    simulate_into_store("hospital", n, seed, sim, out / "survival_store", fs=fs, progress=progress)
    predictions = predict_store(model, out / "survival_store", progress=progress)
    frame = survival_frame(predictions, sim / "outcomes.parquet")
    truth = pd.read_parquet(sim / "truth" / "patients.parquet")
    truth["true_hf_death_by_horizon"] = true_cumulative_incidence(truth, get_preset("hospital"), SURVIVAL_HORIZON)
    measured = ["rvef", "rvedvi", "lvef", "rv_dysfunction", "rv_dilation"]  # the truth, for Table 1 and the oracle
    truth = truth[["patient_id", *measured, "true_hf_death_by_horizon"]].rename(
        columns={c: f"{c}_truth" for c in measured})
    frame = frame.assign(patient_id=frame["patient_id"].astype(str)).merge(
        truth.assign(patient_id=truth["patient_id"].astype(str)), on="patient_id")
    frame["male"] = (frame["sex"] == "M").astype(float)
    frame["death"], frame["hf_death"] = frame["event"] > 0, frame["event"] == 1
    return frame


def _ci_row(measure: str, estimate: float, low: float, high: float, oracle=None, published=None, note="",
            interval: str = "") -> dict:
    return {"measure": measure, "estimate": estimate, "ci_low": low, "ci_high": high, "interval": interval,
            "oracle": oracle, "published": published, "note": note}


def run_evidence(out: Path, ukb_predictions: pd.DataFrame, ukb_cohort: pd.DataFrame, ukb_oracle: dict[str, float],
                 *, seed: int = 0, fs: float = 100.0, n_survival: int = 3019, n_boot: int = 500,
                 progress: bool = True) -> Path:
    """Evaluate, analyse survival, write Table 1 and the headline, render ``out/report.html``; return its path.

    ``ukb_predictions``: the ukb model on its test ECGs (ecg_id, patient_id, one column per target);
    ``ukb_cohort``: every paired ukb MRI study with its ``split``; ``ukb_oracle``: the oracle's AUROC per
    phenotype. The hospital and prospective cohorts and the fine-tuned model come from ``out/transfer``.
    """
    out = Path(out)
    transfer = out / "transfer"
    fine_tuned = Path(json.loads((transfer / "models.json").read_text())["fine_tuned"])
    evaluation = out / "evaluation"
    stores = {"ukb": Store(out / "store"), "hospital": Store(transfer / "hospital_store"),
              "prospective": Store(transfer / "prospective_store")}
    frames = {"ukb test": _frame(_with_demographics(ukb_predictions, stores["ukb"]),
                                 ukb_cohort[ukb_cohort["split"] == "test"])}
    cohorts = {}
    for name in ("hospital", "prospective"):
        cohort = pd.read_parquet(transfer / f"{name}_cohort.parquet")
        cohorts[name] = cohort
        rows = cohort[cohort["split"] == "test"] if name == "hospital" else cohort
        predictions = predict_store(fine_tuned, stores[name], rows=rows["ecg_row"].to_numpy(),
                                    progress=False)
        frames[f"{name} test" if name == "hospital" else name] = _frame(predictions, rows)
    hospital_train = _with_demographics(cohorts["hospital"][cohorts["hospital"]["split"] == "train"],
                                        stores["hospital"])
    # each model is reported at the operating points chosen on its own validation patients
    thresholds = {directory: {t: v["value"] for t, v in json.loads((directory / "model.json").read_text())
                              .get("thresholds", {}).items()} for directory in (out / "model", fine_tuned)}
    results = {}
    for index, (name, frame) in enumerate(frames.items(), start=1):
        baseline = _demographic_baseline(hospital_train, frame) if name == "hospital test" else None
        model = "ukb model" if name == "ukb test" else "fine-tuned model"
        results[name] = run_evaluation(frame, evaluation / f"{index}_{name.replace(' ', '_')}", TARGETS,
                                       ["sex", "age_band", "lv_function"], baseline=baseline,
                                       thresholds=thresholds[out / "model" if name == "ukb test" else fine_tuned],
                                       n_boot=n_boot, seed=seed,
                                       title=f"{name}: the {model} ({len(frame):,} patients)")

    survival = _survival_cohort(out, fine_tuned, n_survival, seed + 3, fs, progress)
    analyses = {}
    for predictor, label in (("rvef", "predicted"), ("rvef_truth", "true")):
        analyses[label] = run_survival(
            survival, out / "survival" / f"{label}_rvef", predictor, event="event", per=-10,
            covariates=["age", "male"], higher_is_riskier=False, thresholds=[RV_DYSFUNCTION_RVEF],
            group_labels=[f"{label} RVEF > {RV_DYSFUNCTION_RVEF:g} %", f"{label} RVEF <= {RV_DYSFUNCTION_RVEF:g} %"],
            horizon=SURVIVAL_HORIZON,
            td_horizons=[1.0, 2.0, 3.0], title=f"Survival by {label} RVEF (hospital follow-up cohort, "
                                                f"n = {len(survival):,}; death, with heart-failure death as cause 1)")

    table1 = table_one({
        "ukb (all)": _with_demographics(ukb_cohort, stores["ukb"]),
        "hospital (all)": _with_demographics(cohorts["hospital"], stores["hospital"]),
        "prospective": _with_demographics(cohorts["prospective"], stores["prospective"]),
        "hospital follow-up (true values)": survival[["patient_id", "age", "sex", "death", "hf_death",
                                                      *[c for c in survival.columns if c.endswith("_truth")]]
                                            ].rename(columns=lambda c: c.removesuffix("_truth")),
    }, continuous=["age", "rvef", "rvedvi", "lvef"], binary=["rv_dysfunction", "rv_dilation", "death", "hf_death"])
    write_text(out / "table1.csv", table1.to_csv(index=False))

    headline = []
    bootstrap = f"patient bootstrap, {n_boot} resamples"
    for name, key in (("ukb test", "ukb"), ("hospital test", "hospital"), ("prospective", "prospective")):
        m = results[name]
        overall = m[m.subgroup == "all"].set_index(["target", "metric"])
        for target in ("rv_dysfunction", "rv_dilation"):
            r = overall.loc[(target, "AUROC")]
            oracle = ukb_oracle.get(target) if key == "ukb" else None
            headline.append(_ci_row(f"{key}: {target.replace('_', ' ')} AUROC", r.estimate, r.ci_low, r.ci_high,
                                    oracle, PUBLISHED[(key, target)], f"{int(r.n_positive)} positives", bootstrap))
        if key == "hospital":
            for target in ("rvef", "rvedvi"):
                r = overall.loc[(target, "MAE")]
                headline.append(_ci_row(f"hospital: {target.upper()} MAE {UNITS[target]}", r.estimate, r.ci_low,
                                        r.ci_high, None, PUBLISHED[("hospital", target)], interval=bootstrap))
    predicted, true = analyses["predicted"], analyses["true"]
    cox, cox_true = predicted["cox_any_unadjusted"], true["cox_any_unadjusted"]
    headline.append(_ci_row("Cox HR per 10 % lower predicted RVEF (death), unadjusted", cox["hr"], cox["ci_low"],
                            cox["ci_high"], f"{cox_true['hr']:.2f} (true RVEF)", PUBLISHED["hr_per_10_lower_rvef"],
                            "oracle column: the same model on the true RVEF", "Wald (model-based)"))
    fg = predicted.get("fine_gray")
    if fg:
        headline.append(_ci_row("Fine-Gray SHR per 10 % lower predicted RVEF (HF death), adjusted for age and sex",
                                fg["shr"], fg["ci_low"], fg["ci_high"], f"{true['fine_gray']['shr']:.2f} (true RVEF)",
                                None, interval="Wald, patient-clustered sandwich"))
    # the same grouping run_survival made: lower RVEF is riskier, cut at 40 %
    cut = RV_DYSFUNCTION_RVEF
    group = risk_groups(-survival["rvef"].to_numpy(), thresholds=[-cut],
                        labels=[f"predicted RVEF > {cut:g} %", f"predicted RVEF <= {cut:g} %"])
    for g in predicted["risk_groups"]:
        expected = survival.loc[group == g["group"], "true_hf_death_by_horizon"].mean()
        headline.append(_ci_row(f"HF death by {SURVIVAL_HORIZON:g} y, {g['group']}", g["rate"], g["ci_low"],
                                g["ci_high"], f"{expected:.3f} (simulator's true risk)", None, f"n = {g['n']:,}",
                                "Aalen-Johansen (lifelines' delta method)"))
    study = {"title": "Study A on simulated cohorts: RV size and function from the 12-lead ECG",
             "summary": "A deep-learning ECG model trained on a simulated UK Biobank-like cohort with cardiac MRI, "
                        "fine-tuned in a simulated hospital system, tested prospectively, and followed for death. "
                        "Each headline number is shown with its 95 % CI (the interval column names its kind) "
                        "beside the figure published by Duong, Vaid et al. (J Am Heart Assoc 2024) and, where the "
                        "simulation knows it, the truth or the oracle. Simulated data: this shows the pipeline "
                        "works, not that a model works on patients.",
             "units": UNITS, "headline": headline,
             "model_cards": ["model/model_card.md", os.path.relpath(fine_tuned / "model_card.md", out)]}
    write_text(out / "study.json", json.dumps(study, indent=2, default=float) + "\n")
    return build_report(out)
