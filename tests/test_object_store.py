"""Stores in object storage, against an S3-compatible server on loopback (moto's server mode): ingest to and
train from ``s3://`` give what local disk gives, and an upload killed before it completes leaves no part."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from ecgscope.cli import app
from ecgscope.config import RunConfig
from ecgscope.store import Store, ingest
from ecgscope.store.location import Location, LocationError
from ecgscope.train.run import train_from_config

from .service_model import build_cohort


def _same_store(a, b) -> None:
    first, second = Store(a), Store(b)
    pd.testing.assert_frame_equal(first.manifest, second.manifest)
    pd.testing.assert_frame_equal(*(s.quarantine.sort_values("source").reset_index(drop=True)
                                    if len(s.quarantine) else s.quarantine for s in (first, second)))
    assert all(np.array_equal(first.read(i), second.read(i)) for i in range(len(first)))


def test_ingest_to_s3_gives_the_local_store(s3_bucket, hospital_dir, tmp_path):
    src = hospital_dir / "wfdb" / "records500"
    broken = tmp_path / "inputs"
    broken.mkdir()
    (broken / "broken.hea").write_text("broken 12 500\n")
    runner = CliRunner()
    common = [str(src), str(broken), "--fs", "100", "--keep-identifiers", "--workers", "2"]
    local = runner.invoke(app, ["ingest", *common, "--store", str(tmp_path / "local")])
    assert local.exit_code == 3, local.output
    remote = runner.invoke(app, ["ingest", *common, "--store", f"{s3_bucket}/stores/hospital"])
    assert remote.exit_code == 3, remote.output
    _same_store(tmp_path / "local", f"{s3_bucket}/stores/hospital")
    info = runner.invoke(app, ["store", "info", f"{s3_bucket}/stores/hospital"])
    assert info.exit_code == 0 and "rejected" in info.output, info.output
    again = runner.invoke(app, ["ingest", *common, "--store", f"{s3_bucket}/stores/hospital"])
    assert "0 added" in again.output  # idempotent in object storage too


def test_ingest_on_ray_to_s3_gives_the_local_store(s3_bucket, hospital_dir, tmp_path):
    import ray

    src = [hospital_dir / "wfdb" / "records100"]
    ingest(src, tmp_path / "local", fs=100, workers=1, part_size=8, identifiers="keep", progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {k: os.environ[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                                                                  "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}})
    try:  # the Ray workers upload their parts themselves
        ingest(src, f"{s3_bucket}/ray", fs=100, workers=2, part_size=8, identifiers="keep", engine="ray",
               progress=False)
    finally:
        ray.shutdown()
    _same_store(tmp_path / "local", f"{s3_bucket}/ray")


KILL_BEFORE_COMPLETING_THE_THIRD_PART = """
import os, signal, sys
from s3fs.core import S3FileSystem
from ecgscope.store import ingest

real_put, real_call, parts = S3FileSystem._put_file, S3FileSystem._call_s3, []

async def put_file(self, lpath, rpath, *args, **kwargs):
    if rpath.endswith(".h5"):
        parts.append(rpath)
        if len(parts) == 3:  # the third waveform part goes up in 64 KiB pieces (a multipart upload)
            kwargs["chunksize"] = 64 * 1024
    return await real_put(self, lpath, rpath, *args, **kwargs)

async def call_s3(self, method, *args, **kwargs):
    if method == "complete_multipart_upload":  # every byte sent; S3 not yet told the object is whole
        os.kill(os.getpid(), signal.SIGKILL)
    return await real_call(self, method, *args, **kwargs)

S3FileSystem._put_file, S3FileSystem._call_s3 = put_file, call_s3
ingest([sys.argv[1]], sys.argv[2], fs=100, workers=1, part_size=8, identifiers="keep", progress=False)
"""


def test_an_upload_killed_before_it_completes_leaves_no_visible_part(s3_bucket, hospital_dir, tmp_path):
    import s3fs

    src = hospital_dir / "wfdb" / "records100"
    ingest([src], tmp_path / "local", fs=100, workers=1, part_size=8, identifiers="keep", progress=False)
    url = f"{s3_bucket}/killed"
    run = subprocess.run([sys.executable, "-c", KILL_BEFORE_COMPLETING_THE_THIRD_PART, str(src), url],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == -9, run.stderr[-3000:]
    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    uploads = fs.call_s3("list_multipart_uploads", Bucket=s3_bucket.removeprefix("s3://")).get("Uploads", [])
    assert [u["Key"].rsplit("/", 1)[-1] for u in uploads] == ["part-000003.h5"]  # killed mid-upload...
    waveforms = sorted(k.rsplit("/", 1)[-1] for k in fs.ls(f"{url}/waveforms"))
    assert waveforms == ["part-000001.h5", "part-000002.h5"]  # ...and not visible
    assert len(Store(url)) == 16  # the two committed batches, nothing of the third
    ingest([src], url, fs=100, workers=1, part_size=8, identifiers="keep", progress=False)  # restarted
    _same_store(tmp_path / "local", url)


def test_training_from_s3_equals_training_from_disk(s3_bucket, tmp_path):
    store, cohort = build_cohort(tmp_path, n=60)
    ingest([tmp_path / "sim" / "wfdb"], f"{s3_bucket}/store", fs=100, rate=100, workers=1, identifiers="keep",
           part_size=16, progress=False)
    ingest([tmp_path / "sim" / "wfdb"], tmp_path / "store16", fs=100, rate=100, workers=1, identifiers="keep",
           part_size=16, progress=False)  # the same parts on disk
    _same_store(tmp_path / "store16", f"{s3_bucket}/store")
    models = {}
    for name, where, order in (("disk", str(tmp_path / "store16"), "part_blocks"),
                               ("s3", f"{s3_bucket}/store", "auto")):  # auto: part-blocked for an object store
        cfg = RunConfig.model_validate({
            "out": str(tmp_path / name), "data": {"store": where, "cohort": str(cohort), "order": order,
                                                  "regression": ["rvef"], "binary": ["rv_dysfunction"]},
            "model": {"name": "compact_cnn_tiny"}, "train": {"max_epochs": 2, "batch_size": 8}})
        models[name] = train_from_config(cfg, progress=False)
    disk, s3 = load_file(models["disk"] / "weights.safetensors"), load_file(models["s3"] / "weights.safetensors")
    assert disk.keys() == s3.keys() and all(torch.equal(disk[k], s3[k]) for k in disk)
    history = [pd.read_csv(tmp_path / name / "validation_history.csv") for name in ("disk", "s3")]
    pd.testing.assert_frame_equal(*history)
    assert (tmp_path / "s3" / "test_metrics.json").read_text() == (tmp_path / "disk" / "test_metrics.json").read_text()


def test_a_store_url_on_a_filesystem_without_atomic_writes_is_refused(hospital_dir):
    with pytest.raises(LocationError, match="not all-or-nothing"):
        Location("sftp://host/stores/x")
    refused = CliRunner().invoke(app, ["ingest", str(hospital_dir / "wfdb"), "--store", "ftp://host/stores/x"])
    assert refused.exit_code == 2 and "not all-or-nothing" in refused.output


def test_any_fsspec_object_store_holds_a_store(hospital_dir, tmp_path):
    src = [hospital_dir / "wfdb" / "records100"]
    ingest(src, tmp_path / "local", fs=100, workers=1, part_size=8, identifiers="keep", progress=False)
    ingest(src, "memory://stores/hospital", fs=100, workers=1, part_size=8, identifiers="keep", progress=False)
    _same_store(tmp_path / "local", "memory://stores/hospital")
    assert Store("memory://stores/hospital").info()["waveform_bytes"] == Store(tmp_path / "local").info()[
        "waveform_bytes"]
