"""DICOM 12-lead ECG waveforms (General ECG and 12-lead ECG IODs) through ``pydicom``.

Of the multiplex groups with at least 8 channels, the rhythm strip is read (the group labelled RHYTHM, else
the longest; a MEDIAN BEAT group is left alone). ``pydicom`` applies channel sensitivity and its correction
factor, and each channel's sensitivity unit (uV, mV) is converted to mV. Lead names come from each channel's
source code: the SCP-ECG or MDC code value where there is one (``5.6.3-9-1`` is lead I), else its code
meaning, which vendors write as "Lead I (Einthoven)", "Lead aVR", "Lead aVR, augmented voltage, right" or
plain "V1".
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from ecgscope.ecg import ECG
from ecgscope.errors import InvalidRecord
from ecgscope.io.base import Source, check_declared_samples, check_file, make_ecg, mv_factor


def discover(path: str | Path) -> Iterator[Source]:
    """A DICOM file is one record."""
    yield Source("dicom", str(path))


#: SCP-ECG lead codes (DICOM CID 3001, scheme SCPECG) of the 12 standard leads.
SCPECG_CODES = {"5.6.3-9-1": "I", "5.6.3-9-2": "II", "5.6.3-9-61": "III", "5.6.3-9-62": "aVR",
                "5.6.3-9-63": "aVL", "5.6.3-9-64": "aVF", **{f"5.6.3-9-{k + 2}": f"V{k}" for k in range(1, 7)}}
#: ISO/IEEE 11073 MDC lead codes (scheme MDC), the numeric form some exporters use.
MDC_CODES = {"2:1": "I", "2:2": "II", "2:61": "III", "2:62": "aVR", "2:63": "aVL", "2:64": "aVF",
             **{f"2:{k + 2}": f"V{k}" for k in range(1, 7)}}


def _lead_name(channel) -> str:
    """The lead a channel holds, from its source code value or, failing that, its code meaning."""
    if "ChannelSourceSequence" not in channel:
        return str(channel.get("ChannelLabel", ""))
    source = channel.ChannelSourceSequence[0]
    code = str(source.get("CodeValue", "")).strip()
    if code in SCPECG_CODES or code in MDC_CODES:
        return SCPECG_CODES.get(code) or MDC_CODES[code]
    meaning = re.sub(r"^lead\s+", "", str(source.get("CodeMeaning", "")).strip(), flags=re.IGNORECASE)
    return re.split(r"[\s,(]", meaning, maxsplit=1)[0]  # "I (Einthoven)", "aVR, augmented voltage, right"


def load(source: Source) -> ECG:
    """Read the 12-lead waveform of a DICOM file in mV."""
    where = source.path
    check_file(source.path, where)
    try:
        # from memory (the file is at most 64 MB): a corrupt element length then reads what is there instead
        # of allocating the gigabytes it declares
        ds = pydicom.dcmread(io.BytesIO(Path(source.path).read_bytes()))
        has_waveforms = "WaveformSequence" in ds
    except (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError, NotImplementedError) as exc:
        raise InvalidRecord(where, f"not a readable DICOM file ({type(exc).__name__}: {exc})") from exc
    if not has_waveforms:
        raise InvalidRecord(where, "DICOM file has no WaveformSequence: not an ECG waveform object")
    for i, g in enumerate(ds.WaveformSequence):
        for keyword in ("NumberOfWaveformChannels", "NumberOfWaveformSamples", "SamplingFrequency"):
            if g.get(keyword) is None:
                raise InvalidRecord(where, f"waveform group {i + 1} has no {keyword}")
        check_declared_samples(g.NumberOfWaveformSamples, where, f"samples in waveform group {i + 1}")
    groups = [i for i, g in enumerate(ds.WaveformSequence) if int(g.NumberOfWaveformChannels) >= 8]
    if not groups:
        raise InvalidRecord(where, "no waveform group with at least 8 channels (12-lead ECG)")
    labels = {i: str(ds.WaveformSequence[i].get("MultiplexGroupLabel", "")).upper() for i in groups}
    rhythm = [i for i in groups if "RHYTHM" in labels[i]]
    strips = rhythm or [i for i in groups if "MEDIAN" not in labels[i]] or groups
    index = max(strips, key=lambda i: int(ds.WaveformSequence[i].NumberOfWaveformSamples))
    group = ds.WaveformSequence[index]
    try:
        values = ds.waveform_array(index).T  # (channels, samples), sensitivity applied
    except Exception as exc:  # pydicom raises several types for inconsistent waveform data
        raise InvalidRecord(where, f"waveform data do not match their description ({exc})") from exc
    channels = group.get("ChannelDefinitionSequence") or []
    if len(channels) != values.shape[0]:
        raise InvalidRecord(where, f"{len(channels)} channel definitions for {values.shape[0]} waveform channels")
    units = [str(c.ChannelSensitivityUnitsSequence[0].get("CodeValue", "?")) if c.get(
        "ChannelSensitivityUnitsSequence") else "uV" for c in channels]
    signal = values * np.array([mv_factor(u, where) for u in units])[:, None]
    leads = [_lead_name(c) for c in channels]
    age = str(ds.get("PatientAge", "") or "")
    meta = {"age": float(age[:3]) if age[:3].isdigit() else None,
            "sex": {"M": "M", "F": "F"}.get(str(ds.get("PatientSex", ""))),
            "units_conversion": f"{'/'.join(sorted(set(units)))} -> mV"}
    return make_ecg(signal, float(group.SamplingFrequency), leads, where, ecg_id=str(ds.get("SOPInstanceUID", "")),
                    patient_id=str(ds.get("PatientID", "")), acquired_at=_acquired(ds), meta=meta)


def _acquired(ds) -> datetime | None:
    """When the ECG was taken: AcquisitionDateTime, else AcquisitionDate / ContentDate with its time."""
    stamp = str(ds.get("AcquisitionDateTime", "") or "")
    if not stamp:
        day = str(ds.get("AcquisitionDate", "") or ds.get("ContentDate", "") or "")
        clock = str(ds.get("AcquisitionTime", "") or ds.get("ContentTime", "") or "")
        stamp = day + clock if day else ""
    digits = stamp.split(".")[0].split("+")[0].split("-")[0]
    for width, pattern in ((14, "%Y%m%d%H%M%S"), (12, "%Y%m%d%H%M"), (8, "%Y%m%d")):
        if len(digits) >= width:
            try:
                return datetime.strptime(digits[:width], pattern)
            except ValueError:
                return None
    return None
