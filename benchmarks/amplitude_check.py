"""The gain rule of ``io.base.check_amplitude``: false alarms on real and simulated ECGs, and how many gains
off by 10x (either way) it catches.

The rules (``check_amplitude``): no sample beyond ``MAX_SAMPLE_MV``, the 99.9th percentile of |x| under
``MAX_PLAUSIBLE_MV``, and the median over leads of each lead's robust peak-to-peak (0.5th-99.5th percentile)
in ``GAIN_P2P_MV``. A record is "caught" at a 10x gain error when the scaled record breaks a rule.

    python benchmarks/amplitude_check.py   # prints the table; writes benchmarks/results/amplitude_check.csv
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pandas as pd

from ecgscope import io
from ecgscope.errors import InvalidRecord
from ecgscope.io import base
from ecgscope.io.base import GAIN_P2P_MV, MAX_PLAUSIBLE_MV, MAX_SAMPLE_MV, check_amplitude, typical_p2p_mv
from ecgscope.simulate import list_presets, simulate_cohort

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RESULTS = Path(__file__).parent / "results" / "amplitude_check.csv"


def breaks_rule(signal: np.ndarray) -> bool:
    """Whether ``signal`` (leads x samples, mV) fails the amplitude rules."""
    try:
        check_amplitude(signal, "benchmark")
    except InvalidRecord:
        return True
    return False


def real_records() -> list[np.ndarray]:
    """Every record of ../shared/data read without the amplitude rule (it is what is measured)."""
    base.check_amplitude = lambda signal, where: None  # read every record; the rule is applied below
    sources = [io.Source("wfdb", h[:-4]) for h in sorted(glob.glob(str(SHARED / "**" / "*.hea"), recursive=True))]
    sources += list(io.discover(SHARED / "code15"))
    signals = []
    for source in sources:
        try:
            signals.append(io.load(source).signal)
        except InvalidRecord:
            continue  # rejected for another reason (flat leads): not this rule's record
    return signals


def main() -> None:
    groups = {"real (../shared/data)": real_records()}
    for preset in list_presets():
        cohort = simulate_cohort(preset, n=300, seed=3)
        groups[f"simulated {preset}"] = [ecg.signal for ecg in cohort.records()]
    rows = []
    for name, signals in groups.items():
        p2p = np.array([typical_p2p_mv(s) for s in signals])
        rows.append({"records": name, "n": len(signals), "p2p_min_mv": p2p.min(), "p2p_median_mv": np.median(p2p),
                     "p2p_max_mv": p2p.max(),
                     "false_alarms": float(np.mean([breaks_rule(s) for s in signals])),
                     "caught_gain_x10": float(np.mean([breaks_rule(s * 10) for s in signals])),
                     "caught_gain_x0.1": float(np.mean([breaks_rule(s / 10) for s in signals]))})
    table = pd.DataFrame(rows)
    RESULTS.parent.mkdir(exist_ok=True)
    table.to_csv(RESULTS, index=False, float_format="%.3f")
    print(f"rules: every |x| <= {MAX_SAMPLE_MV:g} mV, |x| 99.9th percentile <= {MAX_PLAUSIBLE_MV:g} mV, median lead "
          f"peak-to-peak in {GAIN_P2P_MV} mV")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
