"""Print the store's figures: ingest rate on 1 and 2 workers, random reads against WFDB, peak memory.

    python benchmarks/store_benchmark.py [--n 2000] [--big 12000]

Targets (issue 3): ingest close to linear in workers; random record reads at least 10x faster from the
store than from WFDB files; peak memory flat and under 2 GiB while ingesting a cohort whose waveforms
are larger than that (the default --big cohort holds about 2.9 GB of float32 signal).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import wfdb

from ecgscope.simulate import simulate_cohort
from ecgscope.simulate.export import write_cohort
from ecgscope.store import Store, ingest


def _peak_rss_gib_of(code: str) -> tuple[float, float]:
    """Run ``code`` in a fresh interpreter; return the peak resident memory (GiB) of it and of its largest
    worker process."""
    probe = (f"{code}\nimport resource\n"
             "me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
             "kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
             "print(me / 2**20, kids / 2**20)")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    parent, worker = out.stdout.strip().splitlines()[-1].split()
    return float(parent), float(worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="records for the rate and read benchmarks")
    parser.add_argument("--big", type=int, default=12000, help="records for the memory benchmark")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = write_cohort(simulate_cohort("hospital", n=args.n, seed=1), tmp / "sim", formats=("wfdb",),
                           progress=False)
        rates = {}
        for workers in (1, 2):
            start = time.perf_counter()
            ingest([src / "wfdb"], tmp / f"store{workers}", workers=workers, progress=False)
            rates[workers] = args.n / (time.perf_counter() - start)
            print(f"ingest PTB-XL tree (500 Hz), {workers} worker(s): {rates[workers]:,.0f} records/s")
        print(f"speed-up on 2 workers: {rates[2] / rates[1]:.2f}x (linear = 2.00x)")

        store = Store(tmp / "store2")
        rng = np.random.default_rng(0)
        rows = rng.integers(0, len(store), 500)
        store.read(0)
        start = time.perf_counter()
        for r in rows:
            store.read(int(r))
        t_store = (time.perf_counter() - start) / len(rows)
        paths = [str(src / "wfdb" / p) for p in store.manifest.source.str.split(":").str[1].to_numpy()[rows]]
        start = time.perf_counter()
        for p in paths:
            wfdb.rdrecord(p)
        t_wfdb = (time.perf_counter() - start) / len(rows)
        print(f"random record read: store {t_store * 1e3:.2f} ms, WFDB {t_wfdb * 1e3:.2f} ms "
              f"({t_wfdb / t_store:.1f}x faster; target >= 10x)")

        for n_big in (args.big // 4, args.big):  # two sizes: flat memory means the same peak for both
            big = write_cohort(simulate_cohort("code15", n=n_big, seed=2), tmp / f"big{n_big}", formats=("code15",),
                               progress=False)
            store_dir = tmp / f"bigstore{n_big}"
            parent, worker = _peak_rss_gib_of(f"from ecgscope.store import ingest; ingest([{str(big / 'code15')!r}], "
                                              f"{str(store_dir)!r}, workers=2, progress=False)")
            n_records = len(Store(store_dir))
            gib = n_records * 12 * 5000 * 4 / 2**30
            print(f"ingest {n_records:,} records ({gib:.1f} GiB as float32) on 2 workers: peak memory "
                  f"{parent:.2f} GiB main + {worker:.2f} GiB per worker = at most {parent + 2 * worker:.2f} GiB "
                  f"(target: flat, under 2 GiB)")
            shutil.rmtree(big)
            shutil.rmtree(store_dir)

if __name__ == "__main__":
    main()
