"""Independent writers for test files, following each format's published layout (not ecgscope's readers)."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

MUSE_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")


def write_muse(path: Path, leads_uv: dict[str, np.ndarray], fs: int = 500, uv_per_bit: float = 4.88,
               patient: str = "P001", raw_override: dict[str, str] | None = None) -> Path:
    """A GE MUSE RestingECG export: a median and a rhythm waveform, int16 LE base64 per lead."""
    root = ET.Element("RestingECG")
    demo = ET.SubElement(root, "PatientDemographics")
    ET.SubElement(demo, "PatientID").text = patient
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


def write_hl7aecg(path: Path, leads_uv: dict[str, np.ndarray], fs: int = 500, scale_uv: float = 5.0) -> Path:
    """An HL7 v3 AnnotatedECG with a RHYTHM series: TIME_ABSOLUTE + MDC_ECG_LEAD_* sequences in uV."""
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
    series = el(el(root, "component"), "series")
    el(series, "code", code="RHYTHM", codeSystem="2.16.840.1.113883.5.4")
    seqset = el(el(series, "component"), "sequenceSet")
    time_seq = el(el(seqset, "component"), "sequence")
    el(time_seq, "code", code="TIME_ABSOLUTE", codeSystem="2.16.840.1.113883.5.4")
    value = el(time_seq, "value", **{f"{{{xsi}}}type": "GLIST_TS"})
    el(value, "head", value="20210314092653.000")
    el(value, "increment", value=str(1 / fs), unit="s")
    for name, values in leads_uv.items():
        seq = el(el(seqset, "component"), "sequence")
        el(seq, "code", code=f"MDC_ECG_LEAD_{name.upper()}", codeSystem="2.16.840.1.113883.6.24")
        val = el(seq, "value", **{f"{{{xsi}}}type": "SLIST_PQ"})
        el(val, "origin", value="0", unit="uV")
        el(val, "scale", value=str(scale_uv), unit="uV")
        el(val, "digits").text = " ".join(str(int(v)) for v in np.round(values / scale_uv))
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def write_dicom_ecg(path: Path, leads_uv: dict[str, np.ndarray], fs: float = 500.0) -> Path:
    """A DICOM 12-lead ECG waveform object written with pydicom (int16, sensitivity 1 uV)."""
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
    data = np.stack([np.round(leads_uv[n]).astype("<i2") for n in names], axis=1)  # multiplexed
    group = Dataset()
    group.WaveformOriginality = "ORIGINAL"
    group.NumberOfWaveformChannels = len(names)
    group.NumberOfWaveformSamples = data.shape[0]
    group.SamplingFrequency = fs
    group.MultiplexGroupLabel = "RHYTHM"
    group.WaveformBitsAllocated = 16
    group.WaveformSampleInterpretation = "SS"
    channels = []
    for name in names:
        ch = Dataset()
        src = Dataset()
        src.CodeValue, src.CodingSchemeDesignator, src.CodeMeaning = "5.6.3-9-1", "SCPECG", f"Lead {name}"
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
    ds.WaveformSequence = [group]
    ds.save_as(path, enforce_file_format=True)
    return path
