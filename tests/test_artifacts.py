"""Model directories: round trip, integrity, wrong architecture, no unpickling, ONNX parity; the Pipeline."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ecgscope.cli import app
from ecgscope.models import create_model
from ecgscope.signal import ECGFOUNDER_PIPELINE, Pipeline, default_pipeline
from ecgscope.train import ArtifactError, TaskSpec, export_onnx, load_model, save_model

PIPELINE = default_pipeline(100.0, 1000)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    spec = TaskSpec(regression=["rvef"], binary=["rv_dysfunction"], mean={"rvef": 58.0}, std={"rvef": 6.0},
                    pos_weight={"rv_dysfunction": 5.0})
    model = create_model("compact_cnn_tiny", num_outputs=spec.n_outputs).eval()
    path = save_model(tmp_path / "model", model, "compact_cnn_tiny", spec, PIPELINE, metrics={"auroc": 0.8},
                      data="simulated test cohort")
    return path, model, spec


def test_round_trip_restores_the_same_predictions(saved):
    path, model, spec = saved
    assert {p.name for p in path.iterdir()} == {"weights.safetensors", "model.json", "preprocess.json",
                                                 "metrics.json", "model_card.md"}
    loaded = load_model(path)
    x = torch.randn(3, 12, 1000)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model(x))
    assert loaded.spec == spec and loaded.pipeline == PIPELINE
    assert "does not replace" in (path / "model_card.md").read_text()


def test_tampered_weights_are_refused(saved):
    path, _, _ = saved
    raw = bytearray((path / "weights.safetensors").read_bytes())
    raw[-1] ^= 0xFF
    (path / "weights.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="checksum"):
        load_model(path)


def test_wrong_architecture_is_refused(saved):
    path, _, _ = saved
    info = json.loads((path / "model.json").read_text())
    info["architecture"] = "compact_cnn"
    (path / "model.json").write_text(json.dumps(info))
    with pytest.raises(ArtifactError, match="do not fit compact_cnn"):
        load_model(path)


def test_a_pickle_in_place_of_the_weights_is_never_run(saved, tmp_path):
    path, _, _ = saved

    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    torch.save({"x": Evil()}, path / "weights.safetensors")
    info = json.loads((path / "model.json").read_text())
    import hashlib

    info["weights_sha256"] = hashlib.sha256((path / "weights.safetensors").read_bytes()).hexdigest()
    (path / "model.json").write_text(json.dumps(info))
    with pytest.raises(ArtifactError, match="not a readable safetensors"):
        load_model(path)
    assert not (tmp_path / "pwned").exists()


def test_onnx_export_matches_pytorch(saved):
    path, model, _ = saved
    result = CliRunner().invoke(app, ["export", str(path), "--onnx"])
    assert result.exit_code == 0, result.output
    import onnxruntime as ort

    x = np.random.default_rng(1).normal(size=(4, 12, 1000)).astype(np.float32)  # another batch size
    got = ort.InferenceSession(str(path / "model.onnx")).run(None, {"ecg": x})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model(torch.from_numpy(x)).numpy(), atol=1e-4)
    assert export_onnx(path).exists()


def test_pipeline_round_trips_and_runs_ecgfounder_preprocessing():
    x = np.random.default_rng(0).normal(size=(12, 4000)).cumsum(-1) * 0.01  # 10 s at 400 Hz
    out = ECGFOUNDER_PIPELINE(x, 400.0)
    assert out.shape == (12, 5000) and abs(out.mean()) < 1e-5 and out.std() == pytest.approx(1.0, abs=1e-4)
    again = Pipeline.from_json(ECGFOUNDER_PIPELINE.to_json())
    np.testing.assert_array_equal(again(x, 400.0), out)
    with pytest.raises(ValueError, match="unknown preprocessing step"):
        Pipeline(100.0, 1000, [{"name": "magic"}])
