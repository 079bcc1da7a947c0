"""Protected health information: nothing identifying reaches any file ecgscope writes, and pseudonyms still link.

GE MUSE, HL7 aECG and DICOM exports carry a made-up patient's name, birth date, MRN, device serial and a
free-text interpretation. They are ingested, linked to imaging and outcomes, predicted, evaluated and
reported on through the command line; then every byte written is searched for those strings.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import torch
from pydicom.dataset import Dataset
from typer.testing import CliRunner

from ecgscope.cli import app
from ecgscope.evaluate import SplitConformal
from ecgscope.models import create_model
from ecgscope.privacy import PrivacyError, Pseudonymizer
from ecgscope.signal import default_pipeline
from ecgscope.store import Store, ingest
from ecgscope.train import TaskSpec, save_model

from .conftest import SHARED_DATA, ludb_leads_uv
from .writers import MUSE_LEADS, write_dicom_ecg, write_hl7aecg, write_muse

_GIVEN = ("Zebulon", "Ottilie", "Casimir", "Henrike", "Ambrosius", "Leocadia", "Thaddeus", "Wilhelmina")
_FAMILY = ("Quarterfield", "Brankswold", "Pennywhistle")
#: MRN -> (given name, family name, birth date) of 24 made-up patients
PATIENTS = {f"MRN-{83749261 + 7919 * k}": (_GIVEN[k % 8], _FAMILY[k // 8], f"19{40 + k}-{1 + k % 12:02d}-{3 + k:02d}")
            for k in range(24)}
INTERPRETATION = "Sinus rhythm; possible anterior infarct, confirmed by Dr Wexley-Farnsworth"
SERIAL = "SN-XQ-55501-B"


def _secrets() -> list[str]:
    words = [INTERPRETATION, "Wexley-Farnsworth", SERIAL]
    for mrn, (given, family, born) in PATIENTS.items():
        y, m, d = born.split("-")
        words += [mrn, given, family, born, f"{y}{m}{d}", f"{m}-{d}-{y}"]
    return words


def _uv(shift: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(int(shift * 1000))
    return {name: values * (1 + shift) + rng.normal(0, 5, values.size) for name, values in ludb_leads_uv().items()}


def _exports(folder: Path) -> None:
    folder.mkdir()
    for k, (mrn, (given, family, born)) in enumerate(PATIENTS.items()):
        y, m, d = born.split("-")
        muse = write_muse(folder / f"muse_{k}.xml", {n: v for n, v in _uv(0.01 * k).items() if n in MUSE_LEADS},
                          patient=mrn)
        muse.write_text(muse.read_text().replace(
            "<PatientAge>", f"<PatientLastName>{family}</PatientLastName><PatientFirstName>{given}</PatientFirstName>"
                            f"<DateofBirth>{m}-{d}-{y}</DateofBirth><PatientAge>").replace(
            "</RestingECG>", f"<Diagnosis><DiagnosisStatement><StmtText>{INTERPRETATION}</StmtText>"
                             f"</DiagnosisStatement></Diagnosis><MachineID>{SERIAL}</MachineID></RestingECG>"))
        aecg = write_hl7aecg(folder / f"aecg_{k}.xml", _uv(0.01 * k + 0.003))
        aecg.write_text(aecg.read_text().replace('extension="SUBJ-7" />', f'extension="{mrn}" /><subjectDemographic'
                                                 f'Person><name>{given} {family}</name><birthTime value="{y}{m}{d}" />'
                                                 "</subjectDemographicPerson>").replace(
            "</AnnotatedECG>", f"<annotation><text>{INTERPRETATION}</text></annotation></AnnotatedECG>"))
        dcm = write_dicom_ecg(folder / f"wave_{k}.dcm", _uv(0.01 * k + 0.006))
        ds = pydicom.dcmread(dcm)
        ds.PatientID, ds.PatientName, ds.PatientBirthDate = mrn, f"{family}^{given}", f"{y}{m}{d}"
        ds.DeviceSerialNumber, ds.AcquisitionDateTime = SERIAL, "20210314092653"
        note = Dataset()
        note.UnformattedTextValue = INTERPRETATION
        ds.WaveformAnnotationSequence = [note]
        ds.save_as(dcm)


def _model(path: Path) -> Path:
    spec = TaskSpec(regression=["rvef"], mean={"rvef": 58.0}, std={"rvef": 6.0})
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    truth = rng.normal(58, 6, 200)
    conformal = {"rvef": SplitConformal(0.1).fit(truth, truth + rng.normal(0, 3, 200), np.full(200, 3.0))}
    return save_model(path, create_model("compact_cnn_tiny", num_outputs=spec.n_outputs).eval(), "compact_cnn_tiny",
                      spec, default_pipeline(500.0, 5000), conformal=conformal)


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_no_identifier_reaches_any_file_written_and_pseudonyms_still_link(tmp_path, monkeypatch):
    inputs, work = tmp_path / "exports", tmp_path / "work"
    _exports(inputs)
    monkeypatch.setenv("ECGSCOPE_PSEUDONYM_KEY_FILE", str(tmp_path / "site" / "key"))
    mrns = list(PATIENTS)
    n = len(mrns)
    rng = np.random.default_rng(0)
    pd.DataFrame({"patient_id": mrns, "study_date": ["2021-03-20"] * n,
                  "rvef": rng.normal(55, 8, n).round(1)}).to_csv(tmp_path / "imaging.csv", index=False)
    pd.DataFrame({"patient_id": mrns, "index_date": ["2021-03-20"] * n, "followup_years": rng.uniform(1, 4, n),
                  "event": rng.integers(0, 2, n)}).to_csv(tmp_path / "outcomes.csv", index=False)
    work.mkdir()
    logs = [_run("ingest", str(inputs), "--store", str(work / "store"), "--shift-dates")]
    store = Store(work / "store")
    assert len(store) == 3 * n and store.privacy.identifiers == "pseudonymize" and store.privacy.shift_dates
    logs.append(_run("cohort", "build", "--store", str(work / "store"), "--imaging", str(tmp_path / "imaging.csv"),
                     "--outcomes", str(tmp_path / "outcomes.csv"), "--split", "0.5,0.25,0.25",
                     "--out", str(work / "cohort.parquet")))
    cohort = pd.read_parquet(work / "cohort.parquet")
    # every study linked to one of its own patient's ECGs, and every outcome joined, through the pseudonyms
    assert len(cohort) == n and cohort["patient_id"].str.match(r"^P[0-9a-f]{20}$").all()
    assert cohort["time_years"].notna().all()
    key = Pseudonymizer.from_file(tmp_path / "site" / "key", create=False)
    assert sorted(cohort["patient_id"]) == sorted(key.patient(m) for m in mrns)
    assert set(cohort["ecg_id"]) <= set(store.manifest["ecg_id"])
    model = _model(work / "model")
    logs.append(_run("predict", str(model), "--store", str(work / "store"), "--out", str(work / "predictions.parquet")))
    logs.append(_run("evaluate", str(work / "predictions.parquet"), "--labels", str(work / "cohort.parquet"),
                     "--split", "all", "--n-boot", "20", "--out", str(work / "evaluation")))
    logs.append(_run("report", str(work), "--out", str(work / "report.html")))
    written = [p for p in work.rglob("*") if p.is_file()]
    assert len(written) > 10
    found = {(str(p.relative_to(work)), s) for p in written for s in _secrets() if s.encode() in p.read_bytes()}
    found |= {("console", s) for s in _secrets() for log in logs if s in log}
    assert not found, found
    info = json.loads((work / "store" / "store.json").read_text())["privacy"]
    assert "names" in info["dropped"] and info["key_fingerprint"] == key.fingerprint and "key" not in info


def test_the_same_key_gives_the_same_pseudonyms_and_another_key_is_refused(tmp_path):
    src = SHARED_DATA / "ludb" / "1"
    ingest([src], tmp_path / "a", workers=1, pseudonym_key=tmp_path / "k1", progress=False)
    ingest([src], tmp_path / "b", workers=1, pseudonym_key=tmp_path / "k1", progress=False)
    a, b = Store(tmp_path / "a").manifest, Store(tmp_path / "b").manifest
    assert a.loc[0, "patient_id"] == b.loc[0, "patient_id"] != "1" and a.loc[0, "ecg_id"] == b.loc[0, "ecg_id"]
    with pytest.raises(PrivacyError, match="fingerprint"):
        ingest([SHARED_DATA / "cinc2021" / "E07500"], tmp_path / "a", workers=1, pseudonym_key=tmp_path / "k2",
               progress=False)
    kept = ingest([src], tmp_path / "c", workers=1, identifiers="keep", progress=False)
    assert kept.added == 1 and Store(tmp_path / "c").manifest.loc[0, "patient_id"] == "1"
    assert Store(tmp_path / "c").privacy.identifiers == "keep"


def test_pseudonymize_maps_a_site_table_with_the_stores_key_and_refuses_another(tmp_path):
    ingest([SHARED_DATA / "ludb" / "1"], tmp_path / "s", workers=1, pseudonym_key=tmp_path / "k1", shift_dates=True,
           progress=False)
    pd.DataFrame({"patient_id": ["1"], "study_date": ["2021-03-20"], "rvef": [50.0]}).to_csv(tmp_path / "t.csv",
                                                                                          index=False)
    args = ["pseudonymize", str(tmp_path / "t.csv"), "--store", str(tmp_path / "s"), "--out", str(tmp_path / "o.csv")]
    result = CliRunner().invoke(app, [*args, "--pseudonym-key", str(tmp_path / "k1")])
    assert result.exit_code == 0, result.output
    mapped = pd.read_csv(tmp_path / "o.csv")
    assert mapped.loc[0, "patient_id"] == Store(tmp_path / "s").manifest.loc[0, "patient_id"]
    assert mapped.loc[0, "study_date"] != "2021-03-20"  # shifted by the patient's keyed offset
    Pseudonymizer.from_file(tmp_path / "k2")
    wrong = CliRunner().invoke(app, [*args, "--pseudonym-key", str(tmp_path / "k2"), "--overwrite"])
    assert wrong.exit_code == 2 and "fingerprint" in wrong.output
