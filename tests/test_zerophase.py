"""ecgscope's zero-phase filter is scipy's sosfiltfilt to the bit, with the initial conditions cached."""

import numpy as np
import pytest
from scipy import signal

from ecgscope.signal.zerophase import sosfiltfilt

FILTERS = {
    "beat band 0.5-40 Hz at 100 Hz": signal.butter(2, [0.5, 40], btype="band", fs=100, output="sos"),
    "slope band 8-20 Hz at 100 Hz": signal.butter(2, [8, 20], btype="band", fs=100, output="sos"),
    "wander low-pass at 400 Hz": signal.butter(2, 0.5, btype="low", fs=400, output="sos"),
    "ECGFounder band at 500 Hz": signal.butter(4, [0.67, 40], btype="band", fs=500, output="sos"),
    "50 Hz notch": signal.tf2sos(*signal.iirnotch(50, 30, fs=500)),
}


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize(("shape", "axis"), [((12, 1000), -1), ((12, 1000), 1), ((1000,), 0), ((40, 12), 0),
                                             ((2, 12, 300), -1)])
@pytest.mark.parametrize("padlen", [None, 0, 7])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_equal_to_scipy_bit_for_bit(name, shape, axis, padlen, dtype):
    sos = FILTERS[name]
    x = np.random.default_rng(len(name) + sum(shape)).normal(size=shape).astype(dtype)
    expected = signal.sosfiltfilt(sos, x, axis=axis, padlen=padlen)
    for _ in range(2):  # the second call takes the cached initial conditions
        got = sosfiltfilt(sos, x, axis=axis, padlen=padlen)
        assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_too_short_a_signal_is_refused_as_scipy_refuses_it():
    sos = FILTERS["beat band 0.5-40 Hz at 100 Hz"]
    with pytest.raises(ValueError, match="padlen"):
        sosfiltfilt(sos, np.zeros(5))
    with pytest.raises(ValueError, match="padlen"):
        signal.sosfiltfilt(sos, np.zeros(5))
