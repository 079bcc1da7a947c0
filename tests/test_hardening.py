"""Hardening: no file stops a batch, nothing is dropped or stored wrong, arguments are checked at the boundary.

Each case below was a reproducer in the hardening issue: a traceback that ended the run, a silent drop, or a
corrupt record stored. Each now ends quarantined with a reason a person can act on, while the good record
beside it is stored.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pydicom
import pytest
import wfdb
from typer.testing import CliRunner

from ecgscope.cli import app
from ecgscope.store import Store, ingest

from .conftest import SHARED_DATA, ludb_leads_uv
from .writers import MUSE_LEADS, write_dicom_ecg, write_hl7aecg, write_muse

LUDB = SHARED_DATA / "ludb" / "1"


def _copy_ludb(folder: Path, name: str, header_edit=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.dat").write_bytes((SHARED_DATA / "ludb" / "1.dat").read_bytes())
    text = (SHARED_DATA / "ludb" / "1.hea").read_text().replace("1.dat", f"{name}.dat")
    lines = text.splitlines()
    lines[0] = lines[0].replace("1 ", f"{name} ", 1)
    text = "\n".join(lines) + "\n"
    (folder / f"{name}.hea").write_text(header_edit(text) if header_edit else text)
    return folder / f"{name}.hea"


def _code15(path: Path, tracings=None, exam_id=None, **datasets) -> Path:
    real = h5py.File(SHARED_DATA / "code15" / "exams_part0.hdf5")["tracings"][:2]
    with h5py.File(path, "w") as f:
        f["tracings"] = real if tracings is None else tracings
        f["exam_id"] = np.array([11, 12]) if exam_id is None else exam_id
        for key, value in datasets.items():
            f[key] = value
    return path


def _muse(path: Path, edit) -> Path:
    uv = ludb_leads_uv()
    write_muse(path, {n: uv[n] for n in MUSE_LEADS})
    path.write_text(edit(path.read_text()))
    return path


def _aecg(path: Path, edit) -> Path:
    write_hl7aecg(path, ludb_leads_uv())
    path.write_text(edit(path.read_text()))
    return path


def _dicom(path: Path, drop: str) -> Path:
    write_dicom_ecg(path, ludb_leads_uv())
    ds = pydicom.dcmread(path)
    delattr(ds.WaveformSequence[0], drop)
    ds.save_as(path)
    return path


def _soft_link_to_itself(path: Path) -> Path:
    with h5py.File(path, "w") as f:
        f["tracings"] = h5py.SoftLink("/tracings")
        f["exam_id"] = np.array([1])
    return path


def _never_written(path: Path, n: int) -> Path:
    with h5py.File(path, "w") as f:
        f.create_dataset("tracings", (n, 4096, 12), dtype="f4", chunks=(1, 4096, 12))
        f.create_dataset("exam_id", (n,), dtype="i8")
    return path


def _scaled_gain(text: str, factor: float) -> str:
    lines = text.splitlines()
    for k in range(1, 13):
        fields = lines[k].split()
        gain, unit = fields[2].split("/") if "/" in fields[2] else (fields[2], "mV")
        value = float(gain.split("(")[0])
        rest = gain[len(gain.split("(")[0]):]
        fields[2] = f"{value * factor:g}{rest}/{unit}"
        lines[k] = " ".join(fields)
    return "\n".join(lines) + "\n"


#: name -> (builder(tmp) -> path to ingest, words the quarantine reason holds)
CASES = {
    # one bad file used to end the run with a traceback
    "wfdb_no_signal_lines": (lambda d: (d / "x.hea").write_text("x 12 500 5000\n") and d / "x.hea", "no signal lines"),
    "code15_tracings_group": (lambda d: _code15(d / "g.hdf5", tracings=None, exam_id=None) and _regroup(d / "g.hdf5"),
                              "'tracings' is a Group"),
    "code15_tracings_scalar": (lambda d: _code15(d / "s.hdf5", tracings=np.float32(1)), "has shape ()"),
    "code15_soft_link_loop": (lambda d: _soft_link_to_itself(d / "l.hdf5"), "tracings"),
    "code15_exam_id_short": (lambda d: _code15(d / "e.hdf5", exam_id=np.array([1])), "'exam_id' must be 2 whole"),
    "code15_exam_id_2d": (lambda d: _code15(d / "e2.hdf5", exam_id=np.array([[1, 2], [3, 4]])), "one per tracing"),
    "muse_exponent_400": (lambda d: _muse(d / "exp.xml", lambda t: t.replace(
        "<SampleExponent>0</SampleExponent>", "<SampleExponent>400</SampleExponent>")), "SampleExponent"),
    "aecg_increment_zero": (lambda d: _aecg(d / "inc.xml", lambda t: t.replace(
        'increment value="0.002"', 'increment value="0"')), "gives no sampling rate"),
    "aecg_scale_without_value": (lambda d: _aecg(d / "scale.xml", lambda t: t.replace(
        '<scale value="5.0" unit="uV" />', '<scale unit="uV" />', 1)), "<scale>"),
    "dicom_no_channel_count": (lambda d: _dicom(d / "c.dcm", "NumberOfWaveformChannels"),
                               "no NumberOfWaveformChannels"),
    "dicom_no_rate": (lambda d: _dicom(d / "r.dcm", "SamplingFrequency"), "no SamplingFrequency"),
    # sizes trusted before allocation
    "code15_never_written": (lambda d: _never_written(d / "big.hdf5", 300_000), "300,000 exams declared"),
    "code15_too_many": (lambda d: _never_written(d / "huge.hdf5", 10**8), "beyond the"),
    "muse_huge_lead": (lambda d: _muse(d / "huge.xml", lambda t: t.replace(
        "<LeadID>I</LeadID>", "<LeadID>I</LeadID><WaveFormData>" + "A" * (70 * 2**20) + "</WaveFormData>", 1)),
        "larger than any single ECG record"),
    # silently dropped
    "code15_zero_exams": (lambda d: _code15(d / "z.hdf5", tracings=np.zeros((0, 4096, 12), "f4"),
                                            exam_id=np.zeros(0, "i8")), "0 exams"),
    "code15_link_to_dev_zero": (lambda d: os.symlink("/dev/zero", d / "zero.hdf5") or d / "zero.hdf5",
                                "a character device"),
    # stored although corrupt
    "wfdb_negative_rate": (lambda d: _copy_ludb(d, "neg", lambda t: t.replace(" 500 ", " -500 ", 1)),
                           "not a plausible rate"),
    "wfdb_5_samples": (lambda d: _copy_ludb(d, "five", lambda t: t.replace(" 5000", " 5", 1)),
                       "header and signal disagree"),
    "wfdb_50_samples": (lambda d: _copy_ludb(d, "fifty", lambda t: t.replace(" 5000", " 50", 1)),
                        "header and signal disagree"),
    "wfdb_gain_10x_low": (lambda d: _copy_ludb(d, "gain", lambda t: _scaled_gain(t, 10)), "ten times too low"),
    "wfdb_gain_10x_high": (lambda d: _copy_ludb(d, "gainhi", lambda t: _scaled_gain(t, 0.1)), "ten times too high"),
    "code15_3_samples": (lambda d: _code15(d / "three.hdf5", tracings=_short_tracings(3)[:1],
                                           exam_id=np.array([11])), "shorter than"),
    "code15_boolean": (lambda d: _code15(d / "b.hdf5", tracings=np.ones((2, 4096, 12), bool)), "not real numbers"),
    "code15_complex": (lambda d: _code15(d / "c.hdf5", tracings=np.ones((2, 4096, 12), "c8")), "not real numbers"),
    "npy_complex": (lambda d: np.save(d / "c.npy", np.ones((12, 5000), "c8")) or d / "c.npy", "complex"),
    "muse_empty_units": (lambda d: _muse(d / "units.xml", lambda t: t.replace(
        "<LeadAmplitudeUnits>MICROVOLTS</LeadAmplitudeUnits>", "<LeadAmplitudeUnits></LeadAmplitudeUnits>")),
        "<LeadAmplitudeUnits> is empty"),
}


def _short_tracings(n: int) -> np.ndarray:
    out = np.zeros((2, 4096, 12), "f4")
    out[:, 2000:2000 + n] = np.random.default_rng(0).normal(0, 0.5, (2, n, 12))
    return out


def _regroup(path: Path) -> Path:
    with h5py.File(path, "a") as f:
        del f["tracings"]
        f.create_group("tracings")
    return path


def _reasons(store: Path, path: Path) -> list[str]:
    quarantine = Store(store).quarantine
    base = str(path.with_suffix("")) if path.suffix == ".hea" else str(path)
    hits = quarantine[(quarantine.source == base) | quarantine.source.str.startswith(base + "#")]
    return list(hits.reason)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_input_is_quarantined_with_its_reason_and_the_good_record_is_stored(case, tmp_path):
    build, words = CASES[case]
    folder = tmp_path / "in"
    folder.mkdir()
    path = build(folder)
    report = ingest([LUDB, path], tmp_path / "store", workers=1, progress=False, input_fs=500, input_units="mV")
    reasons = _reasons(tmp_path / "store", path)
    assert reasons and all(words in r for r in reasons), reasons
    assert len(reasons) == 1  # one row for a container, not one per empty slot
    assert report.added == 1 and len(Store(tmp_path / "store")) == 1
    again = ingest([LUDB, path], tmp_path / "store", workers=1, progress=False, input_fs=500, input_units="mV")
    assert again.added == 0 and again.rejected == 0  # a rerun neither crashes nor adds


def test_exams_csv_problems_refuse_the_shard_or_the_exam_not_the_run(tmp_path):
    for name, table in {"no_patient": pd.DataFrame({"exam_id": [11, 12], "age": [50, 60]}),
                        "conflict": pd.DataFrame({"exam_id": [11, 11, 12], "patient_id": [1, 2, 3],
                                                  "age": [50, 50, 60], "is_male": [1, 1, 0]})}.items():
        folder = tmp_path / name
        folder.mkdir()
        _code15(folder / "shard.hdf5")
        table.to_csv(folder / "exams.csv", index=False)
        report = ingest([folder, LUDB], tmp_path / f"{name}_store", workers=1, progress=False)
        reasons = list(Store(tmp_path / f"{name}_store").quarantine.reason)
        if name == "no_patient":
            assert report.added == 1 and reasons == ["exams table has no column patient_id: its exams cannot be "
                                                     "linked to patients"]
        else:  # exam 11 has two different rows; exam 12 is fine
            assert report.added == 2 and len(reasons) == 1 and "exam 11" in reasons[0]


def test_exams_csv_is_streamed_and_each_shard_keeps_only_its_own_rows(tmp_path, monkeypatch):
    from ecgscope.io import code15

    monkeypatch.setattr(code15, "EXAMS_CHUNK_ROWS", 2)  # conflicting rows of exam 21 fall in different chunks
    _code15(tmp_path / "a.hdf5", exam_id=np.array([11, 12]))
    _code15(tmp_path / "b.hdf5", exam_id=np.array([21, 22]))
    pd.DataFrame({"exam_id": [11, 21, 12, 22, 99, 21], "patient_id": [1, 2, 3, 4, 5, 6], "age": [50] * 6,
                  "is_male": [1] * 6}).to_csv(tmp_path / "exams.csv", index=False)
    code15._exams.cache_clear()
    a, a_conflicts = code15._exams(str(tmp_path / "a.hdf5"))
    b, b_conflicts = code15._exams(str(tmp_path / "b.hdf5"))
    assert sorted(a.index) == [11, 12] and not a_conflicts  # exam 99 and the other shard's rows are not held
    assert sorted(b.index) == [22] and b_conflicts == {21}
    code15._exams.cache_clear()


def test_a_named_pipe_is_refused_without_being_opened(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    os.mkfifo(folder / "ecg.xml")
    os.mkfifo(folder / "rec.hea")
    code = (f"from ecgscope.store import ingest, Store; r = ingest([{str(folder / 'ecg.xml')!r}, {str(folder)!r}, "
            f"{str(LUDB)!r}], {str(tmp_path / 'store')!r}, workers=1, progress=False); "
            "print(r.added, sorted(Store(r.store).quarantine.reason.unique()))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1 ") and "a named pipe, not a regular file" in done.stdout


def test_a_symlink_loop_is_refused_and_a_folder_cycle_is_walked_once(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    os.symlink(folder / "b.xml", folder / "a.xml")
    os.symlink(folder / "a.xml", folder / "b.xml")
    _copy_ludb(folder / "sub", "rec")
    os.symlink(folder, folder / "sub" / "back")  # a cycle: in/sub/back -> in
    report = ingest([folder], tmp_path / "store", workers=1, progress=False)
    reasons = Store(tmp_path / "store").quarantine.reason
    assert report.added == 1 and (reasons == "symbolic link loop: the link never reaches a file").sum() == 2
    assert any("already read" in why for _, why in report.not_ecg)


def test_every_file_of_a_mixed_folder_is_accounted_for(tmp_path):
    uv = ludb_leads_uv()
    folder = tmp_path / "exports"
    (folder / "xml").mkdir(parents=True)
    write_muse(folder / "xml" / "ecg.xml", {n: uv[n] for n in MUSE_LEADS})
    write_hl7aecg(folder / "xml" / "aecg.xml", {n: v * 1.1 for n, v in uv.items()})
    write_dicom_ecg(folder / "wave.dcm", {n: v * 0.9 for n, v in uv.items()})
    _copy_ludb(folder / "wfdb", "1")
    (folder / "shards").mkdir()
    _code15(folder / "shards" / "part.hdf5")
    (folder / "notes.txt").write_text("reading list")
    (folder / "table.csv").write_text("a,b\n1,2\n")
    report = ingest([folder], tmp_path / "store", workers=2, progress=False)
    manifest = Store(tmp_path / "store").manifest
    assert report.added == 6 and report.rejected == 0, Store(tmp_path / "store").quarantine
    assert sorted(manifest.format.unique()) == ["code15", "dicom", "hl7aecg", "muse", "wfdb"]
    assert sorted(Path(p).name for p, _ in report.not_ecg) == ["notes.txt", "table.csv"]


def test_the_same_name_in_two_datasets_is_two_records_and_the_manifest_reads_as_one_table(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    rng = np.random.default_rng(1)
    signal = wfdb.rdrecord(str(LUDB)).p_signal + rng.normal(0, 0.01, (5000, 12))
    wfdb.wrsamp("1", fs=500, units=["mV"] * 12, sig_name=wfdb.rdrecord(str(LUDB)).sig_name, p_signal=signal,
                fmt=["16"] * 12, write_dir=str(other))
    ingest([LUDB], tmp_path / "store", workers=1, identifiers="keep", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # ingest into an existing store used to warn
        report = ingest([other / "1", SHARED_DATA / "code15"], tmp_path / "store", workers=1, identifiers="keep",
                        progress=False)
    manifest = pd.read_parquet(tmp_path / "store" / "manifest.parquet")  # every part, one schema
    assert report.added >= 2 and len(manifest) == len(Store(tmp_path / "store"))
    ones = sorted(manifest.loc[(manifest.ecg_id == "1") | manifest.ecg_id.str.startswith("1~"), "ecg_id"])
    assert ones[0] == "1" and ones[1].startswith("1~") and manifest.ecg_id.is_unique
    assert manifest.record_key.is_unique


# --- command-line mistakes: one line, exit 2, nothing left behind ---------------------------------------------


def _cli(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("option,value", [("--fs", "1e9"), ("--fs", "0"), ("--snr", "nan"), ("--duration", "0"),
                                          ("--n", "0"), ("--electrode-reversal", "2")])
def test_simulate_refuses_out_of_range_arguments_before_any_work(tmp_path, option, value):
    result = _cli("simulate", "--preset", "hospital", "--n", "3", option, value, "--out", tmp_path / "sim")
    assert result.exit_code == 2 and option in result.output and "Traceback" not in result.output
    assert not (tmp_path / "sim").exists()


def test_ingest_refuses_missing_inputs_a_file_as_store_and_a_bad_rate_without_making_a_store(tmp_path):
    missing = _cli("ingest", tmp_path / "nonexistent", "--store", tmp_path / "s1")
    assert missing.exit_code == 2 and "not found" in missing.output and not (tmp_path / "s1").exists()
    (tmp_path / "file").write_text("x")
    as_file = _cli("ingest", LUDB, "--store", tmp_path / "file")
    assert as_file.exit_code == 2 and "is a file, not a folder" in as_file.output
    zero = _cli("ingest", LUDB, "--store", tmp_path / "s2", "--fs", "0")
    assert zero.exit_code == 2 and "--fs" in zero.output and not (tmp_path / "s2").exists()
    nothing = _cli("ingest", SHARED_DATA / "README.md", "--store", tmp_path / "s3")
    assert nothing.exit_code == 2 and "nothing was stored" in nothing.output
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("x")
    empty = _cli("ingest", notes, "--store", tmp_path / "s4", "--verbose")
    assert empty.exit_code == 2 and "not an ECG: " in empty.output and not (tmp_path / "s4").exists()


def test_report_and_evaluate_refuse_and_leave_no_folder(tmp_path):
    (tmp_path / "empty_run").mkdir()
    report = _cli("report", tmp_path / "empty_run")
    assert report.exit_code == 2 and "holds no evaluation" in report.output
    assert not (tmp_path / "empty_run" / "report.html").exists()
    pd.DataFrame({"ecg_id": ["a"], "patient_id": ["p"]}).to_parquet(tmp_path / "p.parquet")
    evaluate = _cli("evaluate", tmp_path / "p.parquet", "--out", tmp_path / "eval")
    assert evaluate.exit_code == 2 and not (tmp_path / "eval").exists()
    (tmp_path / "blocker").write_text("x")
    under_file = _cli("evaluate", tmp_path / "p.parquet", "--out", tmp_path / "blocker" / "eval")
    assert under_file.exit_code == 2 and "not writable" in under_file.output


def test_a_continuous_target_listed_as_binary_is_refused_before_the_run_folder_exists(tmp_path):
    import yaml

    cohort = pd.DataFrame({"ecg_row": [0], "ecg_id": ["1"], "patient_id": ["1"], "split": ["train"],
                           "rvef": [55.2]})
    cohort.to_parquet(tmp_path / "cohort.parquet")
    ingest([LUDB], tmp_path / "store", workers=1, identifiers="keep", progress=False)
    config = {"out": str(tmp_path / "run"), "data": {"store": str(tmp_path / "store"),
                                                     "cohort": str(tmp_path / "cohort.parquet"), "binary": ["rvef"]},
              "model": {"name": "compact_cnn_tiny"}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    result = _cli("train", tmp_path / "run.yaml")
    assert result.exit_code == 2 and "holds values other than 0 and 1" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_saved_models_follow_the_umask(tmp_path, mask):
    import torch

    from ecgscope.models import create_model
    from ecgscope.signal import default_pipeline
    from ecgscope.train import TaskSpec, save_model

    previous = os.umask(mask)
    try:
        spec = TaskSpec(regression=["rvef"], mean={"rvef": 58.0}, std={"rvef": 6.0})
        torch.manual_seed(0)
        path = save_model(tmp_path / "model", create_model("compact_cnn_tiny", num_outputs=1), "compact_cnn_tiny",
                          spec, default_pipeline(100.0, 1000))
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o777 & ~mask
    assert (path / "weights.safetensors").stat().st_mode & 0o777 == 0o666 & ~mask


def test_many_parts_are_merged_so_opening_the_store_stays_cheap(tmp_path):
    paths = [_copy_ludb(tmp_path / "in", f"r{k}", lambda t: t.replace(" 5000", " 50", 1)) for k in range(40)]
    report = ingest(paths, tmp_path / "store", workers=1, part_size=1, progress=False)
    parts = list((tmp_path / "store" / "quarantine.parquet").glob("part-*.parquet"))
    assert report.rejected == 40 and len(parts) == 1
    assert len(Store(tmp_path / "store").quarantine) == 40
    again = ingest(paths, tmp_path / "store", workers=1, part_size=1, progress=False)
    assert again.skipped == 40 and again.rejected == 0
    # 40 stored records in 40 batches: one manifest part, and every row still reads its own waveform part
    ingest([SHARED_DATA / "cinc2021"], tmp_path / "one", workers=1, part_size=1, progress=False)
    ingest([SHARED_DATA / "cinc2021"], tmp_path / "many", workers=1, part_size=40, progress=False)
    one, many = Store(tmp_path / "one"), Store(tmp_path / "many")
    assert len(list((tmp_path / "one" / "manifest.parquet").glob("*.parquet"))) == 1
    assert len(one) == len(many) == 23 and one.manifest["part"].nunique() == 23
    np.testing.assert_array_equal(np.stack([one.read(r) for r in range(23)]),
                                  np.stack([many.read(r) for r in range(23)]))
    ingest([LUDB], tmp_path / "one", workers=1, progress=False)  # reopening keeps every merged part's waveforms
    assert len(Store(tmp_path / "one")) == 24 and np.isfinite(Store(tmp_path / "one").read(5)).all()


@pytest.mark.parametrize("args", [
    ["pretrain", "--store", "s", "--out", "o", "--epochs", "0"],
    ["pretrain", "--store", "s", "--out", "o", "--lr", "nan"],
    ["embed", "m", "--store", "s", "--batch-size", "0"],
    ["motion", "train", "--store", "s", "--cohort", "c", "--motion", "m", "--out", "o", "--recon-weight", "inf"],
    ["ensemble", "--cohort", "c", "--label", "y", "--out", "o", "--folds", "1"],
    ["evaluate", "p", "--out", "o", "--n-boot", "0"],
    ["survival", "p", "--outcomes", "x", "--predictor", "rvef", "--out", "o", "--per", "0"],
    ["cohort", "build", "--store", "s", "--imaging", "i", "--out", "o.parquet", "--days-before", "-1"],
    ["cohort", "phenogroups", "--imaging", "i", "--out", "o.json", "--k", "1"],
    ["demo", "--n", "5", "--out", "o"],
])
def test_every_command_refuses_out_of_range_numbers_in_one_line(tmp_path, args):
    result = _cli(*[str(tmp_path / a) if a in ("s", "o", "m", "c", "p", "x", "i", "o.parquet", "o.json") else a
                    for a in args])
    assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output, result.output
    assert not (tmp_path / "o").exists()
