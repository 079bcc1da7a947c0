"""Batch clinic mode: a folder of exported ECG files in, one row per file out (``ecgscope predict MODEL --input``).

No store is made. Every file ends as a row: ``result`` or ``cannot_assess`` (the service's statuses, with the
same checks) or ``unreadable`` (what the service answers with 422), each with its reason; optionally one
printable HTML page per ECG (the 12 leads on ECG paper, the predictions, the checks).
"""

from __future__ import annotations

import base64
import html
import io as stdio
from pathlib import Path

import numpy as np
import pandas as pd

from ecgscope import io
from ecgscope.errors import InvalidRecord
from ecgscope.progress import progress_bar
from ecgscope.serve.assess import Assessor

UNREADABLE = "unreadable"
BATCH = 32


def flatten(answer: dict) -> dict:
    """One answer as a flat table row (``TARGET``, ``TARGET_lower`` / ``_upper``, ``PHENOTYPE_probability`` /
    ``_flag``, the main checks)."""
    checks = answer["checks"]
    row = {"status": answer["status"], "reasons": "; ".join(answer["reasons"])}
    for k, v in answer["targets"].items():
        row |= {k: v["value"], f"{k}_lower": v.get("lower"), f"{k}_upper": v.get("upper")}
    for k, v in answer["phenotypes"].items():
        row |= {f"{k}_probability": v["probability"], f"{k}_flag": v.get("flag")}
    snr = checks.get("snr_db")
    ood = checks.get("ood")
    row |= {"snr_db": snr["median"] if isinstance(snr, dict) else None,
            "limb_reversal": checks.get("limb_reversal") or "",
            "pacing_spikes": checks.get("pacing_spikes") if isinstance(checks.get("pacing_spikes"), int) else None,
            "ood_percentile": ood.get("percentile") if isinstance(ood, dict) else None,
            "warnings": "; ".join(checks.get("warnings", []))}
    return row


def predict_files(model_dir: str | Path, inputs: list[str | Path], *, pages: str | Path | None = None,
                  progress: bool = True, **options) -> pd.DataFrame:
    """Assess every ECG file under ``inputs`` with the model at ``model_dir``: one row per file or record
    (``file``, ``ecg_id``, then :func:`flatten`'s columns), unreadable ones included with their reason.
    ``pages``: a folder to write one printable HTML page per assessed ECG into. ``options`` reach the readers
    (``fs``, ``units``, ``leads`` for CSV / NumPy)."""
    assessor = Assessor(model_dir)
    found = io.discover_inputs(inputs, **options)
    rows = [{"file": path, "ecg_id": "", "status": UNREADABLE, "reasons": reason} for path, reason in found.rejected]
    rows += [{"file": path, "ecg_id": "", "status": UNREADABLE, "reasons": f"not an ECG file ({what})"}
             for path, what in found.not_ecg]
    if pages is not None:
        Path(pages).mkdir(parents=True, exist_ok=True)
    with progress_bar(progress) as bar:
        task = bar.add_task("assessing", total=len(found.sources))
        for start in range(0, len(found.sources), BATCH):
            ecgs, sources = [], []
            for source in found.sources[start:start + BATCH]:
                try:
                    ecgs.append(io.load(source))
                    sources.append(source)
                except InvalidRecord as exc:
                    rows.append({"file": source.id, "ecg_id": "", "status": UNREADABLE, "reasons": exc.reason})
            for source, ecg, answer in zip(sources, ecgs, assessor.assess(ecgs), strict=True):
                rows.append({"file": source.id, "ecg_id": ecg.ecg_id, **flatten(answer)})
                if pages is not None:
                    name = f"{len(rows):05d}_{Path(source.path).stem}.html"
                    (Path(pages) / name).write_text(ecg_page(ecg, answer, assessor))
            bar.advance(task, len(found.sources[start:start + BATCH]))
    return pd.DataFrame(rows)


def plot_ecg_paper(ecg, path_or_buffer, title: str = "") -> None:
    """The 12 leads on ECG paper: 25 mm/s, 10 mm/mV, 3 x 4 layout (2.5 s per lead) and a 10 s lead II rhythm
    strip, grid at 1 mm and 5 mm; drawn at true scale on a landscape A4 page."""
    from ecgscope.report.figures import _pyplot

    plt = _pyplot()
    standard = ecg.to_standard()
    fs, signal = standard.fs, standard.signal
    index = {lead: k for k, lead in enumerate(standard.leads)}
    layout = [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"]]
    width_mm, row_mm = 250.0, 30.0  # 10 s at 25 mm/s; +-1.5 mV per row
    height_mm = row_mm * 4
    fig = plt.figure(figsize=(width_mm / 25.4 + 0.6, height_mm / 25.4 + 0.8))
    ax = fig.add_axes((0.3 / (width_mm / 25.4 + 0.6), 0.3 / (height_mm / 25.4 + 0.8),
                       width_mm / 25.4 / (width_mm / 25.4 + 0.6), height_mm / 25.4 / (height_mm / 25.4 + 0.8)))
    for x in np.arange(0, width_mm + 0.01, 1.0):
        ax.axvline(x, color="#f4c7c7" if x % 5 else "#e38b8b", lw=0.3 if x % 5 else 0.6, zorder=0)
    for y in np.arange(0, height_mm + 0.01, 1.0):
        ax.axhline(y, color="#f4c7c7" if y % 5 else "#e38b8b", lw=0.3 if y % 5 else 0.6, zorder=0)
    per_lead = int(2.5 * fs)
    for r, row in enumerate(layout):
        base = height_mm - row_mm * (r + 0.5)
        for c, lead in enumerate(row):
            segment = signal[index[lead], c * per_lead:(c + 1) * per_lead]
            t = c * 62.5 + np.arange(len(segment)) / fs * 25.0
            ax.plot(t, base + 10.0 * segment, color="black", lw=0.6)
            ax.text(c * 62.5 + 1, base + 8, lead, fontsize=7)
    rhythm = signal[index["II"], : int(10 * fs)]
    ax.plot(np.arange(len(rhythm)) / fs * 25.0, row_mm / 2 + 10.0 * rhythm, color="black", lw=0.6)
    ax.text(1, row_mm / 2 + 8, "II", fontsize=7)
    ax.set_xlim(0, width_mm)
    ax.set_ylim(0, height_mm)
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=8, x=0.02, ha="left")
    fig.savefig(path_or_buffer, format="png", dpi=150)
    plt.close(fig)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ECG assessment</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #111; }}
img {{ width: 100%; max-width: 270mm; }}
table {{ border-collapse: collapse; margin: 0.5em 0; }} td, th {{ border: 1px solid #bbb; padding: 2px 8px; }}
.cannot_assess {{ color: #a00; font-weight: bold; }} .result {{ color: #060; font-weight: bold; }}
@page {{ size: A4 landscape; margin: 10mm; }}
@media print {{ body {{ margin: 0; }} img {{ width: 270mm; }} }}
</style></head><body>
<h1>ECG assessment</h1>
<p>Status: <span class="{status}">{status_text}</span> {reasons}</p>
<img alt="12-lead ECG at 25 mm/s and 10 mm/mV" src="data:image/png;base64,{png}">
{tables}
<p><small>Model {model} (weights {sha}). Research use: an ECG model does not replace echocardiography or
cardiac MRI. Intervals cover the truth in {coverage} of ECGs like the calibration ECGs.</small></p>
</body></html>
"""


def ecg_page(ecg, answer: dict, assessor: Assessor) -> str:
    """A printable page (one landscape A4 / Letter sheet) for one assessed ECG."""
    buffer = stdio.BytesIO()
    try:
        plot_ecg_paper(ecg, buffer)
        png = base64.b64encode(buffer.getvalue()).decode()
    except Exception:  # a record that cannot be put in the 12 leads still gets its page, without the chart
        png = ""
    rows = [f"<tr><td>{html.escape(k)}</td><td>{v['value']:.1f}</td><td>{v.get('lower', float('nan')):.1f} to "
            f"{v.get('upper', float('nan')):.1f}</td></tr>" for k, v in answer["targets"].items()]
    flags = [f"<tr><td>{html.escape(k)}</td><td>{v['probability']:.2f}</td><td>{'yes' if v.get('flag') else 'no'}"
             "</td></tr>" for k, v in answer["phenotypes"].items()]
    tables = ""
    if rows:
        tables += "<table><tr><th>target</th><th>value</th><th>interval</th></tr>" + "".join(rows) + "</table>"
    if flags:
        tables += "<table><tr><th>phenotype</th><th>probability</th><th>flag</th></tr>" + "".join(flags) + "</table>"
    coverage = ", ".join(f"{v['coverage']:.0%}" for v in answer["targets"].values() if "coverage" in v) or "-"
    return PAGE.format(status=answer["status"], status_text=answer["status"].replace("_", " "),
                       reasons=html.escape("; ".join(answer["reasons"])), png=png, tables=tables,
                       model=html.escape(assessor.identity["version"]), sha=assessor.identity["weights_sha256"][:12],
                       coverage=coverage)
