"""Measure the ingest lead checks: electrode-reversal sensitivity and false alarms, lead-swap detection.

    python benchmarks/lead_check_benchmark.py [--n 1000] [--share 0.5] [--seed 0]

Simulated cohorts (``electrode_reversal=share``: that share of ECGs has LA/RA, LA/LL or RA/LL exchanged, the
truth in ``truth/ecgs.parquet``) are written as WFDB and ingested at 500 and 100 Hz, exactly as a user's files
would be; the manifest's ``lead_warning`` is compared with the truth. Sensitivity is the share of reversed
ECGs flagged with the right reversal, false alarms the share of correctly placed ECGs flagged with any;
95 % Wilson intervals. The real ECGs in ../shared/data (no reversal known) give a small real false-alarm
count. A second table swaps aVL and aVF in the header of each written record (the MIMIC-style order written
under standard names) and counts how many ingest quarantines naming that pair.

Results: benchmarks/results/lead_check.csv (and lead_swap.csv).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from ecgscope.signal.leadcheck import REVERSALS
from ecgscope.simulate import simulate_cohort
from ecgscope.simulate.export import write_cohort
from ecgscope.store import Store, ingest

RESULTS = Path(__file__).parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _rate(k: int, n: int) -> str:
    if n == 0:
        return "-"
    lo, hi = binomtest(k, n).proportion_ci(method="wilson")
    return f"{k / n:.3f} [{lo:.3f}, {hi:.3f}] ({k}/{n})"


def _flagged(warning: pd.Series) -> pd.Series:
    """The reversal a lead_warning names ('' when none)."""
    return warning.fillna("").str.extract(r"possible (\S+) limb-electrode reversal", expand=False).fillna("")


def reversal_rows(n: int, share: float, seed: int, work: Path) -> list[dict]:
    rows = []
    for preset in ("ukb", "hospital"):
        cohort = simulate_cohort(preset, n=n, seed=seed, electrode_reversal=share)
        files = write_cohort(cohort, work / preset, formats=("wfdb",), progress=False)
        truth = cohort.ecgs[["ecg_id", "electrode_reversal"]].assign(ecg_id=lambda t: t["ecg_id"].astype(str))
        for fs in (500, 100):
            ingest([files / "wfdb"], work / f"{preset}_{fs}", fs=fs, rate=fs, identifiers="keep", progress=False)
            manifest = Store(work / f"{preset}_{fs}").manifest
            table = manifest[["ecg_id", "lead_warning"]].merge(truth, on="ecg_id")
            table["flagged"] = _flagged(table["lead_warning"])
            placed = table["electrode_reversal"] == "none"
            row = {"data": f"simulated {preset}", "store_fs": fs,
                   "false_alarm": _rate(int((table["flagged"][placed] != "").sum()), int(placed.sum()))}
            for kind in REVERSALS:
                reversed_ = table["electrode_reversal"] == kind
                row[f"sensitivity_{kind}"] = _rate(int((table["flagged"][reversed_] == kind).sum()),
                                                   int(reversed_.sum()))
            rows.append(row)
            print(row, flush=True)
    if SHARED.exists():
        for fs in (500, 100):
            ingest([SHARED / "cinc2021", SHARED / "ptbdb", SHARED / "ludb"], work / f"real_{fs}", fs=fs,
                   progress=False)
            manifest = Store(work / f"real_{fs}").manifest
            flagged = _flagged(manifest["lead_warning"])
            row = {"data": "real (../shared/data, no reversal known)", "store_fs": fs,
                   "false_alarm": _rate(int((flagged != "").sum()), len(flagged)),
                   "flagged": "; ".join(f"{Path(src).name} ({kind})" for src, kind
                                        in zip(manifest["source"], flagged, strict=True) if kind)}
            rows.append(row | {f"sensitivity_{kind}": "-" for kind in REVERSALS})
            print(rows[-1], flush=True)
    return rows


def swap_rows(n: int, seed: int, work: Path) -> list[dict]:
    """Relabel aVL and aVF in each written header (the values stay in their rows) and ingest."""
    cohort = simulate_cohort("hospital", n=n, seed=seed + 1)
    files = write_cohort(cohort, work / "swap", formats=("wfdb",), progress=False)
    for header in (files / "wfdb" / "records500").rglob("*.hea"):
        lines = header.read_text().splitlines()
        lines = [line.replace(" aVL", " _TMP_").replace(" aVF", " aVL").replace(" _TMP_", " aVF") for line in lines]
        header.write_text("\n".join(lines) + "\n")
    ingest([files / "wfdb"], work / "swap_store", fs=500, rate=500, identifiers="keep", progress=False)
    store = Store(work / "swap_store")
    caught = store.quarantine["reason"].str.contains("swapping aVL and aVF").sum() if len(store.quarantine) else 0
    row = {"data": "simulated hospital, aVL/aVF labels exchanged", "records": len(cohort),
           "quarantined naming aVL and aVF": _rate(int(caught), len(cohort)), "stored": len(store)}
    print(row, flush=True)
    return [row]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="subjects per simulated preset")
    parser.add_argument("--share", type=float, default=0.5, help="share of ECGs with reversed electrodes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        reversal = pd.DataFrame(reversal_rows(args.n, args.share, args.seed, Path(tmp)))
        swap = pd.DataFrame(swap_rows(min(args.n, 300), args.seed, Path(tmp)))
    reversal.to_csv(RESULTS / "lead_check.csv", index=False)
    swap.to_csv(RESULTS / "lead_swap.csv", index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 40):
        print(reversal.to_string(index=False))
        print(swap.to_string(index=False))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
