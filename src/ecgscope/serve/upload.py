"""An uploaded ECG made a record: any file ecgscope reads (a WFDB record as a zip of its files), or samples as
JSON. Everything is written inside the request's own temporary folder; the client's file name is never used
(it may carry a patient's name), the format is read from the bytes."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from ecgscope import io
from ecgscope.ecg import ECG
from ecgscope.errors import EcgscopeError, InvalidRecord
from ecgscope.io.base import make_ecg, mv_factor
from ecgscope.leads import STANDARD_LEADS, normalize_lead_names

MAX_ZIP_MEMBERS = 32


class UploadError(EcgscopeError, ValueError):
    """The upload is not one readable ECG; the message says why (answered with 422)."""


class EcgSamples(BaseModel):
    """One ECG as JSON: the rate, the unit, the lead names and one list of samples per lead."""

    fs: float = Field(gt=0, le=20000, description="sampling rate, Hz")
    units: str = Field("mV", description="mV, uV or V")
    leads: list[str] = Field(default_factory=lambda: list(STANDARD_LEADS), min_length=1, max_length=15)
    samples: list[list[float]] = Field(min_length=1, max_length=15, description="one list per lead, same length")


def suffix_for(head: bytes) -> str:
    """The file suffix ecgscope's readers expect, from an upload's first bytes ('' when nothing matches)."""
    if head.startswith(b"PK\x03\x04"):
        return ".zip"
    if head.startswith(b"\x93NUMPY"):
        return ".npy"
    if head[128:132] == b"DICM":
        return ".dcm"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return ".h5"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        return ".xml"
    return ".csv" if b"," in head.split(b"\n", 1)[0] else ""


def _unzip(path: Path, limit_bytes: int) -> Path:
    """Extract a zip's files (names flattened, no folders or links) next to it; refuse bombs and oddities."""
    folder = path.parent / "unzipped"
    folder.mkdir()
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if not members or len(members) > MAX_ZIP_MEMBERS:
                raise UploadError(f"the zip holds {len(members)} files; send one record's files (at most "
                                  f"{MAX_ZIP_MEMBERS})")
            if sum(m.file_size for m in members) > limit_bytes:
                raise UploadError(f"the zip unpacks to more than the {limit_bytes / 2**20:g} MiB upload limit")
            for member in members:
                name = Path(member.filename).name
                if not name or name.startswith("."):
                    raise UploadError(f"the zip holds a file with no usable name ({member.filename!r})")
                with archive.open(member) as src, (folder / name).open("wb") as dst:
                    dst.write(src.read(limit_bytes + 1))
    except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
        raise UploadError(f"not a readable zip file ({exc})") from exc
    return folder


def record_from_file(path: Path, *, format: str | None = None, fs: float | None = None, units: str | None = None,
                     leads: tuple[str, ...] | None = None, limit_bytes: int) -> ECG:
    """The one ECG record in the uploaded file at ``path`` (named by :func:`suffix_for`); ``UploadError``
    with the reader's reason otherwise. Reasons name the upload, not the temporary path."""
    where = str(path.parent)
    target = _unzip(path, limit_bytes) if path.suffix == ".zip" else path
    found = io.discover_inputs([target], format=format, fs=fs, units=units, leads=leads)

    def clean(text: str) -> str:
        return text.replace(where + "/", "").replace(where, "upload")

    if found.rejected:
        raise UploadError(clean(f"not a readable ECG: {found.rejected[0][1]}"))
    if not found.sources:
        raise UploadError("no ECG record found in the upload" + (
            f" ({len(found.not_ecg)} file(s) of no format ecgscope reads)" if found.not_ecg else "") +
            "; a WFDB record is sent as a zip of its .hea and .dat files, CSV / NumPy with fs and units given")
    if len(found.sources) > 1:
        raise UploadError(f"the upload holds {len(found.sources)} ECG records; send one at a time")
    try:
        return io.load(found.sources[0])
    except InvalidRecord as exc:
        raise UploadError(clean(f"not a readable ECG: {exc.reason}")) from exc


def record_from_samples(data: EcgSamples) -> ECG:
    """The ECG a JSON upload describes, checked as any file is (rate, length, amplitude)."""
    if len(data.leads) != len(data.samples):
        raise UploadError(f"{len(data.leads)} lead names for {len(data.samples)} sample lists")
    if len({len(row) for row in data.samples}) != 1:
        raise UploadError("every lead needs the same number of samples")
    try:
        factor = mv_factor(data.units, "the JSON upload")
        names = tuple(normalize_lead_names(data.leads))
        return make_ecg(np.asarray(data.samples, dtype=np.float64) * factor, data.fs, names, "the JSON upload")
    except InvalidRecord as exc:
        raise UploadError(f"not a readable ECG: {exc.reason}") from exc
    except EcgscopeError as exc:
        raise UploadError(str(exc)) from exc
