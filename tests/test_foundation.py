"""Foundation encoders: contrastive pretraining, embeddings, the ECGFounder adapter, linear probes."""

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from ecgscope.cli import app
from ecgscope.foundation import ecgfounder_encoder, embed_batches, linear_probe, read_embeddings
from ecgscope.foundation.contrastive import nt_xent
from ecgscope.models import create_model
from ecgscope.signal import ECGFOUNDER_PIPELINE
from ecgscope.store import Store, ingest
from ecgscope.train import load_model
from ecgscope.train.module import seeded_model


@pytest.fixture(scope="module")
def store(tmp_path_factory, hospital_dir):
    path = tmp_path_factory.mktemp("foundation") / "store"
    ingest([hospital_dir / "wfdb"], path, fs=100, rate=100, workers=1, progress=False)
    return path


def test_nt_xent_is_low_when_views_match_and_chance_when_they_do_not():
    torch.manual_seed(0)
    z = torch.randn(32, 16)
    matched = nt_xent(z, z + 0.01 * torch.randn_like(z), temperature=0.1)
    shuffled = nt_xent(z, z[torch.randperm(32)], temperature=0.1)
    unrelated = nt_xent(torch.randn(32, 16), torch.randn(32, 16), temperature=10.0)
    assert matched < 0.1 < shuffled
    assert unrelated == pytest.approx(np.log(63), rel=0.02)  # a uniform guess among the 2B - 1 others


def test_pretrain_and_embed_from_the_command_line(tmp_path, store):
    run = tmp_path / "pretrain"
    args = ["pretrain", "--store", str(store), "--out", str(run), "--model", "compact_cnn_tiny", "--epochs", "2",
            "--batch-size", "16", "--view-s", "4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    encoder = load_model(run / "model")
    assert encoder.spec.names == [] and encoder.info["architecture"] == "compact_cnn_tiny"
    untrained = seeded_model("compact_cnn_tiny", 0, num_outputs=0).state_dict()
    assert any(not torch.equal(v, untrained[k]) for k, v in encoder.model.state_dict().items())
    logged = pd.read_csv(run / "logs" / "version_0" / "metrics.csv")
    assert logged["val/loss"].notna().sum() == 2
    again = CliRunner().invoke(app, args)  # the run directory is taken: refuse rather than overwrite
    assert again.exit_code != 0 and "--resume" in again.output

    out = tmp_path / "emb.parquet"
    result = CliRunner().invoke(app, ["embed", str(run / "model"), "--store", str(store), "--out", str(out),
                                      "--batch-size", "7"])
    assert result.exit_code == 0, result.output
    ids, vectors = read_embeddings(out)
    st = Store(store)
    assert ids["ecg_id"].tolist() == st.manifest["ecg_id"].astype(str).tolist()
    assert vectors.shape == (len(st), encoder.model.num_features) and np.isfinite(vectors).all()
    direct = embed_batches(type("E", (), {"model": encoder.model, "pipeline": encoder.pipeline, "dim": 0})(),
                           [np.stack([st.read(i) for i in range(3)])], st.config.fs)
    np.testing.assert_allclose(vectors[:3], direct, atol=1e-5)  # batching does not change a vector


def test_ecgfounder_checkpoint_gives_1024_d_embeddings_with_its_preprocessing(tmp_path, store):
    model = seeded_model("net1d_ecgfounder", 3)
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "founder.pth")
    out = tmp_path / "founder.parquet"
    result = CliRunner().invoke(app, ["embed", "--ecgfounder", str(tmp_path / "founder.pth"), "--store", str(store),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    ids, vectors = read_embeddings(out)
    assert vectors.shape == (len(Store(store)), 1024)
    st = Store(store)
    x = ECGFOUNDER_PIPELINE(st.read(0)[None], st.config.fs)
    assert x.shape == (1, 12, 5000) and abs(float(x.std()) - 1) < 1e-3  # 500 Hz x 10 s, global z-score
    with torch.no_grad():
        expected = model.eval().forward_features(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(vectors[:1], expected, rtol=1e-4, atol=1e-4)
    assert ecgfounder_encoder(tmp_path / "founder.pth").dim == 1024

    torch.save({"state_dict": create_model("net1d_small").state_dict()}, tmp_path / "wrong.pth")
    wrong = CliRunner().invoke(app, ["embed", "--ecgfounder", str(tmp_path / "wrong.pth"), "--store", str(store),
                                     "--out", str(tmp_path / "wrong.parquet")])
    assert wrong.exit_code != 0 and "does not fit" in wrong.output and "ECGFounder" in wrong.output
    assert not (tmp_path / "wrong.parquet").exists()
    neither = CliRunner().invoke(app, ["embed", "--store", str(store)])
    assert neither.exit_code != 0 and "--ecgfounder" in neither.output


def test_linear_probe_finds_a_linear_signal_and_ignores_missing_labels():
    from ecgscope.evaluate import auroc, r2

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 20))
    score = x[:, 0] - x[:, 1]
    y_bin = (score + rng.normal(0, 0.5, 600) > 0).astype(float)
    y_bin[:30] = np.nan
    y_reg = 2 * score + rng.normal(0, 0.5, 600)
    p = linear_probe(x[:400], y_bin[:400], x[400:], "binary")
    assert auroc(y_bin[400:], p) > 0.9 and ((p >= 0) & (p <= 1)).all()
    assert r2(y_reg[400:], linear_probe(x[:400], y_reg[:400], x[400:], "regression")) > 0.9
    with pytest.raises(ValueError, match="kind"):
        linear_probe(x, y_reg, x, "survival")


def test_pretraining_killed_mid_epoch_and_resumed_ends_like_an_uninterrupted_one(tmp_path, store):
    from safetensors.numpy import load_file

    from ecgscope.foundation import pretrain_encoder

    from .test_training_run import Crash, StartEpoch

    settings = dict(model="compact_cnn_tiny", epochs=2, batch_size=8, view_s=4.0, progress=False)
    clean = pretrain_encoder(store, tmp_path / "clean", **settings)
    with pytest.raises(RuntimeError, match="killed mid-epoch"):
        pretrain_encoder(store, tmp_path / "crashed", callbacks=[Crash()], **settings)
    first_epoch = StartEpoch()
    resumed = pretrain_encoder(store, tmp_path / "crashed", resume=True, callbacks=[first_epoch], **settings)
    assert first_epoch.value == 1  # continued from the checkpoint of epoch 0
    a, b = load_file(str(clean / "weights.safetensors")), load_file(str(resumed / "weights.safetensors"))
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6)


def test_an_imported_ecgfounder_model_reads_a_100_hz_store_through_its_own_contract(tmp_path, store):
    from ecgscope.contract import StoreInput

    model = seeded_model("net1d_ecgfounder", 3)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "founder.pth")
    result = CliRunner().invoke(app, ["import-ecgfounder", str(tmp_path / "founder.pth"), "--out",
                                      str(tmp_path / "founder")])
    assert result.exit_code == 0, result.output
    loaded = load_model(tmp_path / "founder")
    assert loaded.pipeline == ECGFOUNDER_PIPELINE and loaded.spec.names == []
    own = {k: v for k, v in model.state_dict().items() if not k.startswith("dense.")}
    assert all(torch.equal(v, loaded.model.state_dict()[k]) for k, v in own.items())
    st = Store(store)
    assert st.config.fs == 100
    fed = StoreInput(loaded.pipeline, st).read(0)  # what finetune and embed give it: 500 Hz x 10 s, z-scored
    np.testing.assert_allclose(fed, ECGFOUNDER_PIPELINE(st.read(0), 100.0))
    assert fed.shape == (12, 5000) and abs(float(fed.std()) - 1) < 1e-3
