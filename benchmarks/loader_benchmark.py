"""Does the data loader keep up? Loader ECGs/s from a store beside training-step ECGs/s.

    python benchmarks/loader_benchmark.py [--n 1024] [--batch-size 64] [--workers 0,2,4] [--steps 10]

The loader row reads ``n`` ECGs of a simulated store through a model's input contract with the training
augmentations, as ``ecgscope train`` does (``make_loader``: persistent workers, pinned memory on a GPU), and
times the second pass (the first pays for starting workers). The step row times forward, backward and an
AdamW step on batches already in memory, on the GPU with bf16 autocast when there is one; for the default
model a third row times training fed by the loader (0, 1 and the default number of workers). Two models:
the default (``net1d_small``, 100 Hz x 10 s, ecgscope's own contract) and ``net1d_ecgfounder`` with
ECGFounder's contract (500 Hz x 10 s, notch, band-pass, median baseline, z-score), from a 500 Hz store.
The loader keeps up when its ECGs/s at the default worker count is above the step's.

Results: benchmarks/results/loader_throughput.csv.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ecgscope.config import DEFAULT_MODEL, AugmentConfig
from ecgscope.contract import StoreInput
from ecgscope.models import create_model
from ecgscope.signal import ECGFOUNDER_PIPELINE, default_pipeline
from ecgscope.simulate import simulate_cohort
from ecgscope.simulate.export import write_cohort
from ecgscope.store import Store, ingest
from ecgscope.train.datamodule import EpochSeededSampler, StoreDataset, loader_workers, make_loader
from ecgscope.train.module import select_device

RESULTS = Path(__file__).parent / "results"


def loader_rate(source: StoreInput, n: int, batch_size: int, workers: int) -> float:
    """ECGs/s of the second pass of a training loader with augmentation."""
    rows = np.arange(n) % len(source.store)
    data = StoreDataset(source, rows, np.zeros((n, 1), np.float32), AugmentConfig(), seed=0)
    sampler = EpochSeededSampler(n, 0, shuffle=True)
    loader = make_loader(data, batch_size, sampler, workers)
    for _ in loader:  # first pass: workers start, page cache warms
        pass
    sampler.set_epoch(1)
    start = time.perf_counter()
    for _ in loader:
        pass
    return n / (time.perf_counter() - start)


def training_step(name: str):
    """A function doing forward + backward + AdamW on one batch (mixed precision on a GPU), and its device."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = create_model(name, num_outputs=4).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    dtype = torch.bfloat16 if select_device()[1].startswith("bf16") else torch.float16

    def step(x: torch.Tensor) -> None:
        x = x.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"):
            loss = model(x).float().square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_rate(name: str, shape: tuple[int, int], batch_size: int, steps: int) -> float:
    """ECGs/s of training steps on a batch already in memory."""
    step, device = training_step(name)
    x = torch.randn(batch_size, *shape, device=device)
    for _ in range(2):
        step(x)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step(x)
    _sync(device)
    return steps * batch_size / (time.perf_counter() - start)


def end_to_end_rate(name: str, source: StoreInput, n: int, batch_size: int, workers: int) -> float:
    """ECGs/s of a training pass fed by the loader: what a run actually gets (second pass timed)."""
    step, device = training_step(name)
    rows = np.arange(n) % len(source.store)
    sampler = EpochSeededSampler(n, 0, shuffle=True)
    loader = make_loader(StoreDataset(source, rows, np.zeros((n, 1), np.float32), AugmentConfig(), seed=0),
                         batch_size, sampler, workers)
    for x, _ in loader:
        step(x)
    sampler.set_epoch(1)
    _sync(device)
    start = time.perf_counter()
    for x, _ in loader:
        step(x)
    _sync(device)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024, help="ECGs per timed loader pass")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", default="0,2,4", help="loader worker counts to time")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per model")
    parser.add_argument("--out", type=Path, default=RESULTS / "loader_throughput.csv")
    args = parser.parse_args()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = write_cohort(simulate_cohort("ukb", n=256, seed=0), Path(tmp) / "sim", formats=("wfdb",),
                             progress=False)
        setups = {DEFAULT_MODEL: (100, default_pipeline(100.0, 1000)), "net1d_ecgfounder": (500, ECGFOUNDER_PIPELINE)}
        for model, (fs, pipeline) in setups.items():
            ingest([files / "wfdb"], Path(tmp) / f"store{fs}", fs=fs, rate=fs, identifiers="keep", progress=False)
            source = StoreInput(pipeline, Store(Path(tmp) / f"store{fs}"), model=model)
            step = step_rate(model, (len(pipeline.leads), pipeline.n_samples), args.batch_size, args.steps)
            rows.append({"device": device, "model": model, "stage": "training step", "workers": "-",
                         "ecgs_per_s": round(step, 1)})
            print(rows[-1], flush=True)
            for workers in (int(w) for w in args.workers.split(",")):
                rate = loader_rate(source, args.n, args.batch_size, workers)
                rows.append({"device": device, "model": model, "stage": f"loader ({pipeline.fs:g} Hz, augmented)",
                             "workers": workers, "ecgs_per_s": round(rate, 1)})
                print(rows[-1], flush=True)
            if model == DEFAULT_MODEL:
                for workers in sorted({0, 1, loader_workers()}):
                    rate = end_to_end_rate(model, source, args.n, args.batch_size, workers)
                    rows.append({"device": device, "model": model, "stage": "training fed by the loader",
                                 "workers": workers, "ecgs_per_s": round(rate, 1)})
                    print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    args.out.parent.mkdir(exist_ok=True)
    table.to_csv(args.out, index=False)
    print(table.to_string(index=False))
    default = loader_workers()
    for model in setups:
        step = table[(table.model == model) & (table.stage == "training step")]["ecgs_per_s"].iloc[0]
        loaders = table[(table.model == model) & table.stage.str.startswith("loader")]
        at_default = loaders[loaders.workers == default]["ecgs_per_s"]
        if len(at_default):
            verdict = "keeps up" if at_default.iloc[0] >= step else "is the bottleneck"
            print(f"{model}: loader at the default {default} worker(s) {at_default.iloc[0]:.0f} ECGs/s, training "
                  f"step {step:.0f} ECGs/s: the loader {verdict}")


if __name__ == "__main__":
    main()
