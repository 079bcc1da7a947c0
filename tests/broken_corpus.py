"""Twenty broken inputs, each with the words its quarantine reason must contain.

Built on demand from real records (LUDB, CODE-15%) and independent writers, so the corpus stays small in the
repository and every case is readable here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import wfdb

from .conftest import SHARED_DATA
from .writers import MUSE_LEADS, write_dicom_ecg, write_muse

BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<RestingECG><PatientDemographics><PatientID>&lol4;</PatientID></PatientDemographics></RestingECG>"""


def _ludb_uv() -> np.ndarray:
    return wfdb.rdrecord(str(SHARED_DATA / "ludb" / "1")).p_signal * 1000  # (5000, 12) uV


def _wfdb(folder: Path, name: str, signal_uv: np.ndarray, names: list[str], fs: float = 500,
          units: str = "uV") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(name, fs=fs, units=[units] * len(names), sig_name=names, d_signal=np.round(signal_uv).astype(np.int16),
                fmt=["16"] * len(names), adc_gain=[1.0] * len(names), baseline=[0] * len(names),
                write_dir=str(folder))
    return folder / f"{name}.hea"


def _edit_header(hea: Path, old: str, new: str) -> None:
    hea.write_text(hea.read_text().replace(old, new, 1))


def build(root: Path) -> dict[Path, str]:
    """Write the corpus under ``root``; return {path to ingest: expected words in the reason}."""
    root.mkdir(parents=True, exist_ok=True)
    uv = _ludb_uv()
    names = wfdb.rdrecord(str(SHARED_DATA / "ludb" / "1")).sig_name
    lead_dict = {n: uv[:, [m.upper() for m in names].index(n.upper())] for n in MUSE_LEADS}
    cases: dict[Path, str] = {}

    hea = _wfdb(root / "truncated", "truncated", uv, names)
    os.truncate(hea.with_suffix(".dat"), 30_001)
    cases[hea] = "truncated"
    hea = _wfdb(root / "mismatch", "mismatch", uv, names)
    _edit_header(hea, "mismatch 12 500 5000", "mismatch 12 500 6000")
    cases[hea] = "header declares 6,000 samples"
    hea = _wfdb(root / "huge", "huge", uv, names)
    _edit_header(hea, "huge 12 500 5000", "huge 12 500 99999999999999")
    cases[hea] = "not an ECG record"
    hea = _wfdb(root / "slow", "slow", uv, names)
    _edit_header(hea, "slow 12 500 5000", "slow 12 5 5000")
    cases[hea] = "sampling rate 5 Hz"
    flat = uv.copy()
    flat[:, 8] = 0
    cases[_wfdb(root / "flat", "flat", flat, names)] = "flat lead(s) V3"
    cases[_wfdb(root / "v7", "v7", uv, names[:11] + ["V7"])] = "unknown lead name 'V7'"
    cases[_wfdb(root / "microvolts", "microvolts", uv, names, units="mV")] = "look like microvolts"
    nan = uv / 1000
    nan[100:110, 2] = np.nan
    np.savetxt(root / "nan.csv", nan, delimiter=",", header=",".join(names), comments="")
    cases[root / "nan.csv"] = "non-finite"
    inf = (uv / 1000).T.copy()
    inf[4, 7] = np.inf
    np.save(root / "inf.npy", inf)
    cases[root / "inf.npy"] = "non-finite"

    seven = dict(list(lead_dict.items())[:7])
    cases[write_muse(root / "missing_v6.xml", seven)] = "missing ['V6']"
    cases[write_muse(root / "bad_base64.xml", lead_dict, raw_override={"V2": "!!!not*base64!!!"})] = "lead V2"
    (root / "empty.xml").write_bytes(b"")
    cases[root / "empty.xml"] = "is not GE MUSE"
    (root / "garbage.xml").write_bytes(b"<RestingECG><Waveform>\x00\xff\xfe garbage <<<")
    cases[root / "garbage.xml"] = "not well-formed XML"
    (root / "bomb.xml").write_text(BOMB)
    cases[root / "bomb.xml"] = "refused for safety"
    (root / "empty.hea").write_text("")
    cases[root / "empty.hea"] = "header"

    (root / "corrupt.hdf5").write_bytes(os.urandom(2048))
    cases[root / "corrupt.hdf5"] = "not a CODE-15% shard"
    real = h5py.File(SHARED_DATA / "code15" / "exams_part0.hdf5")["tracings"][:2]
    (root / "zeros").mkdir()
    with h5py.File(root / "zeros" / "shard.hdf5", "w") as f:
        f["tracings"] = np.stack([real[0], np.zeros_like(real[0])])
        f["exam_id"] = np.array([901, 902])
    cases[root / "zeros" / "shard.hdf5"] = "all-zero tracing"  # exam 902; exam 901 is good

    twelve = np.round(uv).T
    path = write_dicom_ecg(root / "nowave.dcm", {n: twelve[i] for i, n in enumerate(
        ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"])})
    import pydicom

    ds = pydicom.dcmread(path)
    del ds.WaveformSequence
    ds.save_as(path)
    cases[path] = "no WaveformSequence"
    (root / "notes.txt").write_text("not an ECG")
    cases[root / "notes.txt"] = "unknown ECG format"
    # the same ECG exported twice (here: the same record in two folders) is stored once
    for folder in ("dup_a", "dup_b"):
        _wfdb(root / folder, "rec42", uv / 1000, names, units="mV")
    cases[root / "dup_b" / "rec42.hea"] = "duplicate: the same signal is already stored from"
    shutil.copy(SHARED_DATA / "ludb" / "1.hea", root / "good.hea")
    shutil.copy(SHARED_DATA / "ludb" / "1.dat", root / "1.dat")
    return cases


GOOD = ("good.hea", "dup_a/rec42.hea", "zeros/shard.hdf5")  # inputs that hold valid records
