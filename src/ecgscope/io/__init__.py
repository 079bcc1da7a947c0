"""File formats: one module per format, each with ``discover(path) -> Sources`` and ``load(source) -> ECG``.

``read(path)`` detects the format and yields ECG records in mV with canonical lead names; ``discover``
and ``load`` let ingest read each record on its own, so a corrupt one is reported and the rest go on.
Writers exist where a format is also an output (the simulator writes its cohorts through them).

Formats: ``wfdb`` (a record or a folder of them), ``ptbxl`` (PTB-XL tree), ``mimic`` (MIMIC-IV-ECG tree),
``code15`` (HDF5 shards + exams.csv), ``echonext`` (arrays + metadata), ``muse`` (GE MUSE XML),
``hl7aecg`` (HL7 aECG XML), ``philips`` (Philips SierraECG XML), ``dicom`` (12-lead waveform), ``array``
(CSV / .npy with fs and units given).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from pathlib import Path

from ecgscope.ecg import ECG
from ecgscope.errors import EcgscopeError, InvalidRecord, UnknownFormatError
from ecgscope.io import arrays, code15, dicom, echonext, hl7aecg, muse, philips
from ecgscope.io import wfdb as wfdb_io
from ecgscope.io.atomic import atomic_dir, atomic_file, write_parquet, write_text
from ecgscope.io.base import Source, file_problem
from ecgscope.io.discovery import Discovered, dataset_format, sniff, walk, xml_root_tag

_DISCOVER = {
    "wfdb": wfdb_io.discover, "ptbxl": wfdb_io.discover_ptbxl, "mimic": wfdb_io.discover_mimic,
    "code15": code15.discover, "echonext": echonext.discover, "muse": muse.discover,
    "hl7aecg": hl7aecg.discover, "philips": philips.discover, "dicom": dicom.discover, "array": arrays.discover,
}
_LOAD = {
    "wfdb": wfdb_io.load, "ptbxl": wfdb_io.load_ptbxl, "mimic": wfdb_io.load_mimic, "code15": code15.load,
    "echonext": echonext.load, "muse": muse.load, "hl7aecg": hl7aecg.load, "philips": philips.load,
    "dicom": dicom.load, "array": arrays.load,
}
FORMATS = tuple(_DISCOVER)


def detect_format(path: str | Path) -> str:
    """Name the format of ``path`` from its name, its folder layout, or its first bytes."""
    path = Path(path)
    if path.is_dir():
        fmt = dataset_format(path)
        if fmt:
            return fmt
        shards = any(path.glob("*.hdf5")) or any(path.glob("*.h5"))
        if shards and not any(path.rglob("*.hea")):
            return "code15"
        if any(path.rglob("*.hea")) and not shards:
            return "wfdb"
        raise UnknownFormatError(f"{path}: a folder of mixed or unknown files; ingest walks it file by file "
                                 "(io.discover_inputs), or name a --format")
    suffix = path.suffix.lower()
    if suffix in {".hea", ".dat", ".mat"} or (not suffix and path.with_suffix(".hea").exists()):
        return "wfdb"
    if suffix in {".hdf5", ".h5"}:
        return "code15"
    if path.name.startswith("EchoNext_") and suffix == ".npy":
        return "echonext"
    if suffix in {".csv", ".npy"}:
        return "array"
    if not path.exists():
        raise UnknownFormatError(f"{path}: no such file or folder")
    problem = file_problem(path)
    if problem:
        raise UnknownFormatError(f"{path}: {problem}")
    fmt = sniff(path)
    if fmt:
        return fmt
    if suffix == ".xml":
        tag = xml_root_tag(path)
        raise UnknownFormatError(f"{path}: XML with root <{tag or '?'}> is not GE MUSE (<RestingECG>), HL7 aECG "
                                 f"(<AnnotatedECG>) or Philips (<{philips.ROOT_TAG}>)")
    raise UnknownFormatError(f"{path}: unknown ECG format; ecgscope reads {', '.join(FORMATS)}")


def discover(path: str | Path, format: str | None = None, **options) -> Iterator[Source]:
    """The records at ``path`` as ``Source`` handles (format detected unless given).

    ``options`` reach only the readers that take them (``rate`` for PTB-XL, ``fs``/``units``/``leads`` for
    CSV and NumPy), so one set of options can serve a mixed list of inputs.
    """
    fmt = format or detect_format(path)
    if fmt not in _DISCOVER:
        raise UnknownFormatError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    accepted = inspect.signature(_DISCOVER[fmt]).parameters
    return _DISCOVER[fmt](path, **{k: v for k, v in options.items() if k in accepted and v is not None})


def input_exists(path: str | Path) -> bool:
    """Whether ``path`` names something to read: a file, folder or link, or a WFDB record by its base name."""
    return os.path.lexists(path) or os.path.exists(f"{path}.hea")


def discover_inputs(paths, format: str | None = None, **options) -> Discovered:
    """Every record under ``paths``, and every input accounted for: rejected with its reason, or not an ECG.

    A file is read in its detected format (or ``format``); a folder in a dataset's layout through that
    dataset's index; any other folder file by file, any mix of formats (:mod:`ecgscope.io.discovery`).
    """
    found = Discovered()
    found.sources = list(iter_inputs(paths, found, format, **options))
    return found


def iter_inputs(paths, found: Discovered, format: str | None = None, **options) -> Iterator[Source]:
    """:func:`discover_inputs` as a stream: yield each record source as it is found, so a million-file tree is
    never held; rejected inputs and files that are not ECGs go into ``found`` (complete once exhausted)."""
    arrays = options.get("fs") is not None and options.get("units") is not None
    for given in paths:
        path = Path(given)
        if not input_exists(path):
            found.rejected.append((str(path), "no such file or folder"))
            continue
        problem = None if path.is_dir() or not os.path.lexists(path) else file_problem(path)  # a WFDB base name
        if problem:
            found.rejected.append((str(path), problem))
        elif format is not None or not path.is_dir() or dataset_format(path):
            try:  # detection fails here, a reader's discovery inside guarded()
                sources = discover(path, format, **options)
            except (EcgscopeError, OSError, ValueError) as exc:
                found.rejected.append((str(path), exc.reason if isinstance(exc, InvalidRecord) else str(exc)))
                continue
            yield from found.guarded(sources, str(path))
        else:
            yield from walk(path, lambda p, fmt: discover(p, fmt, **options), found, arrays)


def load(source: Source) -> ECG:
    """Read one record; every failure, expected or not, raises ``InvalidRecord`` naming the file and reason."""
    try:
        return _LOAD[source.format](source)
    except InvalidRecord:
        raise
    except EcgscopeError as exc:
        raise InvalidRecord(source.id, str(exc)) from exc
    except Exception as exc:  # a reader bug or a file no rule foresaw (MemoryError and RecursionError too)
        raise InvalidRecord(source.id, f"reader error: {type(exc).__name__}: {exc}") from exc


def read(path: str | Path, format: str | None = None, **options) -> Iterator[ECG]:
    """Read every record at ``path`` (stops at the first invalid one; ingest skips and reports them)."""
    for source in discover(path, format, **options):
        yield load(source)


__all__ = ["FORMATS", "Discovered", "Source", "atomic_dir", "atomic_file", "detect_format", "discover",
           "discover_inputs", "input_exists", "iter_inputs", "load", "read", "write_parquet", "write_text",
           "xml_root_tag"]
