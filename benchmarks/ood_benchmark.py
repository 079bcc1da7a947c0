"""How often the service refuses, and why: each "cannot assess" check measured on ECGs with a known truth.

A default model (net1d_small, 100 Hz) is trained on the simulated UK Biobank preset; then ECGs it never saw go
through the service's checks (ecgscope.serve.assess): held-out ECGs of the same preset, every other preset,
the same held-out ECGs made noisy at a set SNR (MIT-BIH rule) or with the LA/RA electrodes exchanged, and the
real recordings in ../shared/data (LUDB, PTB, CinC 2021, CODE-15%). Printed per group: the share refused
(Wilson 95 % CI), the reasons, the median out-of-distribution percentile and the median width of the 90 %
RVEF interval over every ECG that fit the contract (refused or not: what a user would have been shown).

    python benchmarks/ood_benchmark.py [--n-train 2000] [--n 200]

Writes benchmarks/results/ood_refusals.csv.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import SHARED_DATA  # noqa: E402
from tests.service_model import train_small_model  # noqa: E402

from ecgscope import io  # noqa: E402
from ecgscope.serve.assess import Assessor  # noqa: E402
from ecgscope.signal.leadcheck import reverse_limb_electrodes  # noqa: E402
from ecgscope.simulate import simulate_cohort  # noqa: E402
from ecgscope.simulate.presets import list_presets  # noqa: E402

REASONS = {"too noisy": "noisy", "lead reversal": "reversal", "mislabelled": "reversal", "paced": "paced",
           "flat lead": "flat", "missing lead": "missing lead", "outside the input contract": "contract",
           "far from the data": "OOD", "clipped": "clipped"}


def assess_group(assessor: Assessor, ecgs) -> dict:
    """Refusals, reasons, OOD percentiles and RVEF interval widths over ``ecgs``."""
    refused, reasons, ood, widths = [], {}, [], []
    conformal = assessor.loaded.conformal["rvef"]
    for ecg in ecgs:
        prepared = assessor.prepare(ecg)
        inferred = assessor.infer(prepared.x[None])[0] if prepared.x is not None else None
        answer = assessor.answer(prepared, inferred)
        refused.append(answer["status"] == "cannot_assess")
        for reason in answer["reasons"]:
            for words, name in REASONS.items():
                if words in reason:
                    reasons[name] = reasons.get(name, 0) + 1
                    break
        if inferred is not None:
            ood.append(inferred["_ood"])
            lo, hi = conformal.interval(np.array([inferred["rvef"]]), np.array([inferred["rvef_std"]]))
            widths.append(float(hi[0] - lo[0]))
    n, k = len(refused), int(np.sum(refused))
    ci = binomtest(k, n).proportion_ci(method="wilson") if n else None
    return {"n": n, "refused": k, "refused_share": k / n if n else np.nan,
            "ci_low": ci.low if ci else np.nan, "ci_high": ci.high if ci else np.nan,
            "reasons": ", ".join(f"{name} {count}" for name, count in sorted(reasons.items(), key=lambda kv: -kv[1])),
            "median_ood_percentile": float(np.median(ood)) if ood else np.nan,
            "median_rvef_interval_width": float(np.median(widths)) if widths else np.nan}


def real_records():
    """Every record in ../shared/data, by source."""
    groups = {"real: LUDB": [SHARED_DATA / "ludb" / "1"], "real: PTB": sorted((SHARED_DATA / "ptbdb").glob("*.hea")),
              "real: CinC 2021": sorted((SHARED_DATA / "cinc2021").glob("*.hea")),
              "real: CODE-15%": [SHARED_DATA / "code15" / "exams_part0.hdf5"]}
    for name, paths in groups.items():
        ecgs = []
        for path in paths:
            found = io.discover_inputs([path.with_suffix("") if path.suffix == ".hea" else path])
            for source in found.sources:
                try:
                    ecgs.append(io.load(source))
                except Exception as exc:  # a real file the readers refuse is reported, not hidden
                    print(f"  {source.id}: not read ({exc})")
        yield name, ecgs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n", type=int, default=200, help="ECGs per simulated group")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"training net1d_small on {args.n_train} simulated ukb ECGs ...")
        model = train_small_model(Path(tmp), preset="ukb", n=args.n_train, seed=0, architecture="net1d_small",
                                  epochs=args.epochs)
        assessor = Assessor(model)
        rows = []

        def run(group: str, ecgs) -> None:
            result = {"group": group, **assess_group(assessor, list(ecgs))}
            rows.append(result)
            print(f"{group:34s} n={result['n']:4d} refused {result['refused_share']:6.1%} "
                  f"[{result['ci_low']:.1%}, {result['ci_high']:.1%}]  OOD pct {result['median_ood_percentile']:5.1f}"
                  f"  RVEF width {result['median_rvef_interval_width']:5.1f}  {result['reasons']}", flush=True)

        held_out = list(simulate_cohort("ukb", n=args.n, seed=99).records())
        run("ukb held out (training preset)", held_out)
        for preset in list_presets():
            if preset != "ukb":
                run(f"preset {preset}", simulate_cohort(preset, n=args.n, seed=99).records())
        for snr in (12.0, 6.0, 0.0, -6.0):
            run(f"ukb held out, SNR {snr:g} dB", simulate_cohort("ukb", n=args.n, seed=99, snr_db=snr).records())
        run("ukb held out, LA/RA reversed", (e.__class__(reverse_limb_electrodes(e.signal, "LA/RA"), e.fs, e.leads)
                                             for e in held_out))
        for group, ecgs in real_records():
            run(group, ecgs)
    out = ROOT / "benchmarks" / "results" / "ood_refusals.csv"
    pd.DataFrame(rows).to_csv(out, index=False, float_format="%.4g")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
