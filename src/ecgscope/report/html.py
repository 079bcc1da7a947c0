"""The study report: one self-contained HTML file (figures embedded, opens offline) and a JSON beside it.

``build_report(RUN_DIR)`` reads what the other stages wrote under RUN_DIR and draws it; it computes nothing:

- ``study.json`` (optional): title, summary, headline rows (measure, estimate, CI, oracle, published), units
- ``table1.csv`` (optional): the cohort table
- every folder holding ``evaluation.json`` (from ``ecgscope evaluate``) and ``summary.json`` (from
  ``ecgscope survival``), in name order
- ``transfer*/transfer_metrics.csv`` and ``transfer_differences.csv`` (optional; one folder per hospital
  training-set size)
- ``model/model_card.md`` (optional)
"""

from __future__ import annotations

import base64
import html
import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from ecgscope.errors import EcgscopeError
from ecgscope.io import write_text
from ecgscope.report import evidence

LIMITATIONS = (
    "An ECG model estimates cardiac structure and function; it does not replace imaging. Use it to decide who "
    "needs an MRI or echo sooner, not to make a diagnosis. Performance depends on the population, the ECG "
    "machines and the measurement protocol it was trained on; check it in every new setting (the subgroup "
    "forest plots above are the place to start). Prediction intervals are calibrated on patients set aside "
    "from training and model selection, and hold on average, not for every individual. Results on simulated "
    "cohorts show that the pipeline is right, not that the model works on patients."
)

#: Column headers in the report for the tables' machine names.
DISPLAY_NAMES = {"hospital_training_patients": "hospital training patients"}

STYLE = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #1f77b4; padding-bottom: .2em; } h2 { margin-top: 2em; color: #1f4e79; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; } th { background: #eef3f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; margin: .5em 0; border: 1px solid #eee; } .note { color: #555; font-size: .9em; }
pre { background: #f6f8fa; padding: .8em; white-space: pre-wrap; }
"""


def format_number(value, digits: int = 2) -> str:
    """How the report prints a value: fixed decimals, compact for tiny or huge numbers, "-" for missing."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        if value == 0 or 10 ** -digits <= abs(value) < 1e5:
            return f"{value:.{digits}f}"
        return f"{value:.2g}"  # tiny p-values, or a diverged estimate, stay readable
    return html.escape(str(value))


def headline_digits(value) -> int:
    """Decimals for a headline number: three below 0.1 (rates like 0.085), else two."""
    return 3 if isinstance(value, int | float) and 0 < abs(value) < 0.1 else 2


#: Columns that hold counts: printed as whole numbers even when a missing value made them floats.
COUNT_COLUMNS = {"n", "n_positive", "positives", "events", "n_or_positives", "at_risk", "resamples",
                 "hospital training patients"}


def _ci(estimate, low, high, digits: int = 2) -> str:
    """An estimate with its CI; no CI beside a missing estimate, and none where a bound is missing."""
    if estimate is None or not np.isfinite(estimate) or low is None or not np.isfinite(low) \
            or high is None or not np.isfinite(high):
        return format_number(estimate, digits)
    return f"{format_number(estimate, digits)} [{format_number(low, digits)}, {format_number(high, digits)}]"


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    counts = [str(c) in COUNT_COLUMNS for c in frame.columns]
    for row in frame.itertuples(index=False):
        cells = [f"<td class='num'>{format_number(_as_count(v) if count else v)}</td>"
                 if isinstance(v, (int, float, np.number)) else f"<td>{format_number(v)}</td>"
                 for v, count in zip(row, counts, strict=True)]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _as_count(value):
    """A whole-number float as an int (a count column holding NaN is float); anything else as it is."""
    return int(value) if isinstance(value, (float, np.floating)) and np.isfinite(value) and value == int(value) \
        else value


def _img(png: bytes, alt: str) -> str:
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def _evaluation_section(folder: Path, units: dict) -> tuple[str, dict]:
    info = json.loads((folder / "evaluation.json").read_text())
    metrics = pd.read_csv(folder / "metrics.csv")
    title = info.get("title", folder.name.replace("_", " "))
    parts = [f"<h2>{html.escape(title)}</h2>",
             f"<p class='note'>{info['n_rows']:,} ECGs of {info['n_patients']:,} patients; 95 % CIs from "
             f"{info['n_boot']} patient-level bootstrap resamples (the note says where fewer gave a value); "
             f"operating point: {info['operating_point']}"
             + "".join(f"; {html.escape(t)} threshold {format_number(v['value'], 3)}, {html.escape(v['source'])}"
                       for t, v in info.get("thresholds", {}).items()) + ".</p>"]
    overall = metrics[metrics.subgroup == "all"]
    shown = overall.assign(value=[_ci(r.estimate, r.ci_low, r.ci_high) for r in overall.itertuples()],
                           note=overall.get("note", pd.Series("", index=overall.index)).fillna(""))
    parts.append(_table(shown[["target", "metric", "value", "n", "n_positive", "note"]].rename(
        columns={"value": "estimate [95 % CI]", "n_positive": "positives"})))
    points = pd.read_parquet(folder / "points.parquet")
    for target, kind in info["targets"].items():
        row = overall[overall.target == target].set_index("metric")
        if kind == "binary" and (folder / f"roc_{target}.csv").exists():
            auroc = tuple(row.loc["AUROC", ["estimate", "ci_low", "ci_high"]])
            parts.append(_img(evidence.roc_pr_figure(target, pd.read_csv(folder / f"roc_{target}.csv"),
                                                     pd.read_csv(folder / f"pr_{target}.csv"), auroc,
                                                     row.loc["AUPRC", "estimate"]), f"ROC and PR curves of {target}"))
            if (folder / f"calibration_{target}.csv").exists():
                parts.append(_img(evidence.calibration_figure(
                    target, pd.read_csv(folder / f"calibration_{target}.csv"),
                    row.loc["calibration intercept", "estimate"], row.loc["calibration slope", "estimate"]),
                    f"calibration of {target}"))
        elif kind == "regression":
            seen = points[[f"{target}_true", f"{target}_pred"]].dropna()
            parts.append(_img(evidence.agreement_figure(
                target, seen.iloc[:, 0].to_numpy(), seen.iloc[:, 1].to_numpy(), row.loc["bias", "estimate"],
                (row.loc["LoA low", "estimate"], row.loc["LoA high", "estimate"]), units.get(target, "")),
                f"agreement of {target}"))
        metric = "AUROC" if kind == "binary" else "MAE"
        sub = metrics[(metrics.target == target) & (metrics.metric == metric)]
        if sub.subgroup.nunique() > 1:
            rows = sub.assign(label=[("all" if r.subgroup == "all" else f"{r.subgroup}: {r.level}")
                                     for r in sub.itertuples()])
            overall_value = sub[sub.subgroup == "all"].estimate.iloc[0]
            parts.append(_img(evidence.forest_figure(f"{target} {metric} by subgroup", rows, overall_value),
                              f"subgroup forest plot of {target}"))
    if (folder / "comparison.csv").exists():
        comparison = pd.read_csv(folder / "comparison.csv")
        parts.append("<h3>Against the baseline model</h3>" + _table(comparison))
    return "\n".join(parts), {"title": title, "metrics": metrics.to_dict(orient="records")}


def _hr_row(name: str, result: dict, key: str = "hr", interval: str = "Wald (model-based)") -> dict:
    return {"model": name, "ratio [95 % CI]": _ci(result[key], result["ci_low"], result["ci_high"]),
            "interval": result.get("interval", interval),
            "p": result["p"], "n": result["n"], "events": result["events"],
            "PH test p": result.get("ph_p", float("nan"))}


def _survival_section(folder: Path) -> tuple[str, dict]:
    s = json.loads((folder / "summary.json").read_text())
    title = s.get("title", folder.name.replace("_", " "))
    per = f"per {abs(s['per']):g} {'decrease' if s['per'] < 0 else 'increase'} of {s['predictor']}"
    rows = [_hr_row(f"Cox, any death, unadjusted ({per})", s["cox_any_unadjusted"])]
    if "cox_any_adjusted" in s:
        rows.append(_hr_row(f"Cox, any death, adjusted for {', '.join(s['covariates'])}", s["cox_any_adjusted"]))
    rows.append(_hr_row(f"Cox, cause {s['cause']} (cause-specific), unadjusted", s["cox_cause_unadjusted"]))
    if "fine_gray" in s:
        adjusted = s["fine_gray"].get("covariates") or []
        rows.append(_hr_row(f"Fine-Gray subdistribution HR, cause {s['cause']}, "
                            + (f"adjusted for {', '.join(adjusted)}" if adjusted else "unadjusted"),
                            s["fine_gray"], "shr"))
    parts = [f"<h2>{html.escape(title)}</h2>",
             f"<p class='note'>{s['n']:,} patients, {s['events_any']:,} deaths ({s['events_cause']:,} of cause "
             f"{s['cause']}), median follow-up {s['median_followup']:.1f} years. Concordance (higher risk, earlier "
             f"event): Harrell {s['harrell_c_any']:.3f}, Uno {s['uno_c_any']:.3f}; log-rank across risk groups "
             f"p = {format_number(s['logrank_any']['p'], 3)}.</p>", _table(pd.DataFrame(rows))]
    curves, at_risk = pd.read_csv(folder / "km.csv"), pd.read_csv(folder / "km_at_risk.csv")
    parts.append(_img(evidence.km_figure(curves, at_risk, f"Survival (any death) by risk group: {s['predictor']}"),
                      "Kaplan-Meier curves"))
    parts.append(_img(evidence.cif_figure(pd.read_csv(folder / "cif.csv"), at_risk,
                                          f"Cumulative incidence of cause {s['cause']} (competing risks)",
                                          s["horizon"]), "cumulative incidence curves"))
    groups = pd.read_csv(folder / "risk_groups.csv")
    groups["rate [95 % CI]"] = [_ci(r.rate, r.ci_low, r.ci_high, 3) for r in groups.itertuples()]
    parts.append(f"<h3>Event rate of cause {s['cause']} at {s['horizon']:g} years by risk group</h3>"
                 "<p class='note'>Aalen-Johansen cumulative incidence, other causes competing; 95 % CIs from "
                 "lifelines' delta-method variance.</p>"
                 + _table(groups[["group", "n", "events", "rate [95 % CI]"]]))
    td = pd.read_csv(folder / "td_auc.csv")
    if len(td):
        parts.append("<h3>Time-dependent AUC (cause of interest)</h3><p class='note'>Cumulative/dynamic AUC: "
                     "patients who died of a competing cause are censored at that death.</p>" + _table(td))
    return "\n".join(parts), s


def _motion_section(folder: Path) -> tuple[str, dict]:
    summary = json.loads((folder / "agreement.json").read_text())
    points = pd.read_parquet(folder / "agreement.parquet")
    examples = pd.read_parquet(folder / "examples.parquet")
    rows = pd.DataFrame([{"measure": k.replace("_", " "), "value": format_number(v, 3)}
                         for k, v in summary.items() if isinstance(v, int | float)])
    correlations = {k.removesuffix("_r"): v for k, v in summary.items() if k.endswith("_r")}
    body = (f"<h2>Synthetic motion against the truth ({len(points):,} patients never seen in training)</h2>"
            + _table(rows) + _img(evidence.motion_figure(points, examples, correlations),
                                  "generated against true tissue Doppler features and example cycles"))
    return body, summary


def _headline(study: dict) -> str:
    rows = pd.DataFrame([{"measure": r["measure"], "ecgscope [95 % CI]": _ci(r["estimate"], r.get("ci_low"),
                                                                              r.get("ci_high"),
                                                                              headline_digits(r["estimate"])),
                          "interval": r.get("interval", ""),
                          "simulation truth / oracle": r.get("oracle"), "published": r.get("published"),
                          "note": r.get("note", "")} for r in study.get("headline", [])])
    return "<h2>Headline results</h2>" + _table(rows) if len(rows) else ""


class ReportError(EcgscopeError, ValueError):
    """A run folder holds nothing a report could show."""


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` (self-contained) and ``report.json`` (every number in it) for ``run_dir``."""
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"{run}: no such run directory")
    study = json.loads((run / "study.json").read_text()) if (run / "study.json").exists() else {}
    units = study.get("units", {})
    title = study.get("title", f"ecgscope report: {run.name}")
    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p class='note'>Generated by ecgscope on {date.today().isoformat()} from {html.escape(str(run))}. "
            "Every number here is also in report.json and in the CSV files beside it.</p>"]
    if study.get("summary"):
        body.append(f"<p>{html.escape(study['summary'])}</p>")
    body.append(_headline(study))
    record = {"title": title, "headline": study.get("headline", []), "evaluations": {}, "survival": {}}
    if (run / "table1.csv").exists():
        table1 = pd.read_csv(run / "table1.csv")
        body.append("<h2>Table 1: the cohorts</h2>" + _table(table1))
        record["table1"] = table1.to_dict(orient="records")
    def own(path: Path) -> bool:  # not inside a nested run (a folder with its own study.json, e.g. demo/echo)
        return not any((parent / "study.json").exists() for parent in path.parents if run in parent.parents)

    for folder in sorted(p.parent for p in run.rglob("evaluation.json") if own(p)):
        section, data = _evaluation_section(folder, units)
        body.append(section)
        record["evaluations"][str(folder.relative_to(run))] = data
    for folder in sorted(p.parent for p in run.rglob("summary.json") if (p.parent / "km.csv").exists() and own(p)):
        section, data = _survival_section(folder)
        body.append(section)
        record["survival"][str(folder.relative_to(run))] = data
    for folder in sorted(p.parent for p in run.rglob("agreement.json") if (p.parent / "agreement.parquet").exists()
                         and own(p)):
        section, data = _motion_section(folder)
        body.append(section)
        record.setdefault("motion", {})[str(folder.relative_to(run))] = data
    transfer_runs = sorted(path.parent for path in run.glob("transfer*/transfer_metrics.csv"))
    if not (study or record["evaluations"] or record["survival"] or record.get("motion") or transfer_runs
            or "table1" in record or any(run.rglob("*/study.json"))):
        raise ReportError(f"{run} holds no evaluation, survival, motion or study results to report; run "
                          "`ecgscope evaluate` or `ecgscope survival` with --out inside it first")
    if transfer_runs:
        metrics = pd.concat([pd.read_csv(folder / "transfer_metrics.csv") for folder in transfer_runs])
        keys = [c for c in ("hospital_training_patients", "cohort") if c in metrics.columns]
        metrics = metrics.sort_values(keys, kind="stable")
        metrics["estimate [95 % CI]"] = [_ci(r.estimate, r.ci_low, r.ci_high) for r in metrics.itertuples()]
        body.append("<h2>Taking the model to a new hospital</h2>"
                    + _table(metrics[[*keys, "model", "target", "metric", "estimate [95 % CI]"]]
                             .rename(columns=DISPLAY_NAMES)))
        record["transfer"] = metrics.drop(columns="estimate [95 % CI]").to_dict(orient="records")
        diff_files = [folder / "transfer_differences.csv" for folder in transfer_runs]
        if all(path.exists() for path in diff_files):
            diffs = pd.concat([pd.read_csv(path) for path in diff_files]).sort_values(keys, kind="stable")
            diffs["difference [95 % CI]"] = [_ci(r.difference, r.ci_low, r.ci_high, 3) for r in diffs.itertuples()]
            body.append("<p class='note'>Paired differences on the same patients (MAE: negative is better); "
                        "n in the plots is the number of hospital training patients.</p>"
                        + _table(diffs[[*keys, "comparison", "target", "metric", "difference [95 % CI]"]]
                                 .rename(columns=DISPLAY_NAMES)))
            for (target, metric), group in diffs[diffs.cohort == "hospital test"].groupby(["target", "metric"],
                                                                                         sort=False):
                rows = group.assign(label=group.comparison, estimate=group.difference,
                                    n=group.get("hospital_training_patients", "?"))
                body.append(_img(evidence.forest_figure(f"hospital test, {target} {metric}", rows, reference=0.0),
                                 f"fine-tuned minus the other models, {target}"))
            record["transfer_differences"] = diffs.drop(columns="difference [95 % CI]").to_dict(orient="records")
    body.append("<h2>Model card</h2>")
    for card in [run / c for c in study.get("model_cards", ["model/model_card.md"])]:
        if card.exists():
            body.append(f"<pre>{html.escape(card.read_text())}</pre>")
    body.append("<p><b>Performance by subgroup</b>: see the forest plots in each evaluation section above.</p>")
    body.append(f"<p><b>Limitations.</b> {html.escape(LIMITATIONS)}</p>")
    record["limitations"] = LIMITATIONS
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>")
    out = Path(out) if out else run / "report.html"
    write_text(out.with_suffix(".json"), json.dumps(record, indent=2, default=float) + "\n")
    write_text(out, page)
    return out
