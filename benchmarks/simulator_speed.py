"""Print the simulator's speed: 12-lead ECGs rendered per second on one core, and files written per second.

    python benchmarks/simulator_speed.py [--n 4096]

Target (issue 2): >= 1,000 ECGs/s per core for 12-lead, 10 s, 500 Hz (rendering, noise and digitising).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from threadpoolctl import threadpool_limits

from ecgscope.simulate import simulate_cohort
from ecgscope.simulate.export import write_cohort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4096, help="ECGs to render")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    cohort = simulate_cohort("ukb", n=args.n, seed=0)
    list(cohort.iter_batches(0, 256))  # warm-up
    rates = []
    with threadpool_limits(1):  # one core: BLAS and friends single-threaded
        for _ in range(args.repeats):
            start = time.perf_counter()
            for _batch in cohort.iter_batches():
                pass
            rates.append(args.n / (time.perf_counter() - start))
    print(f"render, 12-lead 10 s 500 Hz, one core: {np.median(rates):,.0f} ECGs/s "
          f"(best {max(rates):,.0f}; target >= 1,000)")

    small = simulate_cohort("ukb", n=min(args.n, 1024), seed=0)
    for workers in (1, os.cpu_count() or 1):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            write_cohort(small, f"{tmp}/out", formats=("wfdb",), progress=False, workers=workers)
            elapsed = time.perf_counter() - start
        rate = len(small) / elapsed
        print(f"simulate + write WFDB (500 Hz and 100 Hz trees), {workers} worker(s): {rate:,.0f} ECGs/s")
    cohort15 = simulate_cohort("code15", n=min(args.n, 2048), seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_cohort(cohort15, f"{tmp}/out", progress=False, workers=1)
        elapsed = time.perf_counter() - start
    print(f"simulate + write CODE-15% HDF5 (400 Hz), 1 process: {len(cohort15) / elapsed:,.0f} ECGs/s")


if __name__ == "__main__":
    main()
