"""Kill a long job with SIGKILL at a random moment, run it again, and compare with an uninterrupted run.

Each job runs in its own process and prints ``ready`` once its imports are done; the kill lands a random
fraction of the way through the work that follows (the fraction drawn from a seed). The rerun is the same
command (ingest resumes by itself; training and pretraining are given ``resume=True`` every time, which on a
fresh folder simply starts). Used by tests/test_kill_anywhere.py (a few seeds) and
benchmarks/kill_anywhere.py (many).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

JOBS = {
    "ingest": """
from ecgscope.store import ingest
print("ready", flush=True)
ingest([ARGS["source"]], ARGS["out"], fs=100, rate=100, workers=1, part_size=4, identifiers="keep", progress=False)
""",
    "train": """
from ecgscope.config import RunConfig
from ecgscope.train.run import train_from_config
cfg = RunConfig.model_validate({
    "out": ARGS["out"], "data": {"store": ARGS["store"], "cohort": ARGS["cohort"], "regression": ["rvef"]},
    "model": {"name": "compact_cnn_tiny"}, "train": {"max_epochs": 2, "batch_size": 16}})
print("ready", flush=True)
train_from_config(cfg, resume=True, progress=False)
""",
    "pretrain": """
from ecgscope.foundation import pretrain_encoder
print("ready", flush=True)
pretrain_encoder(ARGS["store"], ARGS["out"], model="compact_cnn_tiny", epochs=2, batch_size=8, view_s=4.0,
                 resume=True, progress=False)
""",
    "embed": """
from ecgscope.foundation import embed_store, load_encoder
encoder = load_encoder(ARGS["model"])
print("ready", flush=True)
embed_store(encoder, ARGS["store"], ARGS["out"], batch_size=8)
""",
}


def _command(job: str, args: dict) -> list[str]:
    code = f"import json, sys\nARGS = json.loads(sys.argv[1])\n{JOBS[job]}"
    return [sys.executable, "-c", code, json.dumps({k: str(v) for k, v in args.items()})]


def run(job: str, args: dict, kill_fraction: float | None = None, work_s: float | None = None) -> float:
    """Run ``job``; with ``kill_fraction``, SIGKILL it that fraction of ``work_s`` after it is ready.
    Returns the seconds from ready to exit (or kill)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(_command(job, args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.wait()
        raise RuntimeError(f"{job} did not start: {proc.stderr.read()[-2000:]}")
    started = time.perf_counter()
    if kill_fraction is None:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{job} failed: {err[-2000:]}")
        return time.perf_counter() - started
    try:
        proc.wait(timeout=kill_fraction * work_s)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    return time.perf_counter() - started


def result(job: str, out: Path) -> dict:
    """What a finished job made, as comparable arrays and tables."""
    out = Path(out)
    if job == "ingest":
        from ecgscope.store import Store

        store = Store(out)
        return {"manifest": store.manifest.reset_index(drop=True), "quarantine": store.quarantine,
                "signals": np.stack([store.read(r) for r in range(len(store))])}
    if job == "embed":
        return {"embeddings": pd.read_parquet(out)}
    from safetensors.numpy import load_file

    found = {f"weight:{k}": v for k, v in load_file(str(out / "model" / "weights.safetensors")).items()}
    if job == "train":
        found["test_metrics"] = pd.Series(json.loads((out / "test_metrics.json").read_text()))
    return found


def assert_same(clean: dict, other: dict) -> None:
    """Equal tables, equal arrays (weights to float32 round-off of a resumed optimiser)."""
    assert clean.keys() == other.keys()
    for key, value in clean.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, other[key])
        elif isinstance(value, pd.Series):
            pd.testing.assert_series_equal(value, other[key], rtol=1e-6)
        else:
            np.testing.assert_allclose(value, other[key], rtol=1e-6, atol=1e-7, err_msg=key)


def kill_and_compare(job: str, args: dict, clean_out: Path, killed_out: Path, seed: int, work_s: float) -> float:
    """Kill a run into ``killed_out`` at a seeded random point, finish it, compare with ``clean_out``; return
    the kill point as a fraction of the work."""
    fraction = float(np.random.default_rng(seed).uniform(0.02, 0.98))
    run(job, {**args, "out": killed_out}, kill_fraction=fraction, work_s=work_s)
    run(job, {**args, "out": killed_out})
    assert_same(result(job, clean_out), result(job, killed_out))
    return fraction
