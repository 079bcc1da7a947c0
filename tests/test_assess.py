"""The checks behind "cannot assess": beat SNR, pacing spikes, the out-of-distribution percentile, each against
a known truth."""

from __future__ import annotations

import numpy as np
import pytest

from ecgscope import io
from ecgscope.signal.quality import beat_snr_db, pacing_spikes
from ecgscope.simulate import simulate_cohort
from ecgscope.train.ood import FAR_PERCENTILE, REFERENCE_MAX_ECGS, OODReference, reference_rows

from .conftest import SHARED_DATA


def test_beat_snr_falls_with_the_simulated_noise():
    medians = []
    for snr in (24.0, 12.0, 0.0, -6.0):
        ecgs = simulate_cohort("ukb", n=8, seed=2, snr_db=snr).records()
        medians.append(np.median([np.median(beat_snr_db(e.signal, e.fs)) for e in ecgs]))
    assert all(a > b for a, b in zip(medians, medians[1:], strict=False)), medians
    assert medians[-1] < 6.0 < medians[1]  # -6 dB is refused as too noisy, 12 dB is not


def test_pacing_spikes_are_found_where_injected_and_not_in_real_or_simulated_ecgs():
    for ecg in simulate_cohort("ukb", n=10, seed=3).records():
        assert pacing_spikes(ecg.signal, ecg.fs) < 3
        paced = ecg.signal.copy()
        paced[[0, 1, 6, 7, 8], 200::400] += 2.0  # 2 mV, one sample, every 0.8 s
        assert pacing_spikes(paced, ecg.fs) >= 10
        assert pacing_spikes(paced[:, ::5], ecg.fs / 5) is None  # 100 Hz: not checked
    for header in sorted(SHARED_DATA.glob("*/*.hea")):
        ecg = next(io.read(header.with_suffix(""))).to_standard()
        assert pacing_spikes(ecg.signal, ecg.fs) < 3, header.name


def test_out_of_distribution_refuses_one_in_a_hundred_exchangeable_ecgs_and_most_shifted_ones():
    rng = np.random.default_rng(0)
    cov = np.diag(np.linspace(0.5, 2.0, 16))
    train, calibration, test = (rng.multivariate_normal(np.zeros(16), cov, n) for n in (3000, 2000, 20000))
    reference = OODReference.fit(train, calibration)
    refused = np.mean(reference.percentile(test) > FAR_PERCENTILE)
    # coverage of the 99 % acceptance region on data exchangeable with the calibration set
    assert refused == pytest.approx(1 - FAR_PERCENTILE / 100, abs=0.005)
    shifted = rng.multivariate_normal(np.full(16, 1.5), cov, 2000)
    assert np.mean(reference.percentile(shifted) > FAR_PERCENTILE) > 0.9
    assert reference.percentile(train[:1]).shape == (1,)


def test_a_trained_model_carries_its_reference_and_refuses_an_altered_one(small_model, tmp_path):
    import shutil

    from ecgscope.train import ArtifactError, load_model

    loaded = load_model(small_model)
    assert loaded.ood is not None and len(loaded.ood.calibration_distances) == loaded.card["out_of_distribution"][
        "n_calibration"]
    copy = shutil.copytree(small_model, tmp_path / "model")
    altered = OODReference(loaded.ood.mean + 1, loaded.ood.precision, loaded.ood.calibration_distances)
    altered.save(copy / "ood.safetensors")
    with pytest.raises(ArtifactError, match="ood.safetensors"):
        load_model(copy)


def test_the_ood_reference_is_fitted_on_a_bounded_seeded_draw():
    rows = np.arange(25_000) * 3
    drawn = reference_rows(rows, seed=1)
    assert len(drawn) == REFERENCE_MAX_ECGS and set(drawn) <= set(rows) and (np.diff(drawn) > 0).all()
    assert np.array_equal(drawn, reference_rows(rows, seed=1))
    assert not np.array_equal(drawn, reference_rows(rows, seed=2))
    assert np.array_equal(reference_rows(rows[:50], seed=1), rows[:50])  # small cohorts: every training ECG
