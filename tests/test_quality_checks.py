"""The per-record checks ingest runs on every ECG give the same answers as the plain formulas they replace."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ecgscope.io.base import quantile_exceeds
from ecgscope.signal.quality import saturated_fraction


def _saturated_fraction_lead_by_lead(signal: np.ndarray, run: int = 10) -> float:
    """The formula as written first: one lead and one extreme at a time."""
    hits = 0
    for row in signal:
        for extreme in (row.max(), row.min()):
            at = np.concatenate([[0], (row == extreme).astype(np.int8), [0]])
            edges = np.flatnonzero(np.diff(at))
            lengths = edges[1::2] - edges[::2]
            hits += lengths[lengths >= run].sum()
    return float(hits / signal.size)


@pytest.mark.parametrize("seed", range(40))
def test_saturated_fraction_equals_the_lead_by_lead_formula(seed):
    rng = np.random.default_rng(seed)
    leads, n = int(rng.integers(1, 13)), int(rng.integers(1, 400))
    signal = rng.normal(0, 0.5, (leads, n)).astype(np.float32).round(int(rng.integers(0, 3)))  # ties at extremes
    for _ in range(int(rng.integers(0, 6))):  # clipped stretches of any length, at the top or the bottom
        lead, start, length = int(rng.integers(leads)), int(rng.integers(n)), int(rng.integers(1, 30))
        signal[lead, start:start + length] = signal[lead].max() if rng.random() < 0.5 else signal[lead].min()
    if rng.random() < 0.2:
        signal[int(rng.integers(leads))] = 1.5  # a flat lead: one run at both extremes
    if rng.random() < 0.2:
        signal[int(rng.integers(leads)), int(rng.integers(n))] = np.nan
    run = int(rng.integers(1, 15))
    assert saturated_fraction(signal, run) == _saturated_fraction_lead_by_lead(signal, run)


def test_a_clipped_stretch_counts_and_a_short_one_does_not():
    signal = np.sin(np.linspace(0, 20, 1000))[None].repeat(3, 0)
    signal[1, 100:160] = 2.0  # 60 samples at the top
    signal[2, 500:505] = -2.0  # 5: under the run of 10
    assert saturated_fraction(signal) == pytest.approx(60 / signal.size)


@settings(max_examples=300, deadline=None)
@given(values=arrays(np.float32, st.integers(1, 3000), elements=st.floats(0, 40, width=32)),
       q=st.sampled_from([0.5, 0.9, 0.99, 0.999, 1.0]), threshold=st.floats(0, 40, width=32))
def test_quantile_exceeds_is_numpys_answer(values, q, threshold):
    assert quantile_exceeds(values, q, threshold) == bool(np.quantile(values, q) > threshold)


@pytest.mark.parametrize("seed", range(20))
def test_quantile_exceeds_at_the_boundary(seed):
    """Counts right at the positions that decide it, where a shortcut off by one would answer wrongly."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 20000))
    values = np.abs(rng.normal(0, 3, n)).astype(np.float32)
    k = int(np.floor(0.999 * (n - 1)))
    for above in range(max(0, n - k - 4), min(n, n - k + 4) + 1):  # that many values above 25
        trial = values.copy()
        trial[:above] = 25.0 + rng.random(above).astype(np.float32)
        trial[above:] = np.minimum(trial[above:], 25.0)
        assert quantile_exceeds(trial, 0.999, 25.0) == bool(np.quantile(trial, 0.999) > 25.0)
