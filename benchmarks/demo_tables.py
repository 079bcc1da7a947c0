"""The Markdown tables the README and the docs quote from a demo run, printed from that run's own files.

    python benchmarks/demo_tables.py runs/demo [--label 1f70d30]

Reads ``metrics.csv``, ``study.json``, ``transfer/transfer_metrics.csv``, ``transfer/transfer_differences.csv``
(and ``transfer_small/`` after ``demo --full``), ``echo/study.json``, ``stage_times.csv`` and
``environment.json`` where present, and prints each table as the pages show it, so refreshing a page after a
run is a copy, not a transcription. Every figure is rounded as ``ecgscope demo`` prints it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from ecgscope.report.html import format_number, headline_digits

#: Study A's headline rows, in the pages' order: (target, metric in metrics.csv, label of the metric).
STUDY_A_ROWS = [("rv_dysfunction", "AUROC", "AUROC"), ("rv_dilation", "AUROC", "AUROC"), ("rvef", "MAE", "MAE (%)"),
                ("rvef", "90% interval coverage", "90 % interval coverage"), ("rvedvi", "MAE", "MAE (mL/m²)"),
                ("rvedvi", "R2", "R²"), ("rvedvi", "90% interval coverage", "90 % interval coverage")]
TARGET_NAMES = {"rv_dysfunction": "RV dysfunction", "rv_dilation": "RV dilation", "rvef": "RVEF", "rvedvi": "RVEDVi"}
TRANSFER_ROWS = [("rv_dysfunction", "AUROC", "RV dysfunction AUROC"), ("rv_dilation", "AUROC", "RV dilation AUROC"),
                 ("rvef", "MAE", "RVEF MAE (%)"), ("rvedvi", "MAE", "RVEDVi MAE (mL/m²)")]
MODELS = ["pretrained only (ukb)", "from scratch (hospital)", "fine-tuned (ukb -> hospital)"]


def ci(estimate, low, high, digits: int = 2, sign: bool = False) -> str:
    """``estimate [low, high]`` to ``digits`` decimals, as the demo prints it; ``sign`` writes + before
    non-negative values (differences)."""
    form = f"{{:{'+' if sign else ''}.{digits}f}}"
    return f"{form.format(estimate)} [{form.format(low)}, {form.format(high)}]"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def study_a_headline(run: Path) -> str:
    """ECG model and oracle on the ukb test patients (``metrics.csv``)."""
    m = pd.read_csv(run / "metrics.csv").set_index(["target", "metric", "model"])
    rows = []
    for target, metric, label in STUDY_A_ROWS:
        cells = [ci(*m.loc[(target, metric, model), ["estimate", "ci_low", "ci_high"]])
                 if (target, metric, model) in m.index else "-" for model in ("ECG model", "oracle")]
        rows.append([TARGET_NAMES[target], label, *cells])
    return markdown(["target", "metric", "ECG model [95 % CI]", "oracle [95 % CI]"], rows)


def transfer_tables(run: Path) -> str:
    """The three models per cohort and hospital size, then the fine-tuned model's paired differences."""
    metrics = pd.concat([pd.read_csv(p) for p in (run / "transfer_small" / "transfer_metrics.csv",
                                                   run / "transfer" / "transfer_metrics.csv") if p.exists()])
    diffs = pd.concat([pd.read_csv(p) for p in (run / "transfer_small" / "transfer_differences.csv",
                                                 run / "transfer" / "transfer_differences.csv") if p.exists()])
    table = metrics.set_index(["hospital_training_patients", "cohort", "target", "metric", "model"])
    rows = []
    for n in dict.fromkeys(metrics.hospital_training_patients):
        for cohort in dict.fromkeys(metrics.cohort):
            for target, metric, label in TRANSFER_ROWS:
                rows.append([str(n), cohort, label, *[ci(*table.loc[(n, cohort, target, metric, model),
                                                                     ["estimate", "ci_low", "ci_high"]])
                                                       for model in MODELS]])
    first = markdown(["hospital training patients", "cohort", "target", *MODELS], rows)
    d = diffs.set_index(["hospital_training_patients", "cohort", "comparison", "target", "metric"])
    rows = []
    for n in dict.fromkeys(diffs.hospital_training_patients):
        for cohort in dict.fromkeys(diffs.cohort):
            for other in MODELS[:2]:
                cells = []
                for target, metric, _ in TRANSFER_ROWS:
                    diff, low, high = d.loc[(n, cohort, f"fine-tuned minus {other}", target, metric),
                                            ["difference", "ci_low", "ci_high"]]
                    text = ci(diff, low, high, 3 if metric == "AUROC" else 2, sign=True)
                    better = low > 0 if metric == "AUROC" else high < 0  # clear of zero in fine-tuning's favour
                    cells.append(f"**{text}**" if better else text)
                rows.append([str(n), cohort, other.split(" (")[0], *cells])
    second = markdown(["hospital training patients", "cohort", "fine-tuned minus",
                       *[label for *_, label in TRANSFER_ROWS]], rows)
    return first + "\n\nFine-tuned minus each other model, paired patient bootstrap (bold: clear of zero in "\
        "fine-tuning's favour):\n\n" + second


def headline(study: Path) -> str:
    """A study's headline table (``study.json``): estimate, interval, what the simulation knows, published."""
    rows = []
    for r in json.loads(study.read_text())["headline"]:
        digits = headline_digits(r["estimate"])
        oracle = r.get("oracle")
        rows.append([r["measure"] + (f" ({r['note']})" if r.get("note") else ""),
                     ci(r["estimate"], r["ci_low"], r["ci_high"], digits), r.get("interval") or "-",
                     "-" if oracle is None else (oracle if isinstance(oracle, str) else format_number(oracle)),
                     "-" if r.get("published") is None else str(r["published"])])
    return markdown(["measure", "ecgscope [95 % CI]", "interval", "truth / oracle", "published"], rows)


def stage_times(run: Path, label: str) -> str:
    """The wall time per stage as one column of the demo page's table."""
    t = pd.read_csv(run / "stage_times.csv")
    rows = [[r.stage, f"{r.seconds:,.0f}" + (f" ({r.share:.0%})" if r.stage.startswith("CPU") else "")]
            for r in t.itertuples()]
    return markdown(["stage", f"`{label}` (s)"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a demo's output folder (runs/demo)")
    parser.add_argument("--label", default="this run", help="the column heading of the stage times")
    args = parser.parse_args()
    run = args.run
    sections = [("Study A: ukb test patients (metrics.csv)", study_a_headline, run / "metrics.csv"),
                ("Study A: the transfer step", transfer_tables, run / "transfer" / "transfer_metrics.csv"),
                ("Study A: headline (study.json)", lambda r: headline(r / "study.json"), run / "study.json"),
                ("Study B: headline (echo/study.json)", lambda r: headline(r / "echo" / "study.json"),
                 run / "echo" / "study.json"),
                ("Wall time per stage", lambda r: stage_times(r, args.label), run / "stage_times.csv")]
    found = [(title, make) for title, make, needs in sections if needs.exists()]
    if not found:
        raise SystemExit(f"{run} holds none of a demo's result files; run `ecgscope demo --out {run}` first")
    for title, make in found:
        print(f"### {title}\n\n{make(run)}\n")
    environment = run / "environment.json"
    if environment.exists():
        env = json.loads(environment.read_text())
        print(f"computed with torch {env['versions']['torch']} on {env['torch_cpu_capability']} kernels")


if __name__ == "__main__":
    main()
