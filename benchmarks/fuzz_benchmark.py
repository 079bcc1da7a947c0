"""Fuzz every reader with 10,000+ mutated files and print the outcomes by mutation kind.

Each variant (tests/fuzzing.py: byte flips, truncation, inserted bytes, edited fields, dropped parts,
odd file-system objects, across WFDB, GE MUSE, HL7 aECG, DICOM, CODE-15%, NumPy, CSV and Philips) goes
through ingest's per-file path in a worker process limited to 2 GiB of address space. Outcomes:

- stored: read and kept, and it keeps the store's promises;
- quarantined: refused with a reason (``reader error`` counts the unforeseen ones among them);
- not_ecg: counted as not an ECG file;
- escaped: an exception left the reader (must be 0);
- corrupt_stored: stored although it breaks a promise (must be 0);
- hang: no answer within the wall limit (must be 0); memory: the worker ran out of its 2 GiB (must be 0).

    python benchmarks/fuzz_benchmark.py [--n 10500] [--workers 2]
    # prints the table; writes benchmarks/results/fuzz_outcomes.csv and fuzz_failures.csv (the cases to keep)
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the mutation engine

from tests import fuzzing  # noqa: E402

RESULTS = Path(__file__).parent / "results"
MEMORY_BYTES = 2 * 2**30
WALL_LIMIT_S = 180
_ROOT: Path | None = None


def _init(root: str) -> None:
    global _ROOT
    _ROOT = Path(root)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def run_one(job: tuple[str, str, int]) -> dict:
    """Write one variant, run it, classify the outcome."""
    fmt, kind, seed = job
    folder = _ROOT / "variants" / f"{fmt}-{kind}-{seed}"
    row = {"format": fmt, "mutation": kind, "seed": seed, "outcome": "", "detail": ""}
    try:
        path = fuzzing.variant(folder, fmt, kind, seed)
    except Exception as exc:  # the mutation itself could not be written: not a reader outcome
        row.update(outcome="not_written", detail=f"{type(exc).__name__}: {exc}"[:200])
        return row
    try:
        results = fuzzing.outcome(path)
        kinds = [what for what, _ in results]
        detail = "; ".join(d for _, d in results)[:200]
        if "stored" in kinds:
            row["outcome"] = "stored"
        elif any(d.startswith("reader error") for _, d in results):
            row["outcome"] = "quarantined (reader error)"
        elif "quarantined" in kinds:
            row["outcome"] = "quarantined"
        else:
            row["outcome"] = "not_ecg"
        row["detail"] = detail
    except AssertionError as exc:
        row.update(outcome="corrupt_stored", detail=str(exc)[:300])
    except MemoryError:
        row.update(outcome="memory", detail="MemoryError")
    except Exception as exc:
        row.update(outcome="escaped", detail="".join(traceback.format_exception_only(exc)).strip()[:300])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_560, help="variants (spread evenly over formats x mutations)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    cells = [(f, k) for f in fuzzing.FORMATS for k in fuzzing.KINDS]
    per_cell = -(-args.n // len(cells))
    jobs = [(f, k, s) for s in range(per_cell) for f, k in cells]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ecgscope-fuzz-") as tmp:
        fuzzing.seeds(Path(tmp))
        pool = mp.get_context("fork").Pool(args.workers, initializer=_init, initargs=(tmp,), maxtasksperchild=500)
        pending = [(job, pool.apply_async(run_one, (job,))) for job in jobs]
        rows = []
        for k, (job, result) in enumerate(pending):
            try:
                rows.append(result.get(timeout=WALL_LIMIT_S))
            except mp.TimeoutError:
                rows.append({"format": job[0], "mutation": job[1], "seed": job[2], "outcome": "hang",
                             "detail": f"no answer in {WALL_LIMIT_S} s"})
            except Exception as exc:  # the worker died (out of memory, signal)
                rows.append({"format": job[0], "mutation": job[1], "seed": job[2], "outcome": "memory",
                             "detail": f"worker lost: {type(exc).__name__}: {exc}"[:200]})
            if (k + 1) % 1000 == 0:
                print(f"  {k + 1:,} / {len(jobs):,} variants, {time.perf_counter() - started:.0f} s", flush=True)
        pool.terminate()
    table = pd.DataFrame(rows)
    counts = table.pivot_table(index="mutation", columns="outcome", values="seed", aggfunc="count", fill_value=0)
    for column in ("escaped", "corrupt_stored", "hang", "memory"):
        if column not in counts.columns:
            counts[column] = 0
    counts.loc["all"] = counts.sum()
    RESULTS.mkdir(exist_ok=True)
    counts.reset_index().to_csv(RESULTS / "fuzz_outcomes.csv", index=False)
    failures = table[table.outcome.isin(["escaped", "corrupt_stored", "hang", "memory"])]
    failures.to_csv(RESULTS / "fuzz_failures.csv", index=False)
    reader_errors = table[table.outcome == "quarantined (reader error)"]
    print(f"{len(table):,} variants ({per_cell} per format x mutation) in {time.perf_counter() - started:.0f} s "
          f"on {args.workers} workers")
    print(counts.to_string())
    print(f"failures kept in {RESULTS / 'fuzz_failures.csv'}: {len(failures)}")
    if len(reader_errors):
        print("most frequent unforeseen reader errors:")
        print(reader_errors.detail.str.slice(0, 110).value_counts().head(8).to_string())


if __name__ == "__main__":
    main()
