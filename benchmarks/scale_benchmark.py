"""A large run, measured: a CODE-15%-like cohort simulated, ingested (local engine and Ray) and one training epoch
streamed from the store, with the throughput of each stage and the peak memory of every process.

Each stage runs in a fresh process, and a sampler reads the resident memory of that process and of every
process below it (pool workers; Ray's raylet and workers) from /proc every 0.2 s, so the peaks are per stage.
The sampler also fits a line to the main process's memory over the middle 80 % of the stage (throughput is
steady there, so time stands for ECGs done): the growth per ECG within one run, apart from the one-off costs
at the start and the end (imports, pools, Arrow's first use) that make up most of a peak. Run it at two sizes
to see whether memory stays flat in the cohort size:

    python benchmarks/scale_benchmark.py --n 10000
    python benchmarks/scale_benchmark.py --n 100000 --keep /big/disk/scale   # ~30 GB of files at 100,000

Prints one row per stage and appends them to benchmarks/results/scale_benchmark.csv.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc's parent links)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += children.get(current, [])
    return out


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class MemorySampler(threading.Thread):
    """Peak resident memory of this process, of the largest other process below it, and of all together."""

    def __init__(self, every_s: float = 0.2):
        super().__init__(daemon=True)
        self.every_s, self.stop, self.me = every_s, threading.Event(), os.getpid()
        self.main = self.worker = self.total = 0.0
        self.trace: list[tuple[float, float]] = []  # (seconds, main process MiB)

    def run(self) -> None:
        started = time.perf_counter()
        while not self.stop.is_set():
            sizes = {pid: _rss_mib(pid) for pid in _descendants(self.me)}
            self.trace.append((time.perf_counter() - started, sizes.get(self.me, 0.0)))
            self.main = max(self.main, sizes.get(self.me, 0.0))
            self.worker = max([self.worker, *(v for p, v in sizes.items() if p != self.me)])
            self.total = max(self.total, sum(sizes.values()))
            self.stop.wait(self.every_s)

    def steady_growth_kib(self, ecgs: int) -> float:
        """Main-process growth per ECG (KiB) from a line fitted over the middle 80 % of the stage."""
        t, mib = np.array(self.trace).T
        middle = (t >= 0.1 * t[-1]) & (t <= 0.9 * t[-1])
        if middle.sum() < 3 or ecgs == 0:
            return float("nan")
        per_second = np.polyfit(t[middle], mib[middle], 1)[0]
        return per_second * t[-1] / ecgs * 1024


def _stage(name: str, work, queue) -> None:
    sampler = MemorySampler()
    sampler.start()
    started = time.perf_counter()
    count = work()
    seconds = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    queue.put({"stage": name, "ecgs": count, "seconds": seconds, "ecgs_per_s": count / seconds,
               "peak_main_mib": sampler.main, "peak_largest_worker_mib": sampler.worker,
               "peak_all_processes_mib": sampler.total, "main_steady_growth_kib_per_ecg":
                   sampler.steady_growth_kib(count)})


def run_stage(name: str, work) -> dict:
    """Run ``work`` (returns how many ECGs it handled) in a fresh process under the memory sampler."""
    queue = mp.get_context("fork").Queue()
    process = mp.get_context("fork").Process(target=_stage, args=(name, work, queue))
    process.start()
    row = queue.get()
    process.join()
    print(f"{name:28s} {row['ecgs']:8,d} ECGs {row['seconds']:8.1f} s {row['ecgs_per_s']:8.1f} ECG/s  peak RSS: main "
          f"{row['peak_main_mib']:7.0f} MiB, largest worker {row['peak_largest_worker_mib']:7.0f} MiB, all "
          f"{row['peak_all_processes_mib']:7.0f} MiB; main grows {row['main_steady_growth_kib_per_ecg']:.2f} KiB "
          "per ECG in the steady part", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="ECGs (about; the preset draws 1.5 per patient)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--store-fs", type=float, default=100.0, help="the store's rate (the model's contract)")
    parser.add_argument("--engines", default="local,ray")
    parser.add_argument("--keep", type=Path, default=None, help="a folder to keep the files in (default: temporary)")
    parser.add_argument("--reuse", action="store_true", help="with --keep: the folder already holds code15/ and "
                                                              "patients.parquet from an earlier run; skip simulating")
    parser.add_argument("--stages", default="simulate,ingest,train", help="which stages to run (with --reuse, "
                                                                           "ingest and train reuse kept files)")
    args = parser.parse_args()
    stages = set(args.stages.split(","))
    root = args.keep or Path(tempfile.mkdtemp(prefix="ecgscope-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    rows = []

    def simulate() -> int:
        from ecgscope.simulate import simulate_cohort
        from ecgscope.simulate.export import write_cohort

        cohort = simulate_cohort("code15", n=int(args.n / 1.5), seed=0)
        write_cohort(cohort, root / "code15", formats=("code15",), overwrite=True, workers=args.workers,
                     progress=False)
        cohort.patients.to_parquet(root / "patients.parquet")
        return len(cohort)

    if not args.reuse and "simulate" in stages:
        rows.append(run_stage("simulate + write CODE-15%", simulate))
    for engine in args.engines.split(",") if "ingest" in stages else []:
        def ingest_with(engine=engine) -> int:
            from ecgscope.store import ingest

            shutil.rmtree(root / f"store_{engine}", ignore_errors=True)
            return ingest([root / "code15"], root / f"store_{engine}", fs=args.store_fs, workers=args.workers,
                          identifiers="keep", engine=engine, progress=False).added

        rows.append(run_stage(f"ingest ({engine})", ingest_with))

    def train_one_epoch() -> int:
        import lightning as L

        from ecgscope.cohort import patient_split
        from ecgscope.config import RunConfig
        from ecgscope.store import Store
        from ecgscope.train.run import train_from_config

        store = Store(root / f"store_{args.engines.split(',')[0]}")
        patients = pd.read_parquet(root / "patients.parquet")[["patient_id", "hf_death"]]
        cohort = store.manifest[["ecg_id", "patient_id"]].assign(ecg_row=np.arange(len(store)))
        cohort = cohort.merge(patients.astype({"patient_id": str}), on="patient_id")
        cohort["hf_death"] = cohort["hf_death"].astype(float)
        cohort["split"] = patient_split(cohort, (0.9, 0.05, 0.05), seed=0)
        cohort.to_parquet(root / "cohort.parquet")
        timing = {}

        class EpochClock(L.Callback):
            def on_train_epoch_start(self, trainer, module):
                timing["start"] = time.perf_counter()

            def on_train_epoch_end(self, trainer, module):
                timing["seconds"] = time.perf_counter() - timing["start"]

        shutil.rmtree(root / "run", ignore_errors=True)
        cfg = RunConfig.model_validate({
            "out": str(root / "run"), "data": {"store": str(store.root), "cohort": str(root / "cohort.parquet"),
                                               "binary": ["hf_death"]},
            "train": {"max_epochs": 1, "batch_size": 64}})
        train_from_config(cfg, progress=False, callbacks=[EpochClock()])
        n_train = int((cohort["split"] == "train").sum())
        print(f"  the training epoch alone: {n_train:,} ECGs in {timing['seconds']:.1f} s "
              f"({n_train / timing['seconds']:.1f} ECG/s); the rest of the stage is validation, calibration, "
              "test predictions and the OOD reference", flush=True)
        return len(cohort)

    if "train" in stages:
        rows.append(run_stage("train 1 epoch + evaluate", train_one_epoch))
    table = pd.DataFrame(rows).assign(n_requested=args.n, workers=args.workers, store_fs=args.store_fs)
    out = ROOT / "benchmarks" / "results" / "scale_benchmark.csv"
    if out.exists():  # earlier rows keep their values; a column added since is empty for them
        table = pd.concat([pd.read_csv(out), table], ignore_index=True)
    table.to_csv(out, index=False, float_format="%.4g")
    sizes = {p.name: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) / 2**30
             for p in root.iterdir() if p.is_dir()}
    print("disk: " + ", ".join(f"{name} {gib:.2f} GiB" for name, gib in sorted(sizes.items())))
    print(f"appended to {out}")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
