"""DICOM 12-lead ECG waveforms (General ECG and 12-lead ECG IODs) through ``pydicom``.

The first multiplex group with at least 8 channels is read; ``pydicom`` applies channel sensitivity and
its correction factor, and each channel's sensitivity unit (uV, mV) is converted to mV. Lead names come
from each channel's source code meaning ("Lead I", "Lead aVR", ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from ecgscope.ecg import ECG
from ecgscope.errors import InvalidRecord
from ecgscope.io.base import Source, make_ecg, mv_factor


def discover(path: str | Path) -> Iterator[Source]:
    """A DICOM file is one record."""
    yield Source("dicom", str(path))


def _lead_name(channel) -> str:
    meaning = channel.ChannelSourceSequence[0].CodeMeaning if "ChannelSourceSequence" in channel else ""
    return re.sub(r"^lead\s+", "", str(meaning).strip(), flags=re.IGNORECASE)


def load(source: Source) -> ECG:
    """Read the 12-lead waveform of a DICOM file in mV."""
    where = source.path
    try:
        ds = pydicom.dcmread(source.path)
    except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
        raise InvalidRecord(where, f"not a readable DICOM file ({exc})") from exc
    if "WaveformSequence" not in ds:
        raise InvalidRecord(where, "DICOM file has no WaveformSequence: not an ECG waveform object")
    groups = [i for i, g in enumerate(ds.WaveformSequence) if int(g.NumberOfWaveformChannels) >= 8]
    if not groups:
        raise InvalidRecord(where, "no waveform group with at least 8 channels (12-lead ECG)")
    index = groups[0]
    group = ds.WaveformSequence[index]
    try:
        values = ds.waveform_array(index).T  # (channels, samples), sensitivity applied
    except Exception as exc:  # pydicom raises several types for inconsistent waveform data
        raise InvalidRecord(where, f"waveform data do not match their description ({exc})") from exc
    channels = group.ChannelDefinitionSequence
    units = [c.ChannelSensitivityUnitsSequence[0].CodeValue if "ChannelSensitivityUnitsSequence" in c else "uV"
             for c in channels]
    signal = values * np.array([mv_factor(u, where) for u in units])[:, None]
    leads = [_lead_name(c) for c in channels]
    age = str(ds.get("PatientAge", "") or "")
    meta = {"age": float(age[:3]) if age[:3].isdigit() else None,
            "sex": {"M": "M", "F": "F"}.get(str(ds.get("PatientSex", ""))),
            "units_conversion": f"{'/'.join(sorted(set(units)))} -> mV"}
    return make_ecg(signal, float(group.SamplingFrequency), leads, where, ecg_id=str(ds.get("SOPInstanceUID", "")),
                    patient_id=str(ds.get("PatientID", "")), meta=meta)
