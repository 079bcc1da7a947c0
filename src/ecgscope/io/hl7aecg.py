"""HL7 v3 annotated ECG (aECG, the FDA's XML format): ``sequenceSet`` of a time sequence and lead sequences.

Each lead is ``origin + scale * digits`` in the unit of ``scale`` (usually uV); the sampling interval is the
``increment`` of the time sequence. The rhythm series is read in preference to representative beats, and only
its own sequences: real files nest the derived representative beat (another length) inside the rhythm series
as ``derivation/derivedSeries``, which is left out. Lead codes are matched without regard to case
(``MDC_ECG_LEAD_AVR`` and ``MDC_ECG_LEAD_aVR`` both occur).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np

from ecgscope.ecg import ECG
from ecgscope.errors import InvalidRecord
from ecgscope.io.base import Source, check_declared_samples, make_ecg, mv_factor
from ecgscope.io.muse import parse_xml

NS = {"h": "urn:hl7-org:v3"}
_LEAD_CODES = {"MDC_ECG_LEAD_I": "I", "MDC_ECG_LEAD_II": "II", "MDC_ECG_LEAD_III": "III",
               "MDC_ECG_LEAD_AVR": "aVR", "MDC_ECG_LEAD_AVL": "aVL", "MDC_ECG_LEAD_AVF": "aVF",
               **{f"MDC_ECG_LEAD_V{k}": f"V{k}" for k in range(1, 7)}}
#: The series' own sequences (not those of a nested derivation/derivedSeries).
_OWN_SEQUENCES = "h:component/h:sequenceSet/h:component/h:sequence"
_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


def discover(path: str | Path) -> Iterator[Source]:
    """An aECG file is one record (its first rhythm series)."""
    yield Source("hl7aecg", str(path))


def _rate(increment, where: str) -> float:
    """Sampling rate from a time sequence's ``<increment value=".." unit="..">``."""
    unit = increment.get("unit", "s")
    try:
        step = float(increment.get("value")) * _SECONDS[unit]
    except (TypeError, ValueError) as exc:
        raise InvalidRecord(where, "the time sequence's <increment> has no numeric value") from exc
    except KeyError as exc:
        raise InvalidRecord(where, f"the time sequence's <increment> unit {unit!r} is not s, ms or us") from exc
    if not np.isfinite(step) or step <= 0:
        raise InvalidRecord(where, f"the time sequence's <increment> {increment.get('value')} {unit} gives no "
                                   "sampling rate")
    return 1.0 / step


def load(source: Source) -> ECG:
    """Read the rhythm series of an HL7 aECG file in mV."""
    where = source.path
    root = parse_xml(source.path, where)
    if not root.tag.endswith("AnnotatedECG"):
        raise InvalidRecord(where, f"root element is <{root.tag}>, not <AnnotatedECG>: not an HL7 aECG file")
    series = root.findall(".//h:series", NS)
    rhythm = [s for s in series if (s.find("h:code", NS) is not None
                                    and s.find("h:code", NS).get("code") == "RHYTHM")] or series
    if not rhythm:
        raise InvalidRecord(where, "no <series> element")
    fs, leads, rows = None, [], []
    for seq in rhythm[0].findall(_OWN_SEQUENCES, NS):
        code = seq.find("h:code", NS)
        value = seq.find("h:value", NS)
        if code is None or value is None:
            continue
        name = code.get("code", "").upper()
        if name.startswith("TIME_"):
            inc = value.find("h:increment", NS)
            if inc is not None:
                fs = _rate(inc, where)
            continue
        if name not in _LEAD_CODES:
            continue
        origin, scale = value.find("h:origin", NS), value.find("h:scale", NS)
        digits = value.find("h:digits", NS)
        if scale is None or digits is None or not (digits.text or "").strip():
            raise InvalidRecord(where, f"lead {_LEAD_CODES[name]}: missing <scale> or <digits>")
        check_declared_samples(max(len(digits.text) // 2, 1), where, f"samples in lead {_LEAD_CODES[name]}")
        try:
            raw = np.array(digits.text.split(), dtype=np.float64)
            offset = float(origin.get("value", 0)) if origin is not None else 0.0
            gain = float(scale.get("value"))
        except (TypeError, ValueError) as exc:  # TypeError: a <scale> or <origin> without its value
            raise InvalidRecord(where, f"lead {_LEAD_CODES[name]}: non-numeric or missing digits, <scale> "
                                       "or <origin> value") from exc
        if not np.isfinite(gain) or gain == 0 or not np.isfinite(offset):
            raise InvalidRecord(where, f"lead {_LEAD_CODES[name]}: <scale> {gain:g} / <origin> {offset:g} "
                                       "cannot scale the digits")
        rows.append((offset + gain * raw) * mv_factor(scale.get("unit", "uV"), where))
        leads.append(_LEAD_CODES[name])
    if fs is None or not np.isfinite(fs):
        raise InvalidRecord(where, "no time sequence with an <increment>: sampling rate unknown")
    if not rows:
        raise InvalidRecord(where, "no lead sequences (MDC_ECG_LEAD_*) in the rhythm series")
    if len({r.size for r in rows}) != 1:
        raise InvalidRecord(where, f"leads have different lengths {sorted({r.size for r in rows})}")
    when = None
    low = root.find("h:effectiveTime/h:low", NS)
    if low is not None and low.get("value"):
        try:
            when = datetime.strptime(low.get("value")[:14], "%Y%m%d%H%M%S")
        except ValueError:
            when = None
    subject = root.find(".//h:trialSubject/h:id", NS)
    patient = subject.get("extension", "") if subject is not None else ""
    return make_ecg(np.stack(rows), fs, leads, where, ecg_id=Path(where).stem, patient_id=patient,
                    acquired_at=when, meta={"units_conversion": "scale units -> mV"})
