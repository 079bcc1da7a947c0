"""CODE-15% layout: HDF5 shards with ``tracings`` (N, 4096, 12) at 400 Hz and ``exam_id``, plus ``exams.csv``.

Tracings are float32 on the same amplitude scale as the released files (about 1 per mV), centred and
zero-padded to 4096 samples; lead order I, II, III, aVR, aVL, aVF, V1-V6. The reader strips the padding,
rejects all-zero tracings, and checks the amplitude scale rather than trusting it (the original code
treats values as 1e-4 V).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from ecgscope.ecg import ECG
from ecgscope.errors import InvalidRecord
from ecgscope.io.base import MAX_SAMPLES_PER_LEAD, Source, file_problem, make_ecg, real_samples, typical_p2p_mv
from ecgscope.leads import STANDARD_LEADS

CODE15_FS = 400.0
CODE15_SAMPLES = 4096
EXAMS_COLUMNS = ("exam_id", "age", "is_male", "nn_predicted_age", "1dAVb", "RBBB", "LBBB", "SB", "AF", "ST",
                 "patient_id", "normal_ecg", "death", "timey", "trace_file")


def pad_centered(signal: np.ndarray, length: int = CODE15_SAMPLES) -> np.ndarray:
    """Zero-pad (B, samples, 12) to ``length`` samples with the signal centred, as CODE-15% does."""
    n = signal.shape[1]
    if n > length:
        raise ValueError(f"{n} samples do not fit in a {length}-sample CODE-15% tracing")
    left = (length - n) // 2
    out = np.zeros((signal.shape[0], length, signal.shape[2]), dtype=np.float32)
    out[:, left:left + n] = signal
    return out


class ShardWriter:
    """Append exams to one HDF5 shard; the shard is complete only after :meth:`close`."""

    def __init__(self, path: str | Path, n_exams: int):
        self.path = Path(path)
        self.file = h5py.File(self.path, "w")
        self.tracings = self.file.create_dataset("tracings", (n_exams, CODE15_SAMPLES, 12), dtype="f4",
                                                 chunks=(1, CODE15_SAMPLES, 12))
        self.exam_id = self.file.create_dataset("exam_id", (n_exams,), dtype="i8")
        self.filled = 0

    def append(self, exam_ids: np.ndarray, signal_mv: np.ndarray) -> None:
        """Add exams: ``signal_mv`` is (B, 12, samples) in mV at 400 Hz."""
        b = len(exam_ids)
        self.tracings[self.filled:self.filled + b] = pad_centered(np.transpose(signal_mv, (0, 2, 1)))
        self.exam_id[self.filled:self.filled + b] = exam_ids
        self.filled += b

    def close(self) -> None:
        """Flush and close the shard."""
        self.file.close()


# --- reading ----------------------------------------------------------------------------------------


def shards(path: str | Path) -> list[Path]:
    """The HDF5 shards at ``path`` (a shard file, or a folder of ``*.hdf5``)."""
    path = Path(path)
    return [path] if not path.is_dir() else sorted(path.glob("*.hdf5")) + sorted(path.glob("*.h5"))


#: Most exams one shard may declare (CODE-15%'s shards hold about 20,000; the full CODE set 2.3 million in all).
MAX_EXAMS_PER_SHARD = 1_000_000


#: Rows of ``exams.csv`` parsed at a time: the table is streamed, never held whole (CODE-15%'s has 345,779 rows).
EXAMS_CHUNK_ROWS = 65_536
#: The ``exams.csv`` columns the reader uses (the others are never parsed).
EXAMS_USED = ("exam_id", "patient_id", "age", "is_male", "death", "timey")


def _exams_chunks(csv: Path) -> Iterator[pd.DataFrame]:
    """``exams.csv`` in chunks of its used columns, with the problems a person can fix named."""
    problem = file_problem(csv)
    if problem:
        raise InvalidRecord(str(csv), problem)
    try:
        header = pd.read_csv(csv, nrows=0).columns
        missing = [c for c in ("exam_id", "patient_id") if c not in header]
        if missing:
            raise InvalidRecord(str(csv), f"exams table has no column {', '.join(missing)}: its exams cannot be "
                                          "linked to patients")
        yield from pd.read_csv(csv, usecols=[c for c in EXAMS_USED if c in header], chunksize=EXAMS_CHUNK_ROWS)
    except InvalidRecord:
        raise
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InvalidRecord(str(csv), f"unreadable exams table ({exc})") from exc


@functools.lru_cache(maxsize=16)
def _check_exams(folder: str) -> None:
    """Read ``exams.csv`` beside the shards through once (if there is one), so a broken table refuses its
    shards at discovery; only that verdict is kept."""
    csv = Path(folder) / "exams.csv"
    if csv.exists():
        for _ in _exams_chunks(csv):
            pass


@functools.lru_cache(maxsize=4)
def _exams(shard: str) -> tuple[pd.DataFrame | None, frozenset]:
    """The ``exams.csv`` rows of one shard's exams, indexed by exam, and the exams it describes in conflicting
    rows. Only this shard's rows are kept, so memory follows the shard, not the cohort."""
    csv = Path(shard).parent / "exams.csv"
    if not csv.exists():
        return None, frozenset()
    tracings, ids = _open(shard)
    wanted = pd.Index(ids if ids is not None else np.arange(tracings.shape[0]))
    rows = [chunk[chunk["exam_id"].isin(wanted)] for chunk in _exams_chunks(csv)]
    if not rows:  # a header and no rows
        return None, frozenset()
    table = pd.concat(rows, ignore_index=True).drop_duplicates()
    conflicting = frozenset(table.loc[table["exam_id"].duplicated(keep=False), "exam_id"].tolist())
    return table.drop_duplicates("exam_id", keep=False).set_index("exam_id"), conflicting


@functools.lru_cache(maxsize=4)
def _open(shard: str) -> tuple[h5py.Dataset, np.ndarray | None]:
    """A shard's checked ``tracings`` and ``exam_id``, opened once per process."""
    f = h5py.File(shard, "r")
    tracings = _tracings(f, shard)
    return tracings, _exam_ids(f, tracings.shape[0], shard)


def _tracings(f: h5py.File, where: str) -> h5py.Dataset:
    """The shard's ``tracings`` dataset, checked for shape and type before anything is read."""
    try:
        tracings = f.get("tracings", getlink=False)
    except (KeyError, RuntimeError, OSError) as exc:  # a soft link to itself or to nothing
        raise InvalidRecord(where, f"'tracings' cannot be resolved ({exc})") from exc
    if not isinstance(tracings, h5py.Dataset):
        what = "missing" if tracings is None else f"a {type(tracings).__name__}, not a dataset"
        raise InvalidRecord(where, f"not a CODE-15% shard: 'tracings' is {what}")
    shape = tracings.shape
    if shape is None or len(shape) != 3 or shape[2] != 12:
        raise InvalidRecord(where, f"not a CODE-15% shard: 'tracings' has shape {shape}, expected (exams, "
                                   "samples, 12)")
    if tracings.dtype.kind not in "fiu":
        raise InvalidRecord(where, f"'tracings' holds {tracings.dtype} samples, not real numbers")
    if shape[0] > MAX_EXAMS_PER_SHARD or shape[1] > MAX_SAMPLES_PER_LEAD:
        raise InvalidRecord(where, f"'tracings' declares {shape[0]:,} exams of {shape[1]:,} samples, beyond "
                                   f"the {MAX_EXAMS_PER_SHARD:,} x {MAX_SAMPLES_PER_LEAD:,} a shard may hold")
    return tracings


def _exam_ids(f: h5py.File, n: int, where: str) -> np.ndarray | None:
    """The shard's ``exam_id`` column (None when it has none), checked against the number of tracings."""
    try:
        ids = f.get("exam_id")
    except (KeyError, RuntimeError, OSError) as exc:  # a soft link to itself or to nothing
        raise InvalidRecord(where, f"'exam_id' cannot be resolved ({exc})") from exc
    if ids is None:
        return None
    if not isinstance(ids, h5py.Dataset) or ids.shape != (n,) or ids.dtype.kind not in "iu":
        raise InvalidRecord(where, f"'exam_id' must be {n:,} whole numbers, one per tracing; it is "
                                   f"{getattr(ids, 'shape', None)} of {getattr(ids, 'dtype', type(ids).__name__)}")
    return ids[()]


def _written_rows(tracings: h5py.Dataset) -> np.ndarray | None:
    """Rows of ``tracings`` that hold written data (None: all of them). HDF5 returns zeros for a declared
    but never-written region, so a 2 kB file may declare a million exams; they are found here, not read."""
    n = tracings.shape[0]
    if tracings.id.get_storage_size() == 0:
        return np.empty(0, dtype=np.int64)
    if tracings.chunks is None:
        return None
    per_row = int(np.prod([-(-s // c) for s, c in zip(tracings.shape[1:], tracings.chunks[1:], strict=True)]))
    expected = -(-n // tracings.chunks[0]) * per_row
    count = tracings.id.get_num_chunks()
    if count >= expected:
        return None
    starts = {tracings.id.get_chunk_info(k).chunk_offset[0] for k in range(count)}
    rows = [np.arange(s, min(s + tracings.chunks[0], n)) for s in sorted(starts)]
    return np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)


def discover(path: str | Path) -> Iterator[Source]:
    """One source per written exam in each shard (key: row index); the never-written rows of a shard are one
    source that quarantines them together (key ``unwritten:N``), and a shard that cannot be read at all is one
    ``InvalidRecord``."""
    for shard in shards(path):
        where = str(shard)
        problem = file_problem(shard)
        if problem:
            raise InvalidRecord(where, problem)
        _check_exams(str(shard.parent))  # a broken exams.csv refuses the shard now, not each exam later
        try:
            with h5py.File(shard, "r") as f:
                tracings = _tracings(f, where)
                n = tracings.shape[0]
                _exam_ids(f, n, where)
                written = _written_rows(tracings)
        except InvalidRecord:
            raise
        except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:  # h5py's, for broken files and links
            raise InvalidRecord(where, f"not a CODE-15% shard ({type(exc).__name__}: {exc})") from exc
        if n == 0:
            raise InvalidRecord(where, "the shard holds 0 exams")
        rows = range(n) if written is None else written
        for i in rows:
            yield Source("code15", str(shard), str(int(i)))
        if written is not None and len(written) < n:
            yield Source("code15", str(shard), f"unwritten:{n - len(written)}")


def strip_padding(tracing: np.ndarray) -> np.ndarray:
    """Remove the zero rows CODE-15% pads around a shorter (7 s) recording: (samples, leads) in, out."""
    moving = np.flatnonzero(np.any(tracing != 0, axis=1))
    return tracing[moving[0]:moving[-1] + 1] if moving.size else tracing[:0]


def amplitude_factor(signal: np.ndarray) -> tuple[float, str]:
    """Scale to mV, judged from the typical lead peak-to-peak: mV as released, 1e-4 V units, or volts."""
    p2p = typical_p2p_mv(signal)
    if p2p > 8.0:
        return 0.1, "1e-4 V units -> mV (x0.1)"
    if p2p < 0.01:
        return 1000.0, "V -> mV (x1000)"
    return 1.0, "none (mV scale, checked)"


def load(source: Source) -> ECG:
    """Read one CODE-15% exam at 400 Hz with its exams.csv row (age, sex, patient, death, follow-up)."""
    where = f"{source.path}#{source.key}"
    if source.key.startswith("unwritten:"):
        raise InvalidRecord(where, f"{int(source.key.split(':')[1]):,} exams declared in 'tracings' were never "
                                   "written (HDF5 would read them as zeros): an interrupted or corrupt export")
    tracings, ids = _open(source.path)
    i = int(source.key)
    tracing = real_samples(tracings[i], where).astype(np.float32)
    exam_id = int(ids[i]) if ids is not None else i
    tracing = strip_padding(tracing)
    if tracing.shape[0] == 0:
        raise InvalidRecord(where, f"exam {exam_id}: all-zero tracing (CODE-15% stores missing exams this way)")
    signal = tracing.T
    factor, conversion = amplitude_factor(signal)
    meta: dict = {"units_conversion": conversion}
    patient = ""
    exams, conflicting = _exams(source.path)
    if exam_id in conflicting:
        raise InvalidRecord(where, f"exam {exam_id}: exams.csv holds different rows for it; which is right?")
    if exams is not None and exam_id in exams.index:
        row = exams.loc[exam_id]
        patient = str(row["patient_id"])
        meta.update(age=float(row["age"]), sex="M" if bool(row["is_male"]) else "F")
        meta.update({k: row[k] for k in ("death", "timey") if k in row and pd.notna(row[k])})
    return make_ecg(signal * factor, CODE15_FS, STANDARD_LEADS, where, ecg_id=str(exam_id), patient_id=patient,
                    meta=meta)
