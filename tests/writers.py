"""Independent writers for test files, following each format's published layout (not ecgscope's readers)."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

MUSE_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")


def write_muse(path: Path, leads_uv: dict[str, np.ndarray], fs: int = 500, uv_per_bit: float = 4.88,
               patient: str = "P001", raw_override: dict[str, str] | None = None,
               patient_name: tuple[str, str] | None = None) -> Path:
    """A GE MUSE RestingECG export: a median and a rhythm waveform, int16 LE base64 per lead."""
    root = ET.Element("RestingECG")
    demo = ET.SubElement(root, "PatientDemographics")
    ET.SubElement(demo, "PatientID").text = patient
    if patient_name is not None:
        ET.SubElement(demo, "PatientLastName").text, ET.SubElement(demo, "PatientFirstName").text = patient_name
    ET.SubElement(demo, "PatientAge").text = "64"
    ET.SubElement(demo, "Gender").text = "FEMALE"
    test = ET.SubElement(root, "TestDemographics")
    ET.SubElement(test, "AcquisitionDate").text = "03-14-2021"
    ET.SubElement(test, "AcquisitionTime").text = "09:26:53"
    for kind, length in (("Median", 600), ("Rhythm", None)):
        wave = ET.SubElement(root, "Waveform")
        ET.SubElement(wave, "WaveformType").text = kind
        ET.SubElement(wave, "SampleBase").text = str(fs)
        ET.SubElement(wave, "SampleExponent").text = "0"
        for name, values in leads_uv.items():
            counts = np.round(values[:length] / uv_per_bit).astype("<i2")
            lead = ET.SubElement(wave, "LeadData")
            ET.SubElement(lead, "LeadByteCountTotal").text = str(counts.nbytes)
            ET.SubElement(lead, "LeadSampleCountTotal").text = str(counts.size)
            ET.SubElement(lead, "LeadAmplitudeUnitsPerBit").text = str(uv_per_bit)
            ET.SubElement(lead, "LeadAmplitudeUnits").text = "MICROVOLTS"
            ET.SubElement(lead, "LeadID").text = name
            data = base64.b64encode(counts.tobytes()).decode()
            ET.SubElement(lead, "WaveFormData").text = (raw_override or {}).get(name, data)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def write_hl7aecg(path: Path, leads_uv: dict[str, np.ndarray], fs: int = 500, scale_uv: float = 5.0,
                  derived_beat_samples: int | None = None, code_case: str = "upper") -> Path:
    """An HL7 v3 AnnotatedECG with a RHYTHM series: TIME_ABSOLUTE + MDC_ECG_LEAD_* sequences in uV.

    ``derived_beat_samples``: also nest a REPRESENTATIVE_BEAT derivedSeries of that length inside the rhythm
    series, as real exports do (aECG implementation guide: series/derivation/derivedSeries); ``code_case``
    "mixed" writes lead codes as MDC_ECG_LEAD_aVR."""
    ns = "urn:hl7-org:v3"
    ET.register_namespace("", ns)
    xsi = "http://www.w3.org/2001/XMLSchema-instance"

    def el(parent, tag, **attrs):
        return ET.SubElement(parent, f"{{{ns}}}{tag}", {k.replace("_", ":") if k == "xsi_type" else k: v
                                                         for k, v in attrs.items()})

    root = ET.Element(f"{{{ns}}}AnnotatedECG")
    eff = el(root, "effectiveTime")
    el(eff, "low", value="20210314092653")
    subj = el(el(el(el(el(root, "componentOf"), "timepointEvent"), "componentOf"), "subjectAssignment"), "subject")
    el(el(subj, "trialSubject"), "id", root="1.2.3", extension="SUBJ-7")
    def sequences(series, length, time_code):
        seqset = el(el(series, "component"), "sequenceSet")
        time_seq = el(el(seqset, "component"), "sequence")
        el(time_seq, "code", code=time_code, codeSystem="2.16.840.1.113883.5.4")
        value = el(time_seq, "value", **{f"{{{xsi}}}type": "GLIST_TS" if time_code == "TIME_ABSOLUTE" else
                                         "GLIST_PQ"})
        el(value, "head", value="20210314092653.000" if time_code == "TIME_ABSOLUTE" else "0", unit="s")
        el(value, "increment", value=str(1 / fs), unit="s")
        for name, values in leads_uv.items():
            seq = el(el(seqset, "component"), "sequence")
            code = name.upper() if code_case == "upper" else name
            el(seq, "code", code=f"MDC_ECG_LEAD_{code}", codeSystem="2.16.840.1.113883.6.24")
            val = el(seq, "value", **{f"{{{xsi}}}type": "SLIST_PQ"})
            el(val, "origin", value="0", unit="uV")
            el(val, "scale", value=str(scale_uv), unit="uV")
            el(val, "digits").text = " ".join(str(int(v)) for v in np.round(values[:length] / scale_uv))

    series = el(el(root, "component"), "series")
    el(series, "code", code="RHYTHM", codeSystem="2.16.840.1.113883.5.4")
    if derived_beat_samples:  # before the rhythm's own sequences, so a reader that takes the first ones fails
        derived = el(el(series, "derivation"), "derivedSeries")
        el(derived, "code", code="REPRESENTATIVE_BEAT", codeSystem="2.16.840.1.113883.5.4")
        sequences(derived, derived_beat_samples, "TIME_RELATIVE")
    sequences(series, None, "TIME_ABSOLUTE")
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


#: SCP-ECG code value and DICOM CID 3001 code meaning of each standard lead.
SCPECG = {"I": ("5.6.3-9-1", "Lead I (Einthoven)"), "II": ("5.6.3-9-2", "Lead II"),
          "III": ("5.6.3-9-61", "Lead III"), "aVR": ("5.6.3-9-62", "Lead aVR"),
          "aVL": ("5.6.3-9-63", "Lead aVL"), "aVF": ("5.6.3-9-64", "Lead aVF"),
          **{f"V{k}": (f"5.6.3-9-{k + 2}", f"Lead V{k}") for k in range(1, 7)}}


def write_dicom_ecg(path: Path, leads_uv: dict[str, np.ndarray], fs: float = 500.0, codes: bool = True,
                    meanings: str = "short", median_first: bool = False) -> Path:
    """A DICOM 12-lead ECG waveform object written with pydicom (int16, sensitivity 1 uV).

    ``codes``: each channel's SCP-ECG code value (else a local code the reader cannot know); ``meanings``:
    "short" ("Lead aVR") or "scpecg" (CID 3001's, "Lead I (Einthoven)"); ``median_first``: put a 600-sample
    MEDIAN BEAT group before the RHYTHM group, as some carts do."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    sop_class = "1.2.840.10008.5.1.4.1.1.9.1.1"  # 12-lead ECG waveform storage
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.PatientSex, ds.PatientAge = "ECG", "DCM-1", "M", "071Y"
    names = list(leads_uv)
    groups = [_dicom_group(leads_uv, names, fs, "RHYTHM", None, codes, meanings)]
    if median_first:
        groups.insert(0, _dicom_group(leads_uv, names, fs, "MEDIAN BEAT", 600, codes, meanings))
    ds.WaveformSequence = groups
    ds.save_as(path, enforce_file_format=True)
    return path


def _dicom_group(leads_uv, names, fs, label, length, codes, meanings):
    from pydicom.dataset import Dataset

    data = np.stack([np.round(leads_uv[n][:length]).astype("<i2") for n in names], axis=1)  # multiplexed
    group = Dataset()
    group.WaveformOriginality = "ORIGINAL" if label == "RHYTHM" else "DERIVED"
    group.NumberOfWaveformChannels = len(names)
    group.NumberOfWaveformSamples = data.shape[0]
    group.SamplingFrequency = fs
    group.MultiplexGroupLabel = label
    group.WaveformBitsAllocated = 16
    group.WaveformSampleInterpretation = "SS"
    channels = []
    for name in names:
        ch = Dataset()
        src = Dataset()
        code, meaning = SCPECG[name]
        src.CodeValue = code if codes else f"LOCAL-{name}"
        src.CodingSchemeDesignator = "SCPECG" if codes else "99LOCAL"
        src.CodeMeaning = meaning if meanings == "scpecg" else f"Lead {name}"
        ch.ChannelSourceSequence = [src]
        unit = Dataset()
        unit.CodeValue, unit.CodingSchemeDesignator, unit.CodeMeaning = "uV", "UCUM", "microvolt"
        ch.ChannelSensitivityUnitsSequence = [unit]
        ch.ChannelSensitivity = 1.0
        ch.ChannelSensitivityCorrectionFactor = 1.0
        ch.ChannelBaseline = 0
        ch.ChannelSampleSkew = 0
        ch.WaveformBitsStored = 16
        channels.append(ch)
    group.ChannelDefinitionSequence = channels
    group.WaveformData = data.tobytes()
    return group
