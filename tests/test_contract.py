"""The input contract of a model, enforced wherever a store meets it: rate, units, leads, length, export."""

import json

import numpy as np
import pytest
import torch

from ecgscope.contract import StoreInput, check_fits
from ecgscope.errors import ContractError
from ecgscope.evaluate import SplitConformal
from ecgscope.models import create_model
from ecgscope.signal import Pipeline, default_pipeline
from ecgscope.store import Store, ingest
from ecgscope.train import ArtifactError, TaskSpec, load_model, save_model
from ecgscope.train.predict import predict_store

SPEC = TaskSpec(regression=["rvef"], binary=["rv_dysfunction"], mean={"rvef": 58.0}, std={"rvef": 6.0},
                pos_weight={"rv_dysfunction": 4.0})


def _model(tmp_path, pipeline, name="model"):
    torch.manual_seed(0)
    model = create_model("compact_cnn_tiny", num_outputs=SPEC.n_outputs).eval()
    rng = np.random.default_rng(0)
    truth = rng.normal(58, 6, 200)
    conformal = {"rvef": SplitConformal(0.1).fit(truth, truth + rng.normal(0, 3, 200), np.full(200, 3.0))}
    return save_model(tmp_path / name, model, "compact_cnn_tiny", SPEC, pipeline, conformal=conformal)


@pytest.fixture(scope="module")
def stores(tmp_path_factory, hospital_dir):
    root = tmp_path_factory.mktemp("contract")
    for fs in (100, 500):
        ingest([hospital_dir / "wfdb"], root / f"mv{fs}", fs=fs, rate=fs, workers=1, identifiers="keep", progress=False)
    return root


def test_a_100_hz_model_reads_a_500_hz_store_resampled_to_its_own_rate(stores, tmp_path):
    model = _model(tmp_path, default_pipeline(100.0, 1000))
    at_500, at_100 = Store(stores / "mv500"), Store(stores / "mv100")
    fed = StoreInput(load_model(model).pipeline, at_500).read(0)
    assert fed.shape == (12, 1000)
    from_500, from_100 = predict_store(model, at_500, progress=False), predict_store(model, at_100, progress=False)
    assert list(from_500["ecg_id"]) == list(from_100["ecg_id"])
    # the same ECGs, stored at two rates, reach the model as the same input: predictions agree
    assert np.corrcoef(from_500["rvef"], from_100["rvef"])[0, 1] > 0.98
    assert np.abs(from_500["rvef"] - from_100["rvef"]).max() < 0.1 * from_100["rvef"].std() + 0.5
    with pytest.raises(ContractError, match=r"500 Hz.*100 Hz.*resampling was not allowed"):
        predict_store(model, at_500, progress=False, allow_resample=False)


def test_a_z_scored_store_is_refused_by_an_mv_model_naming_both(echo_dir, tmp_path):
    ingest([echo_dir / "echonext"], tmp_path / "z", fs=250, units="z-score", workers=1, progress=False)
    assert (Store(tmp_path / "z").manifest["lead_warning"] == "").all()  # no lead checks on normalised leads
    model = _model(tmp_path, default_pipeline(250.0, 2500))
    with pytest.raises(ContractError, match=r"input is in z-score, the model takes mV"):
        predict_store(model, tmp_path / "z", progress=False)


def test_a_model_that_takes_fewer_leads_gets_them_by_name_and_a_missing_lead_is_refused(stores, tmp_path):
    chest_first = Pipeline(100.0, 1000, [], leads=("V1", "I", "aVF"))
    source = StoreInput(chest_first, Store(stores / "mv100"))
    raw = Store(stores / "mv100").read(3)
    np.testing.assert_allclose(source.read(3), raw[[6, 0, 5]], atol=1e-6)
    with pytest.raises(ContractError, match="lacks"):
        check_fits(chest_first, fs=100, n_samples=1000, units="mV", leads=("I", "II", "V1"), what="a two-lead file")


def test_a_short_record_gets_no_prediction_and_says_why(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "full.npy", rng.normal(0, 0.1, (12, 5000)).astype(np.float32))
    np.save(tmp_path / "five_seconds.npy", rng.normal(0, 0.1, (12, 2500)).astype(np.float32))
    ingest([tmp_path / "full.npy", tmp_path / "five_seconds.npy"], tmp_path / "store", fs=500, workers=1,
           identifiers="keep", progress=False, input_fs=500, input_units="mV")
    table = predict_store(_model(tmp_path, default_pipeline(500.0, 5000)), tmp_path / "store", progress=False)
    short = table[table["ecg_id"] == "five_seconds"].iloc[0]
    full = table[table["ecg_id"] == "full"].iloc[0]
    assert np.isnan(short["rvef"]) and np.isnan(short["rv_dysfunction"]) and np.isnan(short["rvef_lower"])
    assert "5.00 s recorded" in short["input_note"] and "not zero-padded" in short["input_note"]
    assert np.isfinite(full["rvef"]) and full["input_note"] == "ok"
    assert "lead_warning" in table.columns  # the ingest checks' verdict travels with each prediction
    # a whole store shorter than the model's input is refused, not padded
    with pytest.raises(ContractError, match=r"holds 10 s, the model takes 20 s"):
        predict_store(_model(tmp_path, default_pipeline(500.0, 10_000), "long"), tmp_path / "store", progress=False)


def test_model_json_states_the_contract_preprocess_json_holds_and_an_edit_is_caught(tmp_path):
    path = _model(tmp_path, default_pipeline(500.0, 5000))
    info = json.loads((path / "model.json").read_text())
    assert info["input"] == json.loads((path / "preprocess.json").read_text())
    assert info["input"]["fs"] == 500.0 and info["input"]["n_samples"] == 5000 and info["input"]["units"] == "mV"
    assert "500 Hz" in (path / "model_card.md").read_text()
    info["input"]["fs"] = 100.0
    (path / "model.json").write_text(json.dumps(info))
    with pytest.raises(ArtifactError, match="differs from preprocess.json"):
        load_model(path)


def test_onnx_metadata_decodes_the_raw_head_like_the_model(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from ecgscope.train import export_onnx

    path = _model(tmp_path, default_pipeline(100.0, 1000))
    onnx_path = export_onnx(path)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["input_contract"]) == load_model(path).pipeline.to_dict()
    x = np.random.default_rng(1).normal(0, 0.2, (4, 12, 1000)).astype(np.float32)
    raw = session.run(None, {"ecg": x})[0]
    columns = json.loads(meta["output_columns"])
    scaling, correction = json.loads(meta["target_scaling"]), json.loads(meta["probability_correction"])
    # decoded with nothing but the file's metadata
    rvef = raw[:, columns.index("rvef")] * scaling["rvef"]["std"] + scaling["rvef"]["mean"]
    logit = raw[:, columns.index("rv_dysfunction_logit")] - correction["rv_dysfunction"]
    want = SPEC.decode(raw)
    np.testing.assert_allclose(rvef, want["rvef"], rtol=1e-6)
    np.testing.assert_allclose(1 / (1 + np.exp(-logit)), want["rv_dysfunction"], rtol=1e-6)


def test_one_ecg_record_meets_the_contract_by_the_same_rules():
    from ecgscope.contract import ecg_input
    from ecgscope.ecg import ECG
    from ecgscope.leads import INDEPENDENT_LEADS

    rng = np.random.default_rng(2)
    eight = ECG(rng.normal(0, 0.1, (8, 5000)), 500.0, INDEPENDENT_LEADS, ecg_id="eight-leads")
    x = ecg_input(default_pipeline(100.0, 1000), eight)  # III, aVR, aVL, aVF derived, then 500 -> 100 Hz
    assert x.shape == (12, 1000) and x.dtype == np.float32
    with pytest.raises(ContractError, match=r"eight-leads.*holds 5 s, the model takes 10 s"):
        ecg_input(default_pipeline(100.0, 1000), ECG(rng.normal(0, 0.1, (8, 2500)), 500.0, INDEPENDENT_LEADS,
                                                     ecg_id="eight-leads"))
    scored = ECG(rng.normal(0, 1, (12, 2500)), 250.0, ecg_id="echonext", meta={"normalized": True})
    with pytest.raises(ContractError, match="z-score"):
        ecg_input(default_pipeline(250.0, 2500), scored)
