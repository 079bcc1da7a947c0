"""What the simulator writes is read by the reference libraries with the right shapes, units and names."""

import json

import h5py
import numpy as np
import pandas as pd
import pytest
import wfdb

from ecgscope.io import wfdb as wfdb_io
from ecgscope.leads import STANDARD_LEADS
from ecgscope.simulate import simulate_cohort
from ecgscope.simulate.export import write_cohort

IDX = {name: STANDARD_LEADS.index(name) for name in STANDARD_LEADS}


def _records(root):
    db = pd.read_csv(root / "wfdb" / "ptbxl_database.csv")
    for col in ("filename_hr", "filename_lr"):
        for rel in db[col]:
            yield rel, wfdb.rdrecord(str(root / "wfdb" / rel))


def test_every_wfdb_record_obeys_einthoven_and_goldberger(hospital_dir):
    n = 0
    for rel, rec in _records(hospital_dir):
        d = rec.d_signal if rec.d_signal is not None else wfdb.rdrecord(str(hospital_dir / "wfdb" / rel),
                                                                         physical=False).d_signal
        di, dii = d[:, IDX["I"]].astype(int), d[:, IDX["II"]].astype(int)
        # exact in the stored integers ...
        np.testing.assert_array_equal(d[:, IDX["III"]], dii - di)
        np.testing.assert_array_equal(2 * d[:, IDX["aVR"]], -(di + dii))
        np.testing.assert_array_equal(2 * d[:, IDX["aVL"]], 2 * di - dii)
        np.testing.assert_array_equal(2 * d[:, IDX["aVF"]], 2 * dii - di)
        # ... and to float precision in physical units
        p = rec.p_signal
        np.testing.assert_allclose(p[:, IDX["I"]] + p[:, IDX["III"]], p[:, IDX["II"]], atol=1e-9)
        np.testing.assert_allclose(p[:, IDX["aVR"]] + p[:, IDX["aVL"]] + p[:, IDX["aVF"]], 0, atol=1e-9)
        n += 1
    assert n == 2 * 40  # 500 Hz and 100 Hz trees


def test_one_wfdb_tree_is_the_same_bytes_as_that_tree_beside_the_other(tmp_path, hospital_dir, hospital_cohort):
    # the demo writes only the 100 Hz tree it reads; it must be the tree a full write holds, byte for byte,
    # and the database must not list 500 Hz files that are not there
    only = write_cohort(hospital_cohort, tmp_path / "lr", formats=("wfdb",), progress=False, workers=2,
                        wfdb_rates=(100,))
    assert not (only / "wfdb" / "records500").exists()
    db = pd.read_csv(only / "wfdb" / "ptbxl_database.csv", keep_default_na=False)
    assert (db.filename_hr == "").all() and len(db) == len(hospital_cohort)
    for rel in db.filename_lr:
        for ext in (".hea", ".dat"):
            assert (only / "wfdb" / f"{rel}{ext}").read_bytes() == (hospital_dir / "wfdb" / f"{rel}{ext}").read_bytes()
    with pytest.raises(ValueError, match="choose from 500, 100 Hz"):
        write_cohort(hospital_cohort, tmp_path / "x", formats=("wfdb",), progress=False, wfdb_rates=(250,))
    assert not (tmp_path / "x").exists()


def test_wfdb_records_have_ptbxl_layout_units_and_names(hospital_dir, hospital_cohort):
    db = pd.read_csv(hospital_dir / "wfdb" / "ptbxl_database.csv")
    assert {"ecg_id", "patient_id", "age", "sex", "scp_codes", "strat_fold", "filename_lr", "filename_hr"} <= set(db)
    assert db.filename_hr.str.match(r"records500/\d{5}/\d{5}_hr").all()
    assert db.strat_fold.between(1, 10).all()
    rec = wfdb.rdrecord(str(hospital_dir / "wfdb" / db.filename_hr[0]))
    assert rec.fs == 500 and rec.sig_name == list(STANDARD_LEADS) and set(rec.units) == {"mV"}
    assert rec.p_signal.shape == (5000, 12)
    lowres = wfdb.rdrecord(str(hospital_dir / "wfdb" / db.filename_lr[0]))
    assert lowres.fs == 100 and lowres.p_signal.shape == (1000, 12)
    # the file holds what the simulator rendered, in mV
    batch = next(hospital_cohort.iter_batches(0, 1))
    np.testing.assert_allclose(rec.p_signal.T, batch.signal[0], atol=1e-6)
    # our own reader agrees with wfdb
    ecg = next(wfdb_io.read(hospital_dir / "wfdb" / (db.filename_hr[0] + ".hea")))
    np.testing.assert_allclose(ecg.signal, rec.p_signal.T, atol=1e-6)


def test_code15_layout(hospital_dir):
    with h5py.File(hospital_dir / "code15" / "exams_part0.hdf5") as f:
        tracings, exam_id = f["tracings"][:], f["exam_id"][:]
    assert tracings.shape == (40, 4096, 12) and tracings.dtype == np.float32
    exams = pd.read_csv(hospital_dir / "code15" / "exams.csv")
    assert list(exams.columns[:3]) == ["exam_id", "age", "is_male"] and "timey" in exams
    assert set(exams.exam_id) == set(exam_id)
    # 10 s at 500 Hz resampled to 400 Hz = 4000 samples, centred in 4096 with zero padding
    assert np.all(tracings[:, :48] == 0) and np.all(tracings[:, -48:] == 0)
    assert np.abs(tracings[:, 100:3990]).max(axis=(1, 2)).min() > 0.2  # QRS of several tenths of a mV


def test_echonext_layout(echo_dir):
    root = echo_dir / "echonext"
    meta = pd.read_csv(root / "echonext_metadata_100k.csv")
    assert {"patient_key", "ecg_key", "split", "shd_moderate_or_greater_flag", "lvef_lte_45_flag"} <= set(meta)
    total = 0
    for split in ("train", "val", "test"):
        waves = np.load(root / f"EchoNext_{split}_waveforms.npy")
        tab = np.load(root / f"EchoNext_{split}_tabular_features.npy")
        assert waves.shape[1:] == (1, 2500, 12) and tab.shape == (len(waves), 7)
        assert (meta.split == split).sum() == len(waves)
        if len(waves):
            np.testing.assert_allclose(waves.mean(axis=2), 0, atol=1e-4)  # z-scored per lead
            np.testing.assert_allclose(waves.std(axis=2), 1, atol=1e-3)
        total += len(waves)
    assert total == 40
    assert meta.groupby("patient_key").split.nunique().eq(1).all()  # splits are by patient


def test_tables_and_manifest(hospital_dir):
    manifest = json.loads((hospital_dir / "cohort.json").read_text())
    assert manifest["preset"] == "hospital" and manifest["units"] == "mV" and manifest["n_ecgs"] == 40
    mri = pd.read_parquet(hospital_dir / "measurements" / "mri.parquet")
    assert {"patient_id", "study_date", "rvef", "rvedvi", "lvef"} <= set(mri)
    outcomes = pd.read_parquet(hospital_dir / "outcomes.parquet")
    assert {"patient_id", "index_date", "followup_years", "event"} <= set(outcomes)
    motion = pd.read_parquet(hospital_dir / "truth" / "motion.parquet")
    assert len(motion.tdi_velocity_cm_s.iloc[0]) == 200
    oracle = pd.read_parquet(hospital_dir / "truth" / "oracle.parquet")
    assert len(oracle) == 40 and "qrs_duration_ms" in oracle


def test_same_seed_same_bytes_whatever_the_worker_count(tmp_path):
    cohort = simulate_cohort("ukb", n=150, seed=21)
    a = write_cohort(cohort, tmp_path / "a", progress=False, workers=1)
    b = write_cohort(simulate_cohort("ukb", n=150, seed=21), tmp_path / "b", progress=False, workers=2)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    from ecgscope.simulate import export

    def explode(self, batch):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export._Code15Sink, "add", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        write_cohort(simulate_cohort("code15", n=10, seed=0), tmp_path / "out", progress=False, workers=1)
    assert list(tmp_path.iterdir()) == []


def test_echonext_needs_echo_labels(tmp_path):
    with pytest.raises(ValueError, match="needs echo labels.*mri imaging"):
        write_cohort(simulate_cohort("hospital", n=3), tmp_path / "x", formats=("echonext",), progress=False)


def test_refuses_to_overwrite_without_permission(tmp_path):
    cohort = simulate_cohort("prospective", n=3, seed=0)
    write_cohort(cohort, tmp_path / "out", progress=False, workers=1)
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_cohort(cohort, tmp_path / "out", progress=False, workers=1)
    write_cohort(cohort, tmp_path / "out", progress=False, workers=1, overwrite=True)
