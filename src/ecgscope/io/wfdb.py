"""WFDB records (``.hea`` + ``.dat`` or MATLAB ``.mat``) through the ``wfdb`` package, with the PTB-XL and
MIMIC-IV-ECG folder layouts on top. Leads are mapped by name, never by position (MIMIC-IV-ECG stores aVF
before aVL), and units are converted to mV from each signal's header entry.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import wfdb

from ecgscope.ecg import ECG
from ecgscope.errors import InvalidRecord
from ecgscope.io.base import Source, check_file, file_problem, make_ecg, mv_factor

#: Bytes per sample of the WFDB storage formats (the packed ones are fractional).
_BYTES_PER_SAMPLE = {"8": 1, "16": 2, "61": 2, "80": 1, "160": 2, "24": 3, "32": 4, "212": 1.5,
                     "310": 4 / 3, "311": 4 / 3}
#: Longest record accepted: a day of signal. Longer declared lengths are corrupt headers, not ECGs.
MAX_SECONDS = 24 * 3600


def ptbxl_record_path(ecg_id: int, fs: float) -> str:
    """PTB-XL's relative record path: ``records500/00000/00001_hr`` (``records100/..._lr`` at 100 Hz)."""
    kind, suffix = ("records100", "lr") if int(fs) == 100 else (f"records{int(fs)}", "hr")
    return f"{kind}/{(ecg_id // 1000) * 1000:05d}/{ecg_id:05d}_{suffix}"


def write_record(path: str | Path, digital: np.ndarray, fs: float, leads: Sequence[str],
                 units_per_mv: float, comments: Sequence[str] = (), when: datetime | None = None) -> Path:
    """Write one record of int16 samples (leads, samples) as WFDB format 16, atomically.

    ``path`` is the record path without extension; the ``.dat`` lands before the ``.hea`` so a reader that
    sees a header always finds its signal. The bytes are those ``wfdb.wrsamp`` writes for the same record
    (a test holds them equal, to the second of ``when``), written directly: ``wrsamp`` spends ~95 % of its
    50 ms per record validating header fields through pandas lookups, which made simulating a cohort's files
    slower than simulating its signals.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.ascontiguousarray(np.asarray(digital).T).astype("<i2", copy=False)  # (samples, leads), interleaved
    n_samples, n_leads = samples.shape
    if n_leads != len(leads):
        raise ValueError(f"{n_leads} signals but {len(leads)} lead names")
    name = path.name
    rate = f"{fs:g}" if float(fs).is_integer() else repr(float(fs))
    record_line = f"{name} {n_leads} {rate} {n_samples}"
    if when is not None:
        record_line += f" {when:%H:%M:%S} {when:%d/%m/%Y}"
    checksums = samples.astype(np.int64).sum(axis=0) % 65536
    initial = samples[0] if n_samples else np.zeros(n_leads, np.int16)
    lines = [record_line] + [f"{name}.dat 16 {float(units_per_mv)}(0)/mV 16 0 {int(initial[k])} {int(checksums[k])} 0 "
                             f"{lead}" for k, lead in enumerate(leads)] + [f"# {c}" for c in comments]
    _write_then_rename(path.with_suffix(".dat"), samples.tobytes())
    _write_then_rename(path.with_suffix(".hea"), ("\n".join(lines) + "\n").encode())
    return path


def _write_then_rename(path: Path, data: bytes) -> None:
    """``data`` into ``path`` through a hidden ``.NAME.PID.partial`` beside it, so ``path`` appears complete or
    not at all (no scan for older leftovers: a folder of a thousand records would be listed per record)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def record_base(path: str | Path) -> Path:
    """The record path without extension, from ``x``, ``x.hea``, ``x.dat`` or ``x.mat``."""
    path = Path(path)
    return path.with_suffix("") if path.suffix.lower() in {".hea", ".dat", ".mat"} else path


def _declared_fs(hea: Path) -> str:
    """The sampling-rate field of a header's record line as written (wfdb reads '-500' as 250 Hz)."""
    for line in hea.read_text(errors="replace").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            fields = line.split()
            return fields[2].split("/")[0].split("(")[0] if len(fields) > 2 else ""
    return ""


def _check_header_against_files(header: wfdb.Record, base: Path, where: str) -> None:
    """Catch truncated or oversized signal files and absurd declared values before wfdb allocates anything."""
    if not header.n_sig or not header.file_name or len(header.file_name) != header.n_sig:
        raise InvalidRecord(where, f"the header declares {header.n_sig} signals but describes "
                                   f"{len(header.file_name or [])}: no signal lines")
    written = _declared_fs(base.with_suffix(".hea"))
    try:
        as_written = float(written) if written else None
    except ValueError:
        as_written = float("nan")
    if as_written is not None and as_written != header.fs:
        raise InvalidRecord(where, f"sampling rate field {written!r} in the header is not a plausible rate")
    if header.fs is None or not 0 < header.fs <= 20_000:
        raise InvalidRecord(where, f"sampling rate {header.fs} Hz in the header is not plausible")
    if header.sig_len is None or header.sig_len <= 0:
        raise InvalidRecord(where, "the header declares no samples")
    if header.sig_len > MAX_SECONDS * header.fs:
        raise InvalidRecord(where, f"the header declares {header.sig_len:,} samples "
                                   f"({header.sig_len / header.fs / 3600:,.0f} hours): not an ECG record")
    per_file: dict[str, float] = {}
    frame: dict[str, float] = {}  # bytes of one sample of every signal in the file
    for name, fmt, offset in zip(header.file_name, header.fmt, header.byte_offset or [0] * header.n_sig,
                                 strict=True):
        size = _BYTES_PER_SAMPLE.get(str(fmt))
        if size is None:
            continue
        per_file[name] = per_file.get(name, float(offset or 0)) + size * header.sig_len
        frame[name] = frame.get(name, 0.0) + size
    for name, needed in per_file.items():
        file = base.parent / name
        if not file.exists():
            raise InvalidRecord(where, f"signal file {name} named in the header is missing")
        problem = file_problem(file)
        if problem:
            raise InvalidRecord(where, f"signal file {name}: {problem}")
        have = file.stat().st_size
        if have < int(needed):
            raise InvalidRecord(where, f"signal file {name} is truncated: the header declares "
                                       f"{header.sig_len:,} samples per lead ({int(needed):,} bytes), the file "
                                       f"has {have:,} bytes")
        if have > needed + frame[name] + 1:  # a writer may pad the last frame; more is a header that lies
            held = int((have - (needed - frame[name] * header.sig_len)) // frame[name])
            raise InvalidRecord(where, f"the header declares {header.sig_len:,} samples per lead but signal file "
                                       f"{name} holds about {held:,}: header and signal disagree")


_SEX = {"m": "M", "male": "M", "f": "F", "female": "F"}


def header_demographics(comments: Sequence[str]) -> dict:
    """Age, sex and patient id from a WFDB header's comments, as the common conventions write them: CinC
    (``# Age: 83``, ``# Sex: Male``), LUDB (``#<age>: 51``, ``#<sex>: F``) and PTB (``age: 81``,
    ``sex: female``); an unknown or unreadable value is left out, never guessed."""
    found: dict = {}
    for line in comments:
        key, sep, value = str(line).strip().lstrip("#").partition(":")
        if not sep:
            continue
        key, value = key.strip().strip("<>").strip().lower(), value.strip()
        if key == "age":
            try:
                age = float(value)
            except ValueError:
                continue
            if 0 <= age <= 120:
                found["age"] = age
        elif key == "sex" and value.lower() in _SEX:
            found["sex"] = _SEX[value.lower()]
        elif key in ("patient", "patient id", "patient_id", "subject_id") and value:
            found["patient_id"] = value
    return found


def record_patient_id(base: Path, comments: Sequence[str]) -> str:
    """A WFDB record's patient: its header's patient id, else a PTB-style ``patientNNN`` parent folder, else
    the record itself (a lone record is its own patient, so no two records are ever merged by guess)."""
    named = header_demographics(comments).get("patient_id")
    if named:
        return named
    if base.parent.name.lower().startswith("patient"):
        return base.parent.name
    return base.name


@functools.cache
def _signal_specs() -> dict[str, tuple[object, str | None]]:
    """wfdb's signal-field table as {field: (read default, "int" / "float" / None)}: looked up per field and
    lead, a dict costs nanoseconds where the DataFrame's ``.loc`` costs microseconds."""
    from wfdb.io import _header

    kinds = {id(_header.int_types): "int", id(_header.float_types): "float"}
    return {field: (row["read_default"], kinds.get(id(row["allowed_types"])))
            for field, row in _header.SIGNAL_SPECS.iterrows()}


def _signal_fields(lines: Sequence[str]) -> dict[str, list]:
    """wfdb's ``_parse_signal_lines`` with its field table in a dict: the same regular expression, defaults and
    casts (wfdb's version looked the table up in a DataFrame per field and lead, about 3 ms a 12-lead header)."""
    from wfdb.io import _header

    specs = _signal_specs()
    fields: dict[str, list] = {field: [None] * len(lines) for field in specs}
    for ch, line in enumerate(lines):
        match = _header.rx_signal.match(line)
        if match is None:
            raise _header.HeaderSyntaxError("invalid syntax in signal line")
        raw = match.groupdict()
        for field, (default, kind) in specs.items():
            value = raw[field]
            if value == "":
                value = default
                if field == "baseline" and raw["adc_zero"] != "":
                    value = int(raw["adc_zero"])  # a missing baseline defaults to the ADC zero
            elif kind == "int":
                value = int(value)
            elif kind == "float":
                value = float(value)
                if field == "adc_gain" and value == 0:
                    value = 200.0  # WFDB: a gain of 0 means 200
            fields[field][ch] = value
    return fields


def _read_header(base: Path) -> wfdb.Record:
    """``wfdb.rdheader(base)`` for a local record, its signal lines parsed by :func:`_signal_fields`
    (multi-segment headers go to ``wfdb.rdheader`` itself; tests/test_readers.py holds the two equal)."""
    from wfdb.io import _header, header

    text = base.with_suffix(".hea").read_text(encoding="ascii", errors="ignore")
    header_lines, comment_lines = header.parse_header_content(text)
    record_fields = _header._parse_record_line(header_lines[0])
    if record_fields["n_seg"] is not None:
        return wfdb.rdheader(str(base))
    record = wfdb.Record()
    if len(header_lines) > 1:
        for field, values in _signal_fields(header_lines[1:]).items():
            setattr(record, field, values)
    for field, value in record_fields.items():
        if field != "n_seg":
            setattr(record, field, value)
    record.comments = [line.strip(" \t#") for line in comment_lines]
    return record


def _read_signals(header: wfdb.Record, base: Path) -> wfdb.Record:
    """``wfdb.rdrecord(base, physical=True)`` for a single-segment record whose header is already parsed and
    checked: the same steps on the same header object, without parsing the header a second time (wfdb's
    header parser was about half of reading a 12-lead record; tests/test_readers.py holds the result equal to
    ``rdrecord``'s)."""
    from wfdb.io import _signal

    channels = list(range(header.n_sig))
    header.check_read_inputs(0, header.sig_len, channels, True, True, 64)
    header.e_d_signal = _signal._rd_segment(
        file_name=header.file_name, dir_name=os.path.abspath(base.parent), pn_dir=None, fmt=header.fmt,
        n_sig=header.n_sig, sig_len=header.sig_len, byte_offset=header.byte_offset,
        samps_per_frame=header.samps_per_frame, skew=header.skew, init_value=header.init_value, sampfrom=0,
        sampto=header.sig_len, channels=channels, ignore_skew=False, no_file=False, sig_data=None, return_res=64)
    header._arrange_fields(channels=channels, sampfrom=0, smooth_frames=True)
    header.dac(expanded=False, return_res=64, inplace=True)
    header.convert_dtype(True, 64, True)
    return header


def load_record(path: str | Path, **fields) -> ECG:
    """Read one WFDB record as an ECG in mV with canonical lead names; ``fields`` fill ids and metadata
    (demographics the header's comments carry are kept where ``fields`` give none)."""
    base = record_base(path)
    where = str(path)
    if not base.with_suffix(".hea").exists():
        signal = next((base.with_suffix(s) for s in (".mat", ".dat") if base.with_suffix(s).exists()), None)
        what = f"{signal.name} is a WFDB signal file" if signal else f"no WFDB record {base.name}"
        raise InvalidRecord(where, f"{what} without its header {base.name}.hea, which holds the sampling rate, "
                                   "lead names and gains: put the .hea beside it")
    check_file(base.with_suffix(".hea"), where, max_bytes=2**20)
    try:
        header = _read_header(base)
    except Exception as exc:  # wfdb raises many types for broken headers
        raise InvalidRecord(where, f"unreadable WFDB header ({type(exc).__name__}: {exc})") from exc
    _check_header_against_files(header, base, where)
    try:
        record = _read_signals(header, base)
    except Exception as exc:
        raise InvalidRecord(where, f"unreadable WFDB signal ({type(exc).__name__}: {exc})") from exc
    units = record.units or ["mV"] * record.n_sig
    factors = np.array([mv_factor(u or "mV", where) for u in units])
    signal = (record.p_signal * factors[None, :]).T
    conversion = "none (mV)" if np.all(factors == 1.0) else f"{'/'.join(sorted(set(units)))} -> mV"
    header_meta = {k: v for k, v in header_demographics(record.comments).items() if k != "patient_id"}
    given = {k: v for k, v in fields.pop("meta", {}).items() if v is not None}
    meta = {"units_conversion": conversion, "comments": record.comments, **header_meta, **given}
    when = fields.pop("acquired_at", None) or (record.base_datetime if record.base_date else None)
    fields.setdefault("ecg_id", base.name)
    if not fields.get("patient_id"):
        fields["patient_id"] = record_patient_id(base, record.comments)
    return make_ecg(signal, record.fs, record.sig_name, where, acquired_at=when, meta=meta, **fields)


def closest_rate(rates: Sequence[int], store_fs: float | None) -> int:
    """Of the rates a dataset ships, the one to read for a store at ``store_fs``: the closest at or above it
    (nothing upsampled that need not be), else the highest; the highest when ``store_fs`` is unknown."""
    above = [r for r in rates if store_fs is not None and r >= store_fs]
    return min(above) if above else max(rates)


def discover(path: str | Path, rate: int | None = None, store_fs: float | None = None) -> Iterator[Source]:
    """Every WFDB record at ``path``: one record, or every ``.hea`` below a folder.

    A folder in PTB-XL's layout without its database CSV (``records100/`` and ``records500/`` holding the same
    ECGs as ``NNNNN_lr`` and ``NNNNN_hr``) gives each ECG once, from the tree ``rate`` names or else the one
    closest to ``store_fs``."""
    path = Path(path)
    if not path.is_dir():
        yield Source("wfdb", str(record_base(path)))
        return
    trees = {int(d.name.removeprefix("records")): d for d in path.glob("records*")
             if d.is_dir() and d.name.removeprefix("records").isdigit()}
    skip: list[Path] = []
    if len(trees) > 1:
        if rate is not None and rate not in trees:
            raise ValueError(f"{path} holds the trees {sorted(trees)} Hz, not {rate}; choose one with --rate")
        keep = rate if rate is not None else closest_rate(sorted(trees), store_fs)
        skip = [tree for r, tree in trees.items() if r != keep]
    for header in sorted(path.rglob("*.hea")):
        if not any(tree in header.parents for tree in skip):
            yield Source("wfdb", str(header.with_suffix("")))


def load(source: Source) -> ECG:
    """Read one discovered WFDB record."""
    return load_record(source.path)


def read(path: str | Path) -> Iterator[ECG]:
    """Read the WFDB record(s) at ``path``."""
    for source in discover(path):
        yield load(source)


# --- PTB-XL -----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _ptbxl_database(root: str) -> pd.DataFrame:
    return pd.read_csv(Path(root) / "ptbxl_database.csv", index_col="ecg_id")


@functools.lru_cache(maxsize=8)
def _ptbxl_rows(root: str) -> dict[int, dict]:
    """The database's rows as dicts by ``ecg_id``: a row read this way costs microseconds, where ``.loc`` on
    the mixed-type table took about 3 ms a record."""
    return _ptbxl_database(root).to_dict("index")


def discover_ptbxl(root: str | Path, rate: int | None = None, store_fs: float | None = None) -> Iterator[Source]:
    """PTB-XL records listed in ``ptbxl_database.csv``, at 500 Hz (``filename_hr``) or 100 Hz (``_lr``): the
    tree ``rate`` names, else the one closest to ``store_fs`` (500 Hz when neither is given)."""
    db = _ptbxl_database(str(root))
    if rate is None:
        shipped = [r for r, column in ((100, "filename_lr"), (500, "filename_hr"))
                   if column in db and db[column].notna().any()]
        rate = closest_rate(shipped or [500], store_fs)
    if rate not in (100, 500):
        raise ValueError(f"PTB-XL has records at 100 or 500 Hz, not {rate}")
    column = "filename_hr" if rate == 500 else "filename_lr"
    if db[column].isna().all():
        other = 100 if rate == 500 else 500
        raise ValueError(f"{root}: ptbxl_database.csv lists no records in {column}; read the other tree with "
                         f"--rate {other}")
    for ecg_id, rel in db[column].items():
        yield Source("ptbxl", str(root), f"{ecg_id}:{rel}")


def load_ptbxl(source: Source) -> ECG:
    """Read one PTB-XL record with its demographics, fold and recording date from the database CSV."""
    ecg_id, rel = source.key.split(":", 1)
    row = _ptbxl_rows(source.path)[int(ecg_id)]
    sex = {0: "M", 1: "F"}.get(int(row["sex"])) if pd.notna(row.get("sex")) else None
    meta = {"age": None if pd.isna(row.get("age")) else float(row["age"]), "sex": sex,
            "strat_fold": int(row["strat_fold"]) if "strat_fold" in row else None,
            "scp_codes": row.get("scp_codes")}
    when = pd.Timestamp(row["recording_date"]).to_pydatetime() if pd.notna(row.get("recording_date")) else None
    pid = row.get("patient_id")
    return load_record(Path(source.path) / rel, ecg_id=str(ecg_id),
                       patient_id="" if pd.isna(pid) else str(int(pid)), acquired_at=when, meta=meta)


# --- MIMIC-IV-ECG -----------------------------------------------------------------------------------


#: Rows of ``record_list.csv`` parsed at a time (MIMIC-IV-ECG lists 800,035 records): streamed, never held whole.
MIMIC_CHUNK_ROWS = 65_536
_MIMIC_COLUMNS = ("subject_id", "study_id", "ecg_time", "path")


def discover_mimic(root: str | Path) -> Iterator[Source]:
    """MIMIC-IV-ECG records listed in ``record_list.csv`` (subject_id, study_id, ecg_time, path). The source key
    carries the row's fields (``subject|study|time|path``), so no process holds the list."""
    csv = Path(root) / "record_list.csv"
    missing = [c for c in _MIMIC_COLUMNS if c not in pd.read_csv(csv, nrows=0).columns]
    if missing:
        raise InvalidRecord(str(csv), f"record_list.csv has no column {', '.join(missing)}: its records cannot be "
                                      "found or linked to patients")
    for chunk in pd.read_csv(csv, usecols=list(_MIMIC_COLUMNS), dtype=str, keep_default_na=False,
                             chunksize=MIMIC_CHUNK_ROWS):
        for subject, study, when, rel in chunk.itertuples(index=False):
            yield Source("mimic", str(root), f"{subject}|{study}|{when}|{rel}")


def load_mimic(source: Source) -> ECG:
    """Read one MIMIC-IV-ECG record; patient is ``subject_id``, ECG is ``study_id``."""
    subject, study, when, rel = source.key.split("|", 3)
    return load_record(Path(source.path) / rel, ecg_id=study, patient_id=subject,
                       acquired_at=pd.Timestamp(when).to_pydatetime() if when else None)
