"""Synthetic echo motion: features of a cycle, the conditional GAN, its directory and commands."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from ecgscope.cli import app
from ecgscope.motion import MotionError, load_generator, motion_agreement, motion_features
from ecgscope.store import Store, ingest


def test_features_recover_the_simulated_tissue_doppler_peaks(hospital_cohort):
    truth = hospital_cohort.patients
    f = motion_features(hospital_cohort.tdi_velocity, hospital_cohort.annular_displacement,
                        hospital_cohort.motion_rr_ms)
    e_true = (truth["septal_e_prime"] + truth["lateral_e_prime"]) / 2
    np.testing.assert_allclose(f["s_prime"], truth["s_prime"], atol=0.1)
    np.testing.assert_allclose(f["e_prime"], e_true, atol=0.1)
    sinus = ~truth["af"].to_numpy()
    np.testing.assert_allclose(f["a_prime"][sinus], truth["a_prime"][sinus], atol=0.1)
    assert f["a_prime"][~sinus].isna().all()  # no atrial kick in atrial fibrillation
    assert (f["time_to_e_ms"] > f["time_to_s_ms"]).all() and (f["displacement_mm"] > 5).all()
    same = motion_agreement(hospital_cohort.tdi_velocity, hospital_cohort.annular_displacement,
                            hospital_cohort.motion_rr_ms, hospital_cohort.tdi_velocity,
                            hospital_cohort.annular_displacement, hospital_cohort.motion_rr_ms)
    assert same["velocity_rmse_cm_s"] == 0 and same["e_prime_r"] == pytest.approx(1.0)
    # an untrained generator's cycle may have no diastolic trough, its lowest point at the R wave: features still
    # come out from this cycle alone, and a' is missing
    odd = np.full((1, 200), 0.1)
    odd[0, :3] = -5.0
    flat = motion_features(odd, np.zeros((1, 200)), [800.0])
    assert flat["a_prime"].isna().all() and np.isfinite(flat["e_prime"]).all() and flat["time_to_e_ms"][0] < 800


def test_motion_gan_trains_saves_generates_and_refuses_tampered_weights(tmp_path, hospital_dir):
    ingest([hospital_dir / "wfdb"], tmp_path / "store", fs=100, rate=100, workers=1, identifiers="keep", progress=False)
    manifest = Store(tmp_path / "store").manifest
    cohort = pd.DataFrame({"ecg_row": manifest["row"], "patient_id": manifest["patient_id"].astype(str),
                           "split": np.resize(["train", "train", "train", "val", "test"], len(manifest))})
    cohort.to_parquet(tmp_path / "cohort.parquet")
    result = CliRunner().invoke(app, [
        "motion", "train", "--store", str(tmp_path / "store"), "--cohort", str(tmp_path / "cohort.parquet"),
        "--motion", str(hospital_dir / "truth" / "motion.parquet"), "--out", str(tmp_path / "run"),
        "--encoder", "compact_cnn_tiny", "--epochs", "2", "--batch-size", "16"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "model" / "metrics.json").read_text())
    assert {"velocity_rmse_cm_s", "e_prime_r", "s_prime_r"} <= set(metrics)
    logged = pd.read_csv(tmp_path / "run" / "logs" / "version_0" / "metrics.csv")
    assert {"train/d_loss", "train/adversarial", "val/recon"} <= set(logged.columns)

    out = tmp_path / "motion.parquet"
    result = CliRunner().invoke(app, ["motion", "generate", str(tmp_path / "run" / "model"), "--store",
                                      str(tmp_path / "store"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    assert len(table) == len(manifest) and {"e_prime", "s_prime", "tdi_velocity_cm_s", "rr_ms"} <= set(table.columns)
    assert len(table["tdi_velocity_cm_s"].iloc[0]) == 200 and table["rr_ms"].between(200, 3000).all()

    measured = CliRunner().invoke(app, ["motion", "features", str(hospital_dir / "truth" / "motion.parquet"),
                                        "--out", str(tmp_path / "measured.parquet")])
    assert measured.exit_code == 0, measured.output
    features = pd.read_parquet(tmp_path / "measured.parquet")
    assert {"patient_id", "s_prime", "e_prime", "a_prime", "time_to_e_ms"} <= set(features.columns)
    assert features["e_prime"].between(2, 25).all()
    bad_table = CliRunner().invoke(app, ["motion", "features", str(tmp_path / "cohort.parquet"), "--out",
                                         str(tmp_path / "x.parquet")])
    assert bad_table.exit_code != 0 and "rr_ms" in bad_table.output

    weights = tmp_path / "run" / "model" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(MotionError, match="checksum"):
        load_generator(tmp_path / "run" / "model")
    bad = CliRunner().invoke(app, ["motion", "train", "--store", str(tmp_path / "store"), "--cohort",
                                   str(tmp_path / "cohort.parquet"), "--motion", str(tmp_path / "cohort.parquet"),
                                   "--out", str(tmp_path / "run2")])
    assert bad.exit_code != 0 and "tdi_velocity_cm_s" in bad.output


def test_linear_upsampling_matches_torch_and_has_a_deterministic_backward():
    from torch import nn

    from ecgscope.motion.generator import LinearUpsample2x

    x = torch.randn(3, 4, 25, requires_grad=True)
    want = nn.Upsample(scale_factor=2, mode="linear", align_corners=False)(x)
    torch.testing.assert_close(LinearUpsample2x()(x), want)
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        LinearUpsample2x()(x).square().sum().backward()  # plain slices and sums: deterministic on any device
    finally:
        torch.use_deterministic_algorithms(previous)
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_a_pretrained_encoder_starts_the_generator_with_its_own_contract(tmp_path, hospital_dir):
    from ecgscope.models import create_model
    from ecgscope.motion import train_motion
    from ecgscope.signal import Pipeline
    from ecgscope.train import TaskSpec, save_model

    ingest([hospital_dir / "wfdb"], tmp_path / "store", fs=100, rate=100, workers=1, identifiers="keep", progress=False)
    manifest = Store(tmp_path / "store").manifest
    cohort = pd.DataFrame({"ecg_row": manifest["row"], "patient_id": manifest["patient_id"].astype(str),
                           "split": np.resize(["train", "train", "val", "test"], len(manifest))})
    theirs = Pipeline(50.0, 400, [{"name": "zscore_lead"}])
    torch.manual_seed(3)
    encoder = create_model("compact_cnn_tiny", num_outputs=0)
    start = save_model(tmp_path / "encoder", encoder, "compact_cnn_tiny", TaskSpec(), theirs)
    run = train_motion(tmp_path / "store", cohort, pd.read_parquet(hospital_dir / "truth" / "motion.parquet"),
                       tmp_path / "run", init_encoder=start, epochs=1, batch_size=16, progress=False)
    loaded = load_generator(run)
    assert loaded.pipeline == theirs and loaded.info["encoder_init"] == str(start)
