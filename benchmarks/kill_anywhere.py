"""Kill anywhere, many seeds: ingest, training, pretraining and embedding killed with SIGKILL at random points,
run again, and compared with an uninterrupted run (tests/killing.py; the test suite runs a few seeds).

    python benchmarks/kill_anywhere.py [--seeds 10]
    # prints one row per job; writes benchmarks/results/kill_anywhere.csv
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the kill harness

from tests import killing  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "kill_anywhere.csv"


def _inputs(root: Path) -> dict[str, dict]:
    """A simulated hospital cohort as WFDB, its store and a paired cohort table."""
    from ecgscope.cohort import derive_labels, link_imaging, patient_split
    from ecgscope.simulate import simulate_cohort
    from ecgscope.simulate.export import write_cohort
    from ecgscope.store import Store, ingest

    sim = write_cohort(simulate_cohort("hospital", n=60, seed=11), root / "sim", formats=("wfdb",), progress=False)
    ingest([sim / "wfdb"], root / "store", fs=100, rate=100, workers=1, identifiers="keep", progress=False)
    pairs = derive_labels(link_imaging(Store(root / "store").manifest, sim / "measurements" / "mri.parquet",
                                       days_before=90, days_after=90), [])
    pairs["split"] = patient_split(pairs, (0.6, 0.2, 0.2), seed=0)
    pairs.to_parquet(root / "cohort.parquet")
    return {"ingest": {"source": sim / "wfdb"}, "train": {"store": root / "store", "cohort": root / "cohort.parquet"},
            "pretrain": {"store": root / "store"},
            "embed": {"store": root / "store", "model": root / "pretrain" / "clean" / "model"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ecgscope-kill-") as tmp:
        root = Path(tmp)
        inputs = _inputs(root)
        for index, job in enumerate(("ingest", "train", "pretrain", "embed")):
            folder = root / job
            work_s = killing.run(job, {**inputs[job], "out": folder / "clean"})
            same, fractions, started = 0, [], time.perf_counter()
            for seed in range(100 * index, 100 * index + args.seeds):  # other kill points for each job
                try:
                    fractions.append(killing.kill_and_compare(job, inputs[job], folder / "clean",
                                                              folder / f"killed_{seed}", seed, work_s))
                    left = list((folder / f"killed_{seed}" if job != "embed" else folder).rglob("*.partial"))
                    same += not left
                except AssertionError as exc:
                    print(f"  {job} seed {seed}: differs: {str(exc)[:200]}")
            rows.append({"job": job, "kills": args.seeds, "identical_to_uninterrupted": same,
                         "kill_points": ", ".join(f"{f:.2f}" for f in sorted(fractions)),
                         "uninterrupted_work_s": round(work_s, 1),
                         "seconds": round(time.perf_counter() - started)})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    RESULTS.parent.mkdir(exist_ok=True)
    table.to_csv(RESULTS, index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
