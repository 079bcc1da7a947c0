"""`ingest --engine ray` on a local two-CPU Ray cluster: the same store as the local engine, and a worker killed
in the middle of a task retried with nothing stored twice."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import ray
from typer.testing import CliRunner

from ecgscope.cli import app
from ecgscope.store import Store, ingest


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(hospital_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ray-inputs")
    shutil.copytree(hospital_dir / "wfdb" / "records500", folder / "records500")
    (folder / "records500" / "broken.hea").write_text("broken 12 500\n")  # a header without signal lines
    return folder


def _same_store(a: Path, b: Path) -> None:
    first, second = Store(a), Store(b)
    assert first.manifest.equals(second.manifest)
    assert first.quarantine.sort_values("source").reset_index(drop=True).equals(
        second.quarantine.sort_values("source").reset_index(drop=True))
    assert all(np.array_equal(first.read(i), second.read(i)) for i in range(len(first)))


def test_ray_ingest_gives_the_local_engines_store(cluster, inputs, tmp_path):
    runner = CliRunner()
    common = [str(inputs), "--fs", "100", "--keep-identifiers", "--workers", "2"]
    local = runner.invoke(app, ["ingest", *common, "--store", str(tmp_path / "local")])
    assert local.exit_code == 3, local.output  # the broken header is quarantined, the rest stored
    on_ray = runner.invoke(app, ["ingest", *common, "--store", str(tmp_path / "ray"), "--engine", "ray"])
    assert on_ray.exit_code == 3, on_ray.output
    _same_store(tmp_path / "local", tmp_path / "ray")
    assert len(Store(tmp_path / "ray").quarantine) == 1
    again = runner.invoke(app, ["ingest", *common, "--store", str(tmp_path / "ray"), "--engine", "ray"])
    assert "0 added" in again.output  # idempotent on Ray too


def _kill_first_batch_task(killed: list, deadline: float) -> None:
    """SIGKILL the first Ray worker seen building a batch (its process title names the task)."""
    while time.monotonic() < deadline and not killed:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                command = (proc / "cmdline").read_bytes().decode(errors="ignore")
            except OSError:
                continue
            if command.startswith("ray::_build_batch"):
                os.kill(int(proc.name), signal.SIGKILL)
                killed.append(int(proc.name))
                return
        time.sleep(0.002)


def test_a_killed_ray_worker_is_retried_and_nothing_is_stored_twice(cluster, inputs, tmp_path):
    ingest([inputs], tmp_path / "local", fs=500, workers=1, part_size=4, identifiers="keep", progress=False)
    killed: list[int] = []
    watcher = threading.Thread(target=_kill_first_batch_task, args=(killed, time.monotonic() + 120))
    watcher.start()
    report = ingest([inputs], tmp_path / "ray", fs=500, workers=2, part_size=4, identifiers="keep",
                    progress=False, engine="ray")
    watcher.join()
    assert killed, "no Ray worker was caught building a batch"
    assert report.added == len(Store(tmp_path / "local"))
    _same_store(tmp_path / "local", tmp_path / "ray")
    assert not list((tmp_path / "ray").rglob("*.partial"))


def test_ray_predict_equals_local_predict(cluster, small_model, tmp_path):
    store = small_model.parents[1] / "store"
    runner = CliRunner()
    for engine in ("local", "ray"):
        result = runner.invoke(app, ["predict", str(small_model), "--store", str(store), "--engine", engine,
                                     "--out", str(tmp_path / f"{engine}.parquet")])
        assert result.exit_code == 0, result.output
    import pandas as pd

    from ecgscope.train.predict import predict_store

    local, on_ray = pd.read_parquet(tmp_path / "local.parquet"), pd.read_parquet(tmp_path / "ray.parquet")
    assert len(local) == len(Store(store)) and local.equals(on_ray)
    shards = predict_store(small_model, store, engine="ray", shard_size=7, progress=False)  # many small shards
    pd.testing.assert_frame_equal(shards, local, check_exact=False, rtol=1e-6)


def test_ray_embed_equals_local_embed(cluster, small_model, tmp_path):
    import pandas as pd

    from ecgscope.foundation import embed_store, load_encoder

    store = small_model.parents[1] / "store"
    local = embed_store(load_encoder(small_model), store, tmp_path / "local.parquet", batch_size=16, progress=False)
    on_ray = embed_store(load_encoder(small_model), store, tmp_path / "ray.parquet", batch_size=16, progress=False,
                         engine="ray", shard_size=13)
    a, b = pd.read_parquet(local), pd.read_parquet(on_ray)
    assert len(a) == len(Store(store)) and list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-5, atol=1e-6)


def test_ray_motion_generation_equals_local(cluster, small_model, tmp_path):
    import pandas as pd
    import torch

    from ecgscope.motion.generate import generate_motion, save_generator
    from ecgscope.motion.generator import MotionGenerator
    from ecgscope.train import load_model

    store = small_model.parents[1] / "store"
    torch.manual_seed(0)
    generator = MotionGenerator("compact_cnn_tiny", n_points=48)
    info = {"encoder": "compact_cnn_tiny", "encoder_kwargs": generator.encoder_kwargs, "n_points": 48,
            "noise_dim": generator.noise_dim, "width": generator.width}
    model = save_generator(tmp_path / "generator", generator, load_model(small_model).pipeline, info)
    local = generate_motion(model, store, tmp_path / "local.parquet", progress=False)
    on_ray = generate_motion(model, store, tmp_path / "ray.parquet", progress=False, engine="ray", shard_size=11)
    assert len(local) == len(Store(store))
    pd.testing.assert_frame_equal(local, on_ray, check_exact=False, rtol=1e-5, atol=1e-5)
    a, b = pd.read_parquet(tmp_path / "local.parquet"), pd.read_parquet(tmp_path / "ray.parquet")
    assert np.allclose(np.stack(a["tdi_velocity_cm_s"]), np.stack(b["tdi_velocity_cm_s"]), atol=1e-4)
