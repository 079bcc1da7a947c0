"""Find every ECG record under the paths a user gives, and account for every file that is not one.

A folder in a dataset's layout (PTB-XL's ``ptbxl_database.csv``, MIMIC-IV-ECG's ``record_list.csv``,
EchoNext's metadata) is read through that dataset's index. Any other folder is walked file by file, any
mix of formats: each file becomes a record source, part of one (a WFDB ``.dat`` beside its ``.hea``,
``exams.csv`` beside CODE-15% shards), a rejected input with its reason (a named pipe, a device, a
symbolic-link loop, a WFDB signal without its header), or "not an ECG file" with what it is. Nothing is
opened that is not a regular file, and no folder is walked twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ecgscope.errors import EcgscopeError, InvalidRecord
from ecgscope.io.base import Source, file_problem

#: Markers of a folder that a dataset reader reads through its own index.
DATASET_MARKERS = (("ptbxl_database.csv", "ptbxl"), ("record_list.csv", "mimic"),
                   ("echonext_metadata*.csv", "echonext"))
_WFDB_SIGNAL = {".dat", ".mat"}
_SHARD = {".hdf5", ".h5"}


@dataclass
class Discovered:
    """What the given paths hold: record sources, inputs rejected with a reason, files that are not ECGs."""

    sources: list[Source] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    not_ecg: list[tuple[str, str]] = field(default_factory=list)

    def guarded(self, found: Iterable[Source], where: str) -> Iterator[Source]:
        """Yield the sources a reader's ``discover`` yields; its failure becomes one rejected input."""
        try:
            yield from found
        except InvalidRecord as exc:
            self.rejected.append((exc.source, exc.reason))
        except (EcgscopeError, OSError, ValueError) as exc:
            self.rejected.append((where, str(exc)))
        except Exception as exc:  # an unforeseen failure finding one path's records must not end the batch
            self.rejected.append((where, f"discovery error: {type(exc).__name__}: {exc}"))


def dataset_format(folder: Path) -> str | None:
    """The dataset whose index file ``folder`` holds, if any."""
    for pattern, fmt in DATASET_MARKERS:
        if any(folder.glob(pattern)):
            return fmt
    return None


def xml_root_tag(path: Path) -> str:
    """The local name of an XML file's root element, from its first 4 kB ('' when there is none)."""
    with path.open("rb") as handle:
        raw = handle.read(4096)
    encoding = "utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8"  # Philips 1.04 files are UTF-16
    head = raw.decode(encoding, errors="replace")
    for chunk in head.split("<")[1:]:
        if chunk[:1] not in "?!":
            return chunk.split()[0].rstrip(">/").split(":")[-1] if chunk.split() else ""
    return ""


def sniff(path: Path) -> str | None:
    """The format of one regular file from its name and first bytes; None when it is no ECG format."""
    from ecgscope.io import philips

    suffix = path.suffix.lower()
    if suffix == ".hea" or suffix in _WFDB_SIGNAL:
        return "wfdb"
    if suffix in _SHARD:
        return "code15"
    with path.open("rb") as handle:
        head = handle.read(132)
    if suffix == ".dcm" or head[128:132] == b"DICM":
        return "dicom"
    if suffix == ".xml":
        tag = xml_root_tag(path)
        return {"RestingECG": "muse", "AnnotatedECG": "hl7aecg", philips.ROOT_TAG: "philips"}.get(tag)
    return None


def walk(folder: Path, discover: Callable[..., Iterable[Source]], found: Discovered,
         arrays: bool) -> Iterator[Source]:
    """Yield the record sources below ``folder`` as they are found, and account for every other file in
    ``found`` (``discover(path, fmt)`` names a path's sources; ``arrays``: read CSV and NumPy files as records,
    which needs their rate and unit)."""
    visited: set[str] = set()

    def unlisted(error: OSError) -> None:
        found.rejected.append((str(error.filename), f"folder cannot be listed ({error.strerror})"))

    for top, dirs, files in os.walk(folder, followlinks=True, onerror=unlisted):
        real = os.path.realpath(top)
        if real in visited:
            found.not_ecg.append((top, "folder already read through another path (a symbolic link)"))
            dirs[:] = []
            continue
        visited.add(real)
        here = Path(top)
        if here != folder and dataset_format(here):
            yield from found.guarded(discover(here, dataset_format(here)), top)
            dirs[:] = []
            continue
        trees = sorted(d for d in dirs if d.startswith("records") and d.removeprefix("records").isdigit())
        if len(trees) > 1:  # PTB-XL's two rate trees without its CSV: the WFDB reader picks one
            tree = list(found.guarded(discover(here, "wfdb"), top))
            yield from tree
            chosen = {str(Path(s.path).parent) for s in tree}
            for tree in trees:
                for header in sorted((here / tree).rglob("*.hea")):
                    if str(header.parent) not in chosen:
                        found.not_ecg.append((str(header), "the same ECG in PTB-XL's other rate tree"))
            dirs[:] = [d for d in dirs if d not in trees]
        dirs.sort()
        names = set(files)
        shards_here = any(Path(f).suffix.lower() in _SHARD for f in files)
        for name in sorted(files):
            path = here / name
            problem = file_problem(path)
            if problem:
                found.rejected.append((str(path), problem))
                continue
            suffix = path.suffix.lower()
            if suffix in _WFDB_SIGNAL and f"{path.stem}.hea" in names:
                continue  # read with its header
            if name == "exams.csv" and shards_here:
                continue  # read with the shards beside it
            try:
                fmt = sniff(path)
            except OSError as exc:
                found.rejected.append((str(path), f"cannot be read ({exc.strerror or exc})"))
                continue
            if fmt is None and suffix in (".csv", ".npy"):
                if arrays:
                    fmt = "array"
                else:
                    found.not_ecg.append((str(path), "CSV / NumPy file: read as an ECG only with --input-fs and "
                                                     "--input-units"))
                    continue
            if fmt is None:
                found.not_ecg.append((str(path), "no ECG format ecgscope reads"))
                continue
            yield from found.guarded(discover(path, fmt), str(path))
