"""Bootstrap intervals: patient-level resampling and paired model comparisons."""

import numpy as np

from ecgscope.evaluate import auroc, bootstrap_ci, mae, paired_difference_ci
from ecgscope.evaluate.metrics import PatientResampler, per_resample


def _scores(rng, n=400, noise_a=1.0, noise_b=1.0):
    y = rng.integers(0, 2, n)
    shared = rng.normal(size=n)
    return y, y + noise_a * shared, y + noise_b * shared + 0.8 * rng.normal(size=n)


def test_paired_difference_of_identical_models_is_exactly_zero():
    y, a, _ = _scores(np.random.default_rng(0))
    assert paired_difference_ci(auroc, y, a, a) == (0.0, 0.0, 0.0)


def test_paired_difference_finds_a_better_model_that_separate_intervals_cannot():
    y, a, b = _scores(np.random.default_rng(1))
    est, lo, hi = paired_difference_ci(auroc, y, a, b)
    assert est == auroc(y, a) - auroc(y, b)
    assert 0 < lo < est < hi
    _, a_lo, _ = bootstrap_ci(auroc, y, a)
    _, _, b_hi = bootstrap_ci(auroc, y, b)
    assert a_lo < b_hi  # the two separate intervals overlap, yet the paired one excludes zero
    assert paired_difference_ci(auroc, y, b, a)[0] == -est


def test_bootstrap_resamples_patients_not_rows():
    # one patient with 50 identical ECGs and 50 patients with one each: row resampling would make the
    # heavy patient's share vary far less than patient resampling does
    rng = np.random.default_rng(2)
    y = np.concatenate([np.zeros(50), rng.normal(size=50)])
    pred = np.concatenate([np.full(50, 10.0), y[50:]])
    groups = np.concatenate([np.zeros(50, int), np.arange(1, 51)])
    _, lo_p, hi_p = bootstrap_ci(mae, y, pred, groups, n_boot=300)
    _, lo_r, hi_r = bootstrap_ci(mae, y, pred, None, n_boot=300)
    assert (hi_p - lo_p) > 3 * (hi_r - lo_r)


def test_a_patient_resample_holds_each_drawn_patients_rows_in_draw_order():
    groups = np.array(["c", "a", "b", "a", "c", "a", "d"])  # unsorted, uneven: 3, 1, 2 and 1 rows
    draws = [PatientResampler(groups).draw(np.random.default_rng(seed)) for seed in range(20)]
    patients = np.unique(groups)
    for seed, rows in enumerate(draws):
        drawn = patients[np.random.default_rng(seed).integers(0, 4, 4)]  # the same generator, the same patients
        expected = np.concatenate([np.flatnonzero(groups == p) for p in drawn])
        assert rows.tolist() == expected.tolist()
    one_each = PatientResampler(np.arange(5)).draw(np.random.default_rng(0))
    assert one_each.tolist() == np.random.default_rng(0).integers(0, 5, 5).tolist()


def test_a_per_resample_figure_is_computed_once_per_pair_of_arrays():
    calls = []
    counts = per_resample(lambda y, p: calls.append(1) or float(np.sum(p[y == 1])))
    y, p = np.array([0, 1, 1]), np.array([0.2, 0.7, 0.9])
    assert counts(y, p) == counts(y, p) == 1.6 and len(calls) == 1
    assert counts(y.copy(), p) == 1.6 and len(calls) == 2  # another resample: other arrays, computed again
