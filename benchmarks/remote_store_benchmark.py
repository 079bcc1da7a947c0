"""Read throughput of the store layout through fsspec: local disk against an S3-compatible server.

    python benchmarks/remote_store_benchmark.py [--n 2048] [--latency-ms 30] [--mb-per-s 100]

Ingests ``--n`` simulated CODE-15%-like ECGs (500 Hz, 10 s, float16, 512 per part) into a local store and the
same into ``s3://`` on moto's server on loopback, then reads them four ways:

- local random: ``Store.read`` of random rows from disk (what training does on a local store);
- S3 ranged random: h5py on an fsspec file object, random rows (each a ranged GET: how HDF5 reads remotely);
- S3 part-sequential: ``Store.read`` in storage order (each part downloaded once, whole);
- S3 part-blocked: ``Store.read`` in :class:`PartBlockSampler`'s training order (what ``auto`` uses remotely).

moto answers each request in Python, so its per-request time (printed) is its own, not S3's. The script
therefore also counts the requests and bytes per ECG of each remote way and prints the rate one reader would
get from an object store with ``--latency-ms`` per request and ``--mb-per-s`` per stream (time per ECG =
requests x latency + MB / bandwidth): an estimate from measured counts and stated assumptions, not a
measurement of S3. Results go to ``benchmarks/results/remote_store.csv``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.objectstore import S3Server  # noqa: E402

from ecgscope.simulate import simulate_cohort  # noqa: E402
from ecgscope.simulate.export import write_cohort  # noqa: E402
from ecgscope.store import Store, ingest  # noqa: E402
from ecgscope.store.layout import _remote_part  # noqa: E402
from ecgscope.train.datamodule import PartBlockSampler  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "remote_store.csv"


class _RequestCounter:
    """Counts the ranged GETs and bytes s3fs makes (every remote read goes through ``_fetch_range`` or
    ``cat_file``)."""

    def __init__(self):
        import s3fs.core

        self.requests = self.bytes = 0
        real_fetch, real_cat = s3fs.core.S3File._fetch_range, s3fs.core.S3FileSystem._cat_file
        counter = self

        def fetch(self, start, end):
            data = real_fetch(self, start, end)
            counter.requests, counter.bytes = counter.requests + 1, counter.bytes + len(data)
            return data

        async def cat(self, path, *args, **kwargs):
            data = await real_cat(self, path, *args, **kwargs)
            counter.requests, counter.bytes = counter.requests + 1, counter.bytes + len(data)
            return data

        s3fs.core.S3File._fetch_range, s3fs.core.S3FileSystem._cat_file = fetch, cat

    def reset(self) -> None:
        self.requests = self.bytes = 0


def _timed(read, rows) -> float:
    start = time.perf_counter()
    for row in rows:
        read(int(row))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2048, help="ECGs in the store")
    parser.add_argument("--reads", type=int, default=400, help="random reads per random way")
    parser.add_argument("--latency-ms", type=float, default=30.0, help="assumed per-request latency of a real "
                                                                        "object store, for the estimate")
    parser.add_argument("--mb-per-s", type=float, default=100.0, help="assumed bandwidth of one read stream")
    args = parser.parse_args()
    server = S3Server()
    import os

    os.environ.update(server.env)
    import s3fs

    counter = _RequestCounter()  # before any filesystem object exists: each binds its methods when made
    s3fs.S3FileSystem.clear_instance_cache()
    s3 = s3fs.S3FileSystem()
    s3.mkdir("bench")
    rows_out = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            sim = write_cohort(simulate_cohort("code15", n=args.n, seed=3), tmp / "sim", formats=("wfdb",),
                               progress=False)
            ingest([sim / "wfdb"], tmp / "store", progress=False, identifiers="keep")
            ingest([sim / "wfdb"], "s3://bench/store", progress=False, identifiers="keep")
            local, remote = Store(tmp / "store"), Store("s3://bench/store")
            n = len(local)
            mb_per_ecg = local.read(0).astype(np.float16).nbytes / 1e6
            rng = np.random.default_rng(0)
            random_rows = rng.integers(0, n, args.reads)

            def record(way: str, seconds: float, count: int, requests: int, nbytes: int) -> None:
                rate = count / seconds
                per_ecg = requests / count
                estimate = count / (requests * args.latency_ms / 1e3 + nbytes / 1e6 / args.mb_per_s) if requests \
                    else rate
                rows_out.append({"way": way, "ecgs": count, "ecgs_per_s": round(rate, 1),
                                 "requests_per_ecg": round(per_ecg, 3),
                                 "mb_per_ecg_read": round(nbytes / count / 1e6, 3),
                                 f"ecgs_per_s_at_{args.latency_ms:g}ms_{args.mb_per_s:g}MBps": round(estimate, 1)})
                print(f"{way:<22} {rate:10,.0f} ECG/s  {per_ecg:7.3f} requests/ECG  "
                      f"{nbytes / count / 1e6:6.3f} MB read/ECG  -> {estimate:10,.1f} ECG/s at "
                      f"{args.latency_ms:g} ms per request and {args.mb_per_s:g} MB/s")

            counter.reset()
            start = time.perf_counter()
            for _ in range(20):
                s3.cat_file("bench/store/store.json")
            print(f"moto on loopback: {(time.perf_counter() - start) / 20 * 1e3:.1f} ms per small GET "
                  f"({counter.requests} requests counted for 20)")
            local.read(0)
            record("local random", _timed(local.read, random_rows), len(random_rows), 0, 0)

            url = remote.waveform_path(1)
            counter.reset()
            start = time.perf_counter()
            with s3.open(url, "rb", block_size=int(mb_per_ecg * 1e6), cache_type="readahead") as f, \
                    h5py.File(f, "r") as h5:
                signal = h5["signal"]
                part_rows = rng.integers(0, signal.shape[0], args.reads)
                for row in part_rows:
                    signal[int(row)]
            record("s3 ranged random", time.perf_counter() - start, len(part_rows), counter.requests, counter.bytes)

            _remote_part.cache_clear()
            counter.reset()
            record("s3 part-sequential", _timed(remote.read, np.arange(n)), n, counter.requests, counter.bytes)

            _remote_part.cache_clear()
            counter.reset()
            sampler = PartBlockSampler(remote.part_of(np.arange(n)), seed=0, shuffle=True, batch_size=64)
            order = [i for i, _ in sampler]
            record("s3 part-blocked", _timed(remote.read, order), len(order), counter.requests, counter.bytes)

            _remote_part.cache_clear()
            counter.reset()
            few = random_rows[:20]  # every read can miss the cache and fetch a whole part: only a few
            record("s3 whole-part random", _timed(remote.read, few), len(few), counter.requests, counter.bytes)
            print(f"{n:,} ECGs in {len(remote.location.parts('waveforms', '.h5'))} parts of up to 512; "
                  f"{mb_per_ecg:.3f} MB per ECG")
    finally:
        server.stop()
    RESULTS.parent.mkdir(exist_ok=True)
    pd.DataFrame(rows_out).to_csv(RESULTS, index=False)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
