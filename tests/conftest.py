"""Shared fixtures: small simulated cohorts written once per session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from ecgscope.simulate import simulate_cohort
from ecgscope.simulate.export import write_cohort

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def ludb_leads_uv() -> dict:
    """LUDB record 1 (a real 12-lead ECG, 500 Hz x 10 s) as {canonical lead name: samples in uV}."""
    import wfdb

    from ecgscope.leads import normalize_lead_names

    record = wfdb.rdrecord(str(SHARED_DATA / "ludb" / "1"))
    return dict(zip(normalize_lead_names(record.sig_name), (record.p_signal * 1000).T, strict=True))


def pytest_configure(config):
    """Every ingest in the tests pseudonymizes with a throw-away key, never the user's own; and each of the
    suite's parallel workers keeps to its share of the cores."""
    os.environ["ECGSCOPE_PSEUDONYM_KEY_FILE"] = str(Path(tempfile.mkdtemp(prefix="ecgscope-key-")) / "key")
    _share_the_cores(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))


def pytest_collection_modifyitems(config, items):
    """The long tests first (``make test`` hands them out one at a time): started last, one of them would
    leave the other workers idle at the end."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


def _share_the_cores(workers: int) -> None:
    """Give torch and the native thread pools (OpenBLAS, OpenMP) cores / ``workers`` threads, here and in the
    commands the tests start: ``make test`` runs one worker per core, and a worker whose pools spin on every
    core slows the others."""
    threads = max(1, (os.cpu_count() or 1) // max(workers, 1))
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)


@pytest.fixture(scope="session")
def hospital_cohort():
    """A small hospital-preset cohort (tables + lazy waveforms)."""
    return simulate_cohort("hospital", n=40, seed=11)


@pytest.fixture(scope="session")
def hospital_dir(tmp_path_factory, hospital_cohort):
    """The small hospital cohort written as WFDB (500 and 100 Hz) and CODE-15%."""
    out = tmp_path_factory.mktemp("sim") / "hospital"
    return write_cohort(hospital_cohort, out, formats=("wfdb", "code15"), progress=False, workers=1)


@pytest.fixture(scope="session")
def echo_dir(tmp_path_factory):
    """A small echo-dev cohort written in the EchoNext layout."""
    out = tmp_path_factory.mktemp("sim") / "echo"
    return write_cohort(simulate_cohort("echo-dev", n=40, seed=12), out, formats=("echonext",), progress=False,
                        workers=1)


@pytest.fixture(scope="session")
def small_model(tmp_path_factory):
    """A tiny model trained on a simulated hospital cohort at 100 Hz (RVEF and RV dysfunction), with intervals,
    thresholds, an out-of-distribution reference and a model card."""
    from .service_model import train_small_model

    return train_small_model(tmp_path_factory.mktemp("small-model"))


@pytest.fixture(scope="session")
def s3_server():
    """An S3-compatible server (moto) on loopback for this test process."""
    from .objectstore import S3Server

    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server, monkeypatch, request):
    """A fresh bucket on the loopback S3 server, with the environment pointing every S3 client at it: its URL."""
    import s3fs

    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    bucket = "t-" + "".join(c for c in request.node.name.lower() if c.isalnum())[:40]
    s3fs.S3FileSystem().mkdir(bucket)
    yield f"s3://{bucket}"
    s3fs.S3FileSystem.clear_instance_cache()
