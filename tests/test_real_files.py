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


@pytest.mark.parametrize(("rel", "age", "sex"), [("cinc2021/JS20005", 83.0, "M"), ("ptbdb/s0010_re", 81.0, "F"),
                                                 ("ludb/1", 51.0, "F")])
def test_header_demographics_are_kept_and_every_record_has_a_patient(rel, age, sex):
    ecg = next(wfdb_io.read(SHARED_DATA / rel))
    comments = " ".join(wfdb.rdheader(str(SHARED_DATA / rel)).comments).lower()
    assert str(int(age)) in comments  # the reference: the header's own text
    assert ecg.meta["age"] == age and ecg.meta.get("sex") == sex
    assert ecg.patient_id == ecg.ecg_id == rel.split("/")[1]  # a lone record is its own patient


def test_demographics_reach_the_store_manifest(tmp_path):
    from ecgscope.store import Store, ingest

    ingest([SHARED_DATA / "cinc2021"], tmp_path / "store", workers=1, progress=False)
    store = Store(tmp_path / "store")
    manifest = store.manifest
    assert len(manifest) + len(store.quarantine) == 25  # two Ningbo records have flat chest leads
    assert manifest["age"].notna().all() and manifest["sex"].isin(["M", "F"]).all()
    assert (manifest["patient_id"] != "").all() and manifest["patient_id"].is_unique
