"""The prediction service on a real server on loopback: every route, keys, limits, broken files, refusals,
concurrency, nothing left behind and nothing identifying in the logs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import socket
import time
import zipfile

import numpy as np
import pytest
import wfdb
from typer.testing import CliRunner

from ecgscope.cli import app
from ecgscope.serve.batching import MicroBatcher
from ecgscope.signal.leadcheck import reverse_limb_electrodes

from . import broken_corpus
from .conftest import SHARED_DATA
from .serving import KEY, Server, muse_file, simulated_leads_uv
from .writers import write_dicom_ecg, write_hl7aecg

LIMIT_MB = 2


@pytest.fixture(scope="module")
def server(small_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    running = Server(small_model, root, "--max-upload-mb", str(LIMIT_MB))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def muse(tmp_path_factory):
    return muse_file(tmp_path_factory.mktemp("muse") / "ecg.xml", simulated_leads_uv())


def _post(server, path="/v1/predict", body=b"", key=KEY, **params):
    with server.client(key) as client:
        return client.post(path, content=body, params=params)


def test_health_needs_no_key_and_every_other_route_does(server):
    with server.client(key=None) as anonymous:
        assert anonymous.get("/health").json()["models"] == ["model"]
        assert anonymous.get("/").status_code == 200 and "ecgscope" in anonymous.get("/").text
        assert anonymous.get("/static/viewer.js").status_code == 200
        for method, path in (("GET", "/v1/models"), ("POST", "/v1/predict"), ("POST", "/v1/explain?target=rvef")):
            response = anonymous.request(method, path, content=b"x")
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    with server.client(key="wrong-key-0123456789abcdef") as wrong:
        assert wrong.get("/v1/models").status_code == 401
        assert wrong.post("/v1/predict", content=b"x").status_code == 401


def test_models_route_shows_contract_identity_and_tripod_card(server, small_model):
    with server.client() as client:
        (model,) = client.get("/v1/models").json()
        assert client.get("/docs").status_code == 200
        paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/v1/models", "/v1/predict", "/v1/explain"} <= set(paths)
    info = json.loads((small_model / "model.json").read_text())
    assert model["weights_sha256"] == info["weights_sha256"] and model["input_contract"]["fs"] == 100
    card = model["model_card"]
    for item in ("intended_use", "not_intended_for", "data", "preprocessing", "performance", "operating_points",
                 "limitations", "out_of_distribution"):
        assert card[item], item
    assert "does not replace" in " ".join(card["limitations"])
    overall = card["performance"]["all"]["rv_dysfunction"]
    assert set(overall["predictive_values"]) == {"5%", "10%", "20%"}
    assert "sex=F" in card["performance"] or "sex=M" in card["performance"]  # subgroups
    assert "# Model card" in model["model_card_markdown"]


def test_a_muse_export_gets_values_intervals_probabilities_and_flags(server, muse, small_model):
    response = _post(server, body=muse.read_bytes())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "result" and answer["reasons"] == []
    rvef = answer["targets"]["rvef"]
    assert rvef["lower"] < rvef["value"] < rvef["upper"] and rvef["coverage"] == pytest.approx(0.9)
    phenotype = answer["phenotypes"]["rv_dysfunction"]
    assert 0 < phenotype["probability"] < 1
    assert phenotype["flag"] == (phenotype["probability"] >= phenotype["threshold"])
    assert answer["checks"]["contract"] == "fits" and not answer["checks"]["flat_leads"]
    assert answer["checks"]["ood"]["percentile"] >= 0
    assert answer["model"]["weights_sha256"] == json.loads((small_model / "model.json").read_text())["weights_sha256"]
    assert answer["elapsed_ms"] > 0 and response.headers["x-request-id"] == answer["request_id"]
    assert "signal" not in answer
    assert len(_post(server, body=muse.read_bytes(), include_signal="true").json()["signal"]["samples"]) == 12


def _wfdb_zip(leads_uv) -> bytes:
    folder = io.BytesIO()
    names = list(leads_uv)
    signal = np.stack([leads_uv[n] for n in names], axis=1) / 1000
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        wfdb.wrsamp("rec", fs=500, units=["mV"] * 12, sig_name=names, p_signal=signal, fmt=["16"] * 12,
                    write_dir=tmp)
        with zipfile.ZipFile(folder, "w") as archive:
            for name in ("rec.hea", "rec.dat"):
                archive.write(Path(tmp) / name, name)
    return folder.getvalue()


def test_every_format_gives_the_same_reading_of_the_same_ecg(server, tmp_path):
    leads = simulated_leads_uv()
    matrix = np.stack(list(leads.values()))
    bodies = {
        "muse": (muse_file(tmp_path / "m.xml", leads).read_bytes(), {}),
        "hl7aecg": (write_hl7aecg(tmp_path / "a.xml", leads).read_bytes(), {}),
        "dicom": (write_dicom_ecg(tmp_path / "d.dcm", {k: np.round(v) for k, v in leads.items()}).read_bytes(), {}),
        "wfdb zip": (_wfdb_zip(leads), {}),
        "csv": (",".join(leads).encode() + b"\n" + b"\n".join(",".join(f"{v:.1f}" for v in row).encode()
                                                           for row in matrix.T), {"fs": 500, "units": "uV"}),
        "npy": (_npy(matrix), {"fs": 500, "units": "uV"}),
    }
    values = {}
    for name, (body, params) in bodies.items():
        response = _post(server, body=body, **params)
        assert response.status_code == 200, (name, response.text)
        assert response.json()["status"] == "result", (name, response.json()["reasons"])
        values[name] = response.json()["targets"]["rvef"]["value"]
    with server.client() as client:
        as_json = client.post("/v1/predict", json={"fs": 500, "units": "uV", "leads": list(leads),
                                                   "samples": matrix.round(1).tolist()}).json()
    values["json"] = as_json["targets"]["rvef"]["value"]
    assert max(values.values()) - min(values.values()) < 0.5, values  # quantisation differs by format


def _npy(matrix) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, matrix.astype(np.float32))
    return buffer.getvalue()


def test_an_upload_over_the_limit_is_refused_before_it_is_read(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
                     b"\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000000\r\n\r\n<Resting")
        started = time.monotonic()
        reply = conn.recv(4096).decode()
        assert reply.startswith("HTTP/1.1 413") and time.monotonic() - started < 5  # 1 GB never sent
    # a chunked upload with no declared length is cut off at the limit
    with server.client() as client:
        streamed = client.post("/v1/predict", content=(b"0" * 2**20 for _ in range(LIMIT_MB + 2)))
    assert streamed.status_code == 413


def _upload(path):
    """The body and parameters that send a file of the broken corpus (a WFDB record as a zip)."""
    if path.suffix == ".hea":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for part in path.parent.glob(path.stem + ".*"):
                archive.write(part, part.name)
        return buffer.getvalue(), {}
    params = {"fs": 500, "units": "mV"} if path.suffix in (".csv", ".npy") else {}
    if path.suffix == ".hdf5":  # random bytes are no format at all unless the client says which
        params = {"format": "code15"}
    return path.read_bytes(), params


def test_each_broken_file_gets_422_with_its_reason(server, tmp_path):
    cases = broken_corpus.build(tmp_path / "broken")
    special = {"rec42.hea": None, "good.hea": None, "shard.hdf5": "2 ECG records", "empty.xml": "empty"}
    # readable, but not assessable: the service answers, and says why
    assessable = {"flat.hea": "flat lead(s) V3", "missing_v6.xml": "missing lead"}
    checked = 0
    for path, words in cases.items():
        words = special.get(path.name, words)
        if words is None:
            continue
        body, params = _upload(path)
        response = _post(server, body=body, **params)
        if path.name in assessable:
            assert response.json()["status"] == "cannot_assess", response.text
            assert assessable[path.name] in " ".join(response.json()["reasons"])
            continue
        assert response.status_code == 422, (path.name, response.text)
        detail = response.json()["detail"]
        assert words.lower() in detail.lower(), (path.name, detail)
        assert str(server.tmp) not in detail and "ecgscope-request" not in detail, detail
        checked += 1
    assert checked >= 16


def _cannot_assess(server, leads_uv, tmp_path, name="x.xml"):
    answer = _post(server, body=write_hl7aecg(tmp_path / name, leads_uv).read_bytes()).json()
    assert answer["status"] == "cannot_assess" and not answer["targets"] and not answer["phenotypes"]
    return " ".join(answer["reasons"])


def test_noisy_reversed_paced_flat_and_short_ecgs_cannot_be_assessed(server, tmp_path):
    leads = simulated_leads_uv()
    rng = np.random.default_rng(0)
    noisy = {k: v + rng.normal(0, 600, v.size) for k, v in leads.items()}  # 0.6 mV white noise
    assert "too noisy" in _cannot_assess(server, noisy, tmp_path, "noisy.xml")
    matrix = np.stack(list(leads.values()))
    reversed_ = dict(zip(leads, reverse_limb_electrodes(matrix, "LA/RA"), strict=True))
    assert "LA/RA limb-electrode reversal" in _cannot_assess(server, reversed_, tmp_path, "reversed.xml")
    paced = {k: v.copy() for k, v in leads.items()}
    for start in range(200, 5000, 400):  # a 2 ms, 4 mV spike every 0.8 s
        for k in ("I", "II", "V1", "V2", "V3"):
            paced[k][start] += 4000
    assert "paced" in _cannot_assess(server, paced, tmp_path, "paced.xml")
    flat = {**leads, "V4": np.zeros_like(leads["V4"])}
    assert "flat lead(s) V4" in _cannot_assess(server, flat, tmp_path, "flat.xml")
    short = {k: v[:2500] for k, v in leads.items()}  # 5 s
    assert "outside the input contract" in _cannot_assess(server, short, tmp_path, "short.xml")


def test_32_concurrent_requests_are_all_answered_correctly(server, muse, tmp_path):
    other = muse_file(tmp_path / "other.xml", simulated_leads_uv(seed=5)).read_bytes()
    bodies = [muse.read_bytes(), other]
    expected = [_post(server, body=b).json()["targets"]["rvef"]["value"] for b in bodies]
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda i: _post(server, body=bodies[i % 2]), range(32)))
    for i, response in enumerate(answers):
        assert response.status_code == 200
        assert response.json()["targets"]["rvef"]["value"] == pytest.approx(expected[i % 2], abs=1e-4)
    assert len({r.headers["x-request-id"] for r in answers}) == 32


def test_explain_route_returns_the_attribution_map(server, muse):
    response = _post(server, "/v1/explain", body=muse.read_bytes(), target="rv_dysfunction", method="occlusion")
    assert response.status_code == 200, response.text
    found = response.json()
    assert np.asarray(found["attribution"]).shape == (12, 1000) and found["fs"] == 100
    assert sum(found["lead_importance"].values()) == pytest.approx(1.0, abs=1e-3)
    assert len(found["segment_importance"]["V1"]) == 20
    unknown = _post(server, "/v1/explain", body=muse.read_bytes(), target="lvef")
    assert unknown.status_code == 422 and "no target 'lvef'" in unknown.json()["detail"]
    assert _post(server, model="nope", body=muse.read_bytes()).status_code == 404


def test_nothing_is_left_behind_and_the_log_holds_no_patient_data(server, muse):
    for _ in range(3):
        _post(server, body=muse.read_bytes())
    _post(server, body=b"<RestingECG><broken")
    time.sleep(0.5)
    assert sorted(p.name for p in server.tmp.iterdir()) == server.started_with
    log = server.log.read_text()
    assert "request " in log and " /v1/predict 200 " in log
    for secret in ("Doe", "Jane", "MRN-553311", "ecg.xml", "broken"):
        assert secret not in log, secret


def test_microbatcher_batches_what_arrives_while_the_model_runs():
    calls = []

    def infer(batch):
        calls.append(len(batch))
        time.sleep(0.05)
        return [float(x.sum()) for x in batch]

    async def burst():
        batcher = MicroBatcher(infer, max_batch=8)
        results = await asyncio.gather(*(batcher.submit(np.full((2, 3), i, np.float32)) for i in range(20)))
        await batcher.close()
        return results

    results = asyncio.run(burst())
    assert results == [6.0 * i for i in range(20)]
    assert sum(calls) == 20 and len(calls) < 20 and max(calls) <= 8


def test_time_limit_cors_and_startup_refusals(small_model, tmp_path, muse):
    from fastapi.testclient import TestClient

    from ecgscope.serve.app import create_app

    slow = TestClient(create_app([small_model], api_keys=None, time_limit_s=1e-4, temp_root=tmp_path))
    response = slow.post("/v1/predict", content=muse.read_bytes())
    assert response.status_code == 504 and "time limit" in response.json()["detail"]
    assert list(tmp_path.iterdir()) == []
    plain = TestClient(create_app([small_model], api_keys=None))
    preflight = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in plain.options("/v1/predict", headers=preflight).headers
    open_to = TestClient(create_app([small_model], api_keys=None, cors_origins=["https://elsewhere.example"]))
    assert open_to.options("/v1/predict", headers=preflight).headers["access-control-allow-origin"] == \
        "https://elsewhere.example"
    runner = CliRunner()
    no_key = runner.invoke(app, ["serve", str(small_model)], env={"ECGSCOPE_API_KEYS": ""})
    assert no_key.exit_code == 2 and "no API key" in no_key.output
    exposed = runner.invoke(app, ["serve", str(small_model), "--no-auth", "--host", "0.0.0.0"],
                            env={"ECGSCOPE_API_KEYS": ""})
    assert exposed.exit_code == 2 and "loopback only" in exposed.output
    weak = runner.invoke(app, ["serve", str(small_model)], env={"ECGSCOPE_API_KEYS": "short"})
    assert weak.exit_code == 2 and "shorter than 16" in weak.output


def test_real_recordings_are_assessed_or_refused_with_reasons(server):
    """Real ECGs (LUDB, CinC 2021) reach the model trained on simulated ones: each gets an answer, and the
    refusals say why (the out-of-distribution rate is measured in benchmarks/ood_benchmark.py)."""
    for record in ("ludb/1", "cinc2021/E07500", "cinc2021/HR06000"):
        base = SHARED_DATA / record
        body, _ = _upload(base.with_suffix(".hea"))
        response = _post(server, body=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["status"] in ("result", "cannot_assess")
        assert (answer["status"] == "result") == (not answer["reasons"])
