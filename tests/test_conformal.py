import numpy as np
import pytest

from ecgscope.errors import NotFittedError
from ecgscope.evaluate import SplitConformal


@pytest.mark.parametrize("alpha", [0.1, 0.2])
@pytest.mark.parametrize("normalised", [False, True])
def test_split_conformal_covers_at_the_stated_rate(alpha, normalised):
    rng = np.random.default_rng(0)
    covered = []
    for _ in range(40):  # repeat calibration / test draws: average coverage within tolerance
        x = rng.uniform(0, 1, 3000)
        noise_sd = 1 + 3 * x  # heteroscedastic
        y = 2 * x + rng.normal(0, noise_sd)
        pred, std = 2 * x + rng.normal(0, 0.2, x.size), noise_sd * rng.uniform(0.7, 1.3, x.size)
        cal, test = slice(0, 1000), slice(1000, None)
        conf = SplitConformal(alpha).fit(y[cal], pred[cal], std[cal] if normalised else None)
        lo, hi = conf.interval(pred[test], std[test] if normalised else None)
        covered.append(np.mean((y[test] >= lo) & (y[test] <= hi)))
    assert np.mean(covered) == pytest.approx(1 - alpha, abs=0.015)
    assert min(covered) > 1 - alpha - 0.05


def test_normalised_intervals_adapt_and_state_round_trips():
    rng = np.random.default_rng(1)
    y, pred, std = rng.normal(0, 2, 500), np.zeros(500), np.full(500, 2.0)
    conf = SplitConformal(0.1).fit(y, pred, std)
    lo, hi = conf.interval(np.zeros(2), np.array([1.0, 3.0]))
    assert (hi - lo)[1] == pytest.approx(3 * (hi - lo)[0])
    again = SplitConformal.from_dict(conf.to_dict())
    np.testing.assert_array_equal(again.interval(np.zeros(2), np.array([1.0, 3.0]))[1], hi)
    with pytest.raises(NotFittedError):
        SplitConformal().interval(np.zeros(2))
