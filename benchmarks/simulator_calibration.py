"""Print the simulator's calibration figures beside the targets in REFERENCE.md section 4.

    python benchmarks/simulator_calibration.py [--scale 1.0]

- oracle AUROC for RV dysfunction / dilation on ukb and hospital (target 0.85-0.93), RVEF MAE (6-8 %);
- diastolic high-risk oracle AUROC (0.85-0.90);
- true-RVEF Cox HR per 10 % lower RVEF for all-cause death (1.5-1.8);
- 4-year HF death, high- vs low-risk diastolic group in code15 (about 8-9 % vs 3 %), competing risks;
- QRS duration vs RVEDVi correlation (0.4-0.7), measured prevalences against the published ones.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from lifelines import AalenJohansenFitter, CoxPHFitter
from sklearn.metrics import mean_absolute_error, r2_score, roc_auc_score

from ecgscope.simulate import simulate_cohort
from ecgscope.studies.oracle import fit_oracle, phenotype_score, predict_oracle

PUBLISHED_PREVALENCE = {"ukb": (1.0, 1.6), "hospital": (18.0, 10.6), "prospective": (15.7, 4.3)}


def oracle_block(preset: str, n: int, seed: int) -> None:
    cohort = simulate_cohort(preset, n=n, seed=seed)
    idx = cohort.ecgs[cohort.ecgs.is_index].set_index("patient_id")
    truth = cohort.patients.set_index("patient_id").loc[idx.index]
    targets = truth[["rvef", "rvedvi", "diastolic_high_risk"]]
    rng = np.random.default_rng(seed)
    test = rng.random(len(idx)) < 0.3
    models = fit_oracle(idx[~test], targets[~test], seed)
    pred = predict_oracle(models, idx[test])
    pred["rv_dysfunction"] = phenotype_score(pred["rvef"], "<=")
    pred["rv_dilation"] = phenotype_score(pred["rvedvi"], ">")
    yt = truth[test]
    dys, dil = PUBLISHED_PREVALENCE.get(preset, (float("nan"),) * 2)
    print(f"\n[{preset}] n={n}  prevalence dysfunction {100 * truth.rv_dysfunction.mean():.1f} % "
          f"(published {dys}), dilation {100 * truth.rv_dilation.mean():.1f} % (published {dil})")
    for name in ("rv_dysfunction", "rv_dilation", "diastolic_high_risk"):
        print(f"  oracle AUROC {name:20s} {roc_auc_score(yt[name], pred[name]):.3f}")
    for name in ("rvef", "rvedvi"):
        print(f"  oracle {name:6s} MAE {mean_absolute_error(yt[name], pred[name]):6.2f}  "
              f"R2 {r2_score(yt[name], pred[name]):.3f}  (SD {yt[name].std():.1f})")
    r = np.corrcoef(idx["qrs_duration_ms"], truth["rvedvi"])[0, 1]
    print(f"  corr(QRS duration, RVEDVi) = {r:.2f}  (target 0.4-0.7)")
    pts = cohort.patients.assign(rvef_drop10=(60 - cohort.patients.rvef) / 10)
    cph = CoxPHFitter().fit(pts[["followup_years", "death", "rvef_drop10"]], "followup_years", "death")
    hr = np.exp(cph.params_["rvef_drop10"])
    lo, hi = np.exp(cph.confidence_intervals_.loc["rvef_drop10"])
    print(f"  all-cause death Cox HR per 10 % lower true RVEF {hr:.2f} ({lo:.2f}-{hi:.2f})  (target 1.5-1.8)")


def risk_block(n: int, seed: int) -> None:
    cohort = simulate_cohort("code15", n=n, seed=seed)
    pts = cohort.patients
    print(f"\n[code15] n={n}: 4-year HF death by diastolic group (Aalen-Johansen, other death competing)")
    for label, group in (("high", pts[pts.diastolic_high_risk]), ("low", pts[~pts.diastolic_high_risk])):
        ajf = AalenJohansenFitter(seed=seed).fit(group.followup_years, group.event, event_of_interest=1)
        cif = ajf.cumulative_density_.iloc[:, 0]
        at4 = float(cif[cif.index <= 4.0].iloc[-1])
        target = "8-9" if label == "high" else "~3"
        print(f"  {label:4s} risk (n={len(group)}): {100 * at4:.1f} %   (target {target} %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every cohort size")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    start = time.perf_counter()
    oracle_block("ukb", int(40000 * args.scale), args.seed)
    oracle_block("hospital", int(20000 * args.scale), args.seed)
    oracle_block("prospective", int(5000 * args.scale), args.seed)
    risk_block(int(40000 * args.scale), args.seed)
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    pd.set_option("display.width", 120)
    main()
