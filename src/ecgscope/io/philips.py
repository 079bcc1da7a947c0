"""Philips XML (``restingecgdata``, SierraECG / PhilipsECG 1.03-1.04) through the ``sierraecg`` package.

Philips carts store the rhythm strip XLI-compressed (LZW of sample deltas) and the four derived limb leads
as residuals against I and II; ``sierraecg`` decodes both (``pip install 'ecgscope[philips]'``). The reader
keeps the eight independent leads (I, II, V1-V6) and lets the record derive III, aVR, aVL and aVF from I and
II exactly: in the public example file the decoded residuals break the identities in the last 0.2 s (up to
2 mV off) while I and II are continuous. The sample
unit comes from the file: ``signalresolution`` (1.03) or the ``resolution`` attribute of
``parsedwaveforms`` (1.04), in uV per unit. The file is parsed with ``defusedxml`` for the metadata
(rate, unit, patient id, age, sex, date).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np

from ecgscope.ecg import ECG
from ecgscope.errors import InvalidRecord
from ecgscope.io.base import Source, make_ecg
from ecgscope.io.muse import parse_xml
from ecgscope.leads import LIMB_DERIVED_LEADS

ROOT_TAG = "restingecgdata"
_SEX = {"male": "M", "female": "F"}


def discover(path: str | Path) -> Iterator[Source]:
    """A Philips XML file is one record."""
    yield Source("philips", str(path))


def _find(root, name: str):
    """The first element called ``name`` anywhere below ``root`` (Philips files use no namespace or one)."""
    return next((e for e in root.iter() if e.tag.split("}")[-1] == name), None)


def _text(root, name: str) -> str:
    found = _find(root, name)
    return (found.text or "").strip() if found is not None else ""


def load(source: Source) -> ECG:
    """Read the rhythm strip of a Philips XML export in mV."""
    where = source.path
    try:
        import sierraecg
    except ImportError as exc:
        raise InvalidRecord(where, "Philips XML needs the sierraecg package: pip install 'ecgscope[philips]'") from exc
    root = parse_xml(where, where)
    if root.tag.split("}")[-1] != ROOT_TAG:
        raise InvalidRecord(where, f"root element is <{root.tag}>, not <{ROOT_TAG}>: not a Philips XML export")
    waveforms = _find(root, "parsedwaveforms")
    resolution = (waveforms.get("resolution") if waveforms is not None else None) or _text(root, "signalresolution")
    try:
        fs = float(_text(root, "samplingrate") or (waveforms.get("samplespersecond") if waveforms is not None else ""))
        uv_per_unit = float(resolution)
    except (TypeError, ValueError) as exc:
        raise InvalidRecord(where, "no sampling rate or signal resolution in the file") from exc
    if not np.isfinite(uv_per_unit) or uv_per_unit <= 0:
        raise InvalidRecord(where, f"signal resolution {uv_per_unit:g} uV per unit is not a positive number")
    try:
        parsed = sierraecg.read_file(where)
    except Exception as exc:  # sierraecg raises its own errors and plain ones for corrupt data
        raise InvalidRecord(where, f"Philips waveform data could not be decoded ({type(exc).__name__}: {exc})") from exc
    lengths = {len(lead.samples) for lead in parsed.leads}
    if len(lengths) != 1:
        raise InvalidRecord(where, f"leads have different lengths {sorted(lengths)}")
    independent = [lead for lead in parsed.leads if lead.label not in LIMB_DERIVED_LEADS]
    signal = np.stack([np.asarray(lead.samples, dtype=np.float64) for lead in independent]) * uv_per_unit / 1000
    years = _text(root, "years")
    acquisition = _find(root, "dataacquisition")
    when = None
    if acquisition is not None and acquisition.get("date"):
        try:
            when = datetime.strptime(f"{acquisition.get('date')} {acquisition.get('time') or '00:00:00'}",
                                     "%Y-%m-%d %H:%M:%S")
        except ValueError:
            when = None
    meta = {"age": float(years) if years.replace(".", "", 1).isdigit() else None,
            "sex": _SEX.get(_text(root, "sex").lower()), "units_conversion": f"{uv_per_unit:g} uV per unit -> mV",
            "document": f"{parsed.doc_type} {parsed.doc_ver}"}
    return make_ecg(signal, fs, [lead.label for lead in independent], where, ecg_id=Path(where).stem,
                    patient_id=_text(root, "patientid"), acquired_at=when, meta=meta)
