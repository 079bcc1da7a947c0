"""What glibc's allocator costs a CPU training step, with and without ``reuse_freed_memory``.

    python benchmarks/alloc_benchmark.py [--runs 3] [--steps 40] [--batch-size 64]

Each run is a fresh process (the allocator setting cannot be undone) training the default model on random
batches for ``steps`` steps on one thread, after three warm-up steps; it reports the wall time, user and
system CPU time and minor page faults per step, and a checksum of the weights at the end (equal in both
settings: the allocator does not touch the numbers). Runs alternate between the two settings.

Results: benchmarks/results/alloc_benchmark.csv.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).parent / "results" / "alloc_benchmark.csv"

STEP_RUN = """
import json, resource, sys, time
import torch
from ecgscope.config import DEFAULT_MODEL
from ecgscope.models import create_model
from ecgscope.train.trainer import reuse_freed_memory
reuse = sys.argv[1] == "1"
taken = reuse_freed_memory() if reuse else False
torch.set_num_threads(1)
torch.manual_seed(0)
model = create_model(DEFAULT_MODEL, num_outputs=6)
opt = torch.optim.Adam(model.parameters(), 1e-3)
g = torch.Generator().manual_seed(1)
batches = [torch.randn(int(sys.argv[3]), 12, 1000, generator=g) for _ in range(4)]
def step(i):
    opt.zero_grad()
    model(batches[i % 4]).pow(2).mean().backward()
    opt.step()
for i in range(3):
    step(i)
steps = int(sys.argv[2])
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
for i in range(steps):
    step(i)
r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
checksum = float(sum(p.double().sum() for p in model.parameters()))
print(json.dumps({"reuse_freed_memory": reuse, "glibc_took_it": taken, "ms_per_step": (t1 - t0) / steps * 1e3,
                  "user_ms_per_step": (r1.ru_utime - r0.ru_utime) / steps * 1e3,
                  "system_ms_per_step": (r1.ru_stime - r0.ru_stime) / steps * 1e3,
                  "minor_faults_per_step": (r1.ru_minflt - r0.ru_minflt) / steps, "weights_checksum": checksum}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    rows = []
    for run in range(args.runs):
        for reuse in (0, 1):
            out = subprocess.run([sys.executable, "-c", STEP_RUN, str(reuse), str(args.steps), str(args.batch_size)],
                                 check=True, capture_output=True, text=True, env={"OMP_NUM_THREADS": "1",
                                                                                  **_env()}).stdout
            rows.append({"run": run, **json.loads(out.strip().splitlines()[-1])})
            print(rows[-1])
    table = pd.DataFrame(rows)
    RESULTS.parent.mkdir(exist_ok=True)
    table.to_csv(RESULTS, index=False)
    summary = table.groupby("reuse_freed_memory")[["ms_per_step", "user_ms_per_step", "system_ms_per_step",
                                                   "minor_faults_per_step"]].median()
    print(summary.round(1).to_string())
    cpu = summary["user_ms_per_step"] + summary["system_ms_per_step"]
    print(f"CPU time per step: {cpu[False]:.1f} ms by default, {cpu[True]:.1f} ms reusing freed memory "
          f"({1 - cpu[True] / cpu[False]:.1%} less); weights equal: {table.weights_checksum.nunique() == 1}")


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}


if __name__ == "__main__":
    main()
