"""GE MUSE XML (``RestingECG``): base64 little-endian int16 lead data with per-lead units per bit.

MUSE usually stores 8 leads (I, II, V1-V6); the other four are derived by the ``ECG`` record. The rhythm
waveform (the full strip) is read, not the median beat. Parsed with ``defusedxml``, so entity-expansion
bombs and external entities are refused.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from ecgscope.ecg import ECG
from ecgscope.errors import InvalidRecord
from ecgscope.io.base import Source, check_declared_samples, check_file, make_ecg, mv_factor

_UNITS = {"MICROVOLTS": "uV", "MILLIVOLTS": "mV", "VOLTS": "V"}


def parse_xml(path: str | Path, where: str):
    """Parse an XML file safely; any failure (garbage, bombs, entities, a file too large or not a regular
    file) becomes ``InvalidRecord``."""
    check_file(path, where)
    try:
        return SafeET.parse(str(path)).getroot()
    except DefusedXmlException as exc:
        raise InvalidRecord(where, f"XML refused for safety ({type(exc).__name__}: entity expansion or "
                                   "external references are not allowed)") from exc
    except SafeET.ParseError as exc:
        raise InvalidRecord(where, f"not well-formed XML ({exc})") from exc


def _text(node, path: str, default: str | None = None) -> str | None:
    found = node.find(path)
    return found.text.strip() if found is not None and found.text else default


def discover(path: str | Path) -> Iterator[Source]:
    """A MUSE file is one record."""
    yield Source("muse", str(path))


def load(source: Source) -> ECG:
    """Read the rhythm waveform of a MUSE XML export in mV."""
    where = source.path
    root = parse_xml(source.path, where)
    if root.tag != "RestingECG":
        raise InvalidRecord(where, f"root element is <{root.tag}>, not <RestingECG>: not a GE MUSE export")
    waveforms = root.findall("Waveform")
    rhythm = [w for w in waveforms if _text(w, "WaveformType") == "Rhythm"] or waveforms
    if not rhythm:
        raise InvalidRecord(where, "no <Waveform> element")
    wave = rhythm[0]
    try:
        base, exponent = float(_text(wave, "SampleBase", "")), float(_text(wave, "SampleExponent", "0") or 0)
    except (TypeError, ValueError) as exc:
        raise InvalidRecord(where, "missing or non-numeric <SampleBase> or <SampleExponent>") from exc
    if not -3 <= exponent <= 6:  # 10**400 overflows; any real rate is SampleBase x 10**0 or so
        raise InvalidRecord(where, f"<SampleExponent> {exponent:g} gives no plausible sampling rate")
    fs = base * 10 ** exponent
    leads, rows = [], []
    for lead in wave.findall("LeadData"):
        name = _text(lead, "LeadID")
        encoded = _text(lead, "WaveFormData", "") or ""
        # base64 holds 3 bytes per 4 characters and a sample is 2 bytes: refuse before decoding anything huge
        check_declared_samples(max(len(encoded) * 3 // 8, 1), where, f"samples in lead {name}")
        try:
            raw = base64.b64decode(encoded, validate=False)
            values = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.float64)
            per_bit = float(_text(lead, "LeadAmplitudeUnitsPerBit", "1"))
        except (binascii.Error, ValueError) as exc:
            raise InvalidRecord(where, f"lead {name}: undecodable waveform data ({exc})") from exc
        if not np.isfinite(per_bit) or per_bit <= 0:
            raise InvalidRecord(where, f"lead {name}: <LeadAmplitudeUnitsPerBit> {per_bit:g} is not a positive number")
        declared = _text(lead, "LeadSampleCountTotal")
        if declared is not None and (not declared.isdigit() or int(declared) != values.size):
            raise InvalidRecord(where, f"lead {name}: {values.size} samples decoded, {declared} declared")
        units = lead.find("LeadAmplitudeUnits")
        if units is not None and not (units.text or "").strip():
            raise InvalidRecord(where, f"lead {name}: <LeadAmplitudeUnits> is empty, so the scale is unknown")
        unit = _UNITS.get((_text(lead, "LeadAmplitudeUnits", "MICROVOLTS") or "").upper(), "?")
        leads.append(name)
        rows.append(values * per_bit * mv_factor(unit, where))
    if not rows:
        raise InvalidRecord(where, "no <LeadData> in the rhythm waveform")
    if len({r.size for r in rows}) != 1:
        raise InvalidRecord(where, f"leads have different lengths {sorted({r.size for r in rows})}")
    age = _text(root, "PatientDemographics/PatientAge")
    sex = {"MALE": "M", "FEMALE": "F"}.get((_text(root, "PatientDemographics/Gender", "") or "").upper())
    when = None
    date, time = _text(root, "TestDemographics/AcquisitionDate"), _text(root, "TestDemographics/AcquisitionTime")
    if date:
        try:
            when = datetime.strptime(f"{date} {time or '00:00:00'}", "%m-%d-%Y %H:%M:%S")
        except ValueError:
            when = None
    meta = {"age": float(age) if age and age.replace(".", "", 1).isdigit() else None, "sex": sex,
            "units_conversion": "units per bit -> mV"}
    return make_ecg(np.stack(rows), fs, leads, where, ecg_id=Path(where).stem,
                    patient_id=_text(root, "PatientDemographics/PatientID", "") or "", acquired_at=when, meta=meta)
