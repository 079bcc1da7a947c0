"""The model card a trained model carries (``model_card.json`` and ``model_card.md``), by TRIPOD+AI's items.

TRIPOD+AI (Collins et al., BMJ 2024) lists what a prediction model's report must state; the card holds those a
model directory can know: intended use and who it is not for, the data and its splits, the preprocessing
contract, the model, performance on the held-out test patients overall and by sex and age band, calibration
(intercept, slope, Brier), the operating point chosen on validation patients with sensitivity and specificity
on the test patients and the PPV / NPV they imply at stated prevalences, the interval coverage, the
out-of-distribution reference, and the limitations. Every figure is computed here from the test split by
:func:`model_card`; the service's ``GET /v1/models`` and the viewer show it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgscope import __version__
from ecgscope.evaluate import auroc, mae
from ecgscope.evaluate.classification import (
    calibration_intercept,
    calibration_slope,
    predictive_values_at,
    threshold_metrics,
)

#: Prevalences at which the card states PPV and NPV (screening, referral clinic, high-risk clinic).
PREVALENCES = (0.05, 0.10, 0.20)
AGE_BANDS = ((0, 50, "<50"), (50, 65, "50-64"), (65, 200, ">=65"))
LIMITATIONS = [
    "An ECG model does not replace echocardiography or cardiac MRI: it points to who may need imaging.",
    "Performance, calibration and thresholds hold for populations, devices and label definitions like the "
    "training data's; check them on a local sample before use elsewhere.",
    "Intervals and probabilities assume the ECG resembles the calibration ECGs; the out-of-distribution check "
    "refuses the most distant, but cannot see every shift.",
    "Paced rhythms, lead reversals, noisy and incomplete recordings are refused, not assessed.",
]


def _subgroups(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    groups = {"all": np.ones(len(frame), bool)}
    if "sex" in frame:
        for value in sorted(frame["sex"].dropna().astype(str).unique()):
            groups[f"sex={value}"] = (frame["sex"].astype(str) == value).to_numpy()
    if "age" in frame:
        age = pd.to_numeric(frame["age"], errors="coerce").to_numpy()
        for low, high, name in AGE_BANDS:
            groups[f"age {name}"] = (age >= low) & (age < high)
    return groups


def _safe(metric, *args) -> float | None:
    try:
        value = float(metric(*args))
    except (ValueError, ZeroDivisionError):
        return None
    return value if np.isfinite(value) else None


def performance(frame: pd.DataFrame, regression: list[str], binary: list[str], thresholds: dict,
                intervals: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """Test-split performance per subgroup: for each regression target n, MAE and interval coverage; for each
    binary target n, positives, AUROC, calibration, and the operating point's sensitivity, specificity and
    PPV / NPV at :data:`PREVALENCES`. ``frame`` holds the truths (``NAME``), predictions (``NAME_pred``) and,
    where known, ``sex`` and ``age``."""
    out: dict[str, dict] = {}
    for group, mask in _subgroups(frame).items():
        row: dict[str, dict] = {}
        for k in regression:
            y, p = frame[k].to_numpy(float), frame[f"{k}_pred"].to_numpy(float)
            keep = mask & np.isfinite(y) & np.isfinite(p)
            lo, hi = intervals[k]
            row[k] = {"n": int(keep.sum()), "mae": _safe(mae, y[keep], p[keep]) if keep.any() else None,
                      "interval_coverage": float(np.mean((y[keep] >= lo[keep]) & (y[keep] <= hi[keep])))
                      if keep.any() else None}
        for k in binary:
            y, p = frame[k].to_numpy(float), frame[f"{k}_pred"].to_numpy(float)
            keep = mask & np.isfinite(y) & np.isfinite(p)
            y, p = y[keep].astype(int), p[keep]
            entry = {"n": int(keep.sum()), "positives": int(y.sum())}
            if 0 < y.sum() < len(y):
                entry |= {"auroc": _safe(auroc, y, p), "calibration_intercept": _safe(calibration_intercept, y, p),
                          "calibration_slope": _safe(calibration_slope, y, p),
                          "brier": float(np.mean((p - y) ** 2))}
                if k in thresholds:
                    point = threshold_metrics(y, p, thresholds[k]["value"])
                    entry |= {"sensitivity": point["sensitivity"], "specificity": point["specificity"],
                              "predictive_values": {f"{prev:.0%}": predictive_values_at(
                                  point["sensitivity"], point["specificity"], prev) for prev in PREVALENCES}}
            row[k] = entry
        out[group] = row
    return out


def model_card(*, architecture: str, targets: dict[str, list[str]], contract: str, data: dict, thresholds: dict,
               conformal_alpha: dict[str, float], performance_by_group: dict, ood: dict | None) -> dict:
    """The card as a JSON-ready dict, TRIPOD+AI's items as keys."""
    return {
        "title": f"{architecture}: {', '.join(targets['regression'] + targets['binary'])} from the 12-lead ECG",
        "intended_use": "Research and triage support: estimate right-ventricular size and function (and the "
                        "phenotypes defined on them) from a resting 10-second 12-lead ECG, to point to who may "
                        "need cardiac MRI or echocardiography where imaging is scarce.",
        "not_intended_for": "Diagnosis without imaging; paced rhythms; ECGs outside the input contract; "
                            "populations unlike the training data without local validation.",
        "outputs": {"regression": targets["regression"], "binary": targets["binary"],
                    "interval_coverage": {k: 1 - a for k, a in conformal_alpha.items()}},
        "data": data,
        "preprocessing": contract,
        "model": {"architecture": architecture, "software": f"ecgscope {__version__}"},
        "operating_points": thresholds,
        "performance": performance_by_group,
        "prevalences_for_predictive_values": list(PREVALENCES),
        "out_of_distribution": ood,
        "limitations": LIMITATIONS,
        "reporting_guideline": "TRIPOD+AI (Collins et al., BMJ 2024;385:e078378)",
    }


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def card_markdown(card: dict) -> str:
    """``model_card.md``: the card for people."""
    lines = [f"# Model card: {card['title']}", "", f"*Reported by {card['reporting_guideline']}.*", "",
             f"**Intended use.** {card['intended_use']}", "", f"**Not intended for.** {card['not_intended_for']}",
             "", f"**Input contract.** {card['preprocessing']}", "",
             "**Data.** " + "; ".join(f"{k}: {v}" for k, v in card["data"].items()), "",
             "## Performance on the held-out test patients", ""]
    perf = card["performance"]
    for target in card["outputs"]["regression"]:
        lines += [f"### {target}", "", "| group | n | MAE | interval coverage |", "|---|---|---|---|"]
        lines += [f"| {g} | {r[target]['n']} | {_fmt(r[target]['mae'], 2)} | {_fmt(r[target]['interval_coverage'])} |"
                  for g, r in perf.items()]
        lines.append("")
    for target in card["outputs"]["binary"]:
        lines += [f"### {target}", "", "| group | n | positives | AUROC | calibration intercept | slope | Brier | "
                  "sensitivity | specificity |", "|---|---|---|---|---|---|---|---|---|"]
        for g, r in perf.items():
            e = r[target]
            lines.append(f"| {g} | {e['n']} | {e['positives']} | {_fmt(e.get('auroc'))} | "
                         f"{_fmt(e.get('calibration_intercept'))} | {_fmt(e.get('calibration_slope'))} | "
                         f"{_fmt(e.get('brier'))} | {_fmt(e.get('sensitivity'))} | {_fmt(e.get('specificity'))} |")
        pv = perf["all"][target].get("predictive_values")
        if pv:
            lines += ["", "At the operating point (" + _fmt(card["operating_points"][target]["value"]) +
                      ", chosen on validation patients): " + "; ".join(
                          f"prevalence {prev}: PPV {_fmt(v['ppv'])}, NPV {_fmt(v['npv'])}" for prev, v in pv.items())]
        lines.append("")
    if card.get("out_of_distribution"):
        lines += ["**Out of distribution.** " + card["out_of_distribution"]["rule"], ""]
    lines += ["## Limitations", ""] + [f"- {item}" for item in card["limitations"]]
    return "\n".join(lines) + "\n"
