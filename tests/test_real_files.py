"""The WFDB reader on the real records in ../shared/data agrees with the wfdb package sample for sample."""

import numpy as np
import pytest
import wfdb

from ecgscope.io import wfdb as wfdb_io
from ecgscope.leads import STANDARD_LEADS

from .conftest import SHARED_DATA

RECORDS = ["ludb/1", "ptbdb/s0010_re", "cinc2021/HR06000", "cinc2021/E07500", "cinc2021/JS20000"]


def test_shared_data_is_present():
    # Fail loudly rather than skip: CI runs with shared/ beside the repository.
    assert (SHARED_DATA / "README.md").exists(), f"real ECG files expected at {SHARED_DATA}"


@pytest.mark.parametrize("rel", RECORDS)
def test_reader_matches_wfdb(rel):
    path = SHARED_DATA / rel
    reference = wfdb.rdrecord(str(path))
    ecg = next(wfdb_io.read(path))
    assert ecg.fs == reference.fs
    assert [n.lower() for n in ecg.leads] == [n.lower() for n in reference.sig_name]
    np.testing.assert_allclose(ecg.signal, reference.p_signal.T.astype(np.float32), rtol=1e-6, atol=1e-6)
    standard = ecg.to_standard()
    assert standard.leads == STANDARD_LEADS and standard.signal.shape[0] == 12


def test_lower_case_and_frank_leads_are_named_canonically():
    ecg = next(wfdb_io.read(SHARED_DATA / "ptbdb" / "s0010_re.hea"))
    assert ecg.leads[:6] == ("I", "II", "III", "aVR", "aVL", "aVF") and ecg.leads[-3:] == ("vx", "vy", "vz")
    assert ecg.fs == 1000 and ecg.duration_s == pytest.approx(38.4)
    assert ecg.meta["units_conversion"] == "none (mV)"
