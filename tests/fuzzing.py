"""Mutated ECG files for fuzzing the readers: every supported format, mutated in bytes, fields, structure and
file-system object, and the check that decides whether a variant's outcome is acceptable.

``variant(folder, fmt, kind, seed)`` writes one mutated input and returns the path to give to ingest; the
test suite drives it with Hypothesis (tests/test_fuzz.py) and benchmarks/fuzz_benchmark.py runs 10,000+.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import h5py
import numpy as np

from ecgscope import io
from ecgscope.io.base import GAIN_P2P_MV, MAX_SAMPLE_MV, MIN_SECONDS, typical_p2p_mv
from ecgscope.store.ingest import _standardise_or_reason
from ecgscope.store.layout import StoreConfig

from .conftest import SHARED_DATA, ludb_leads_uv
from .writers import MUSE_LEADS, write_dicom_ecg, write_hl7aecg, write_muse

FORMATS = ("wfdb", "muse", "hl7aecg", "dicom", "code15", "npy", "csv", "philips")
KINDS = ("flip_bytes", "truncate", "insert_bytes", "edit_field", "drop_part", "fs_object")
#: Values an edited field takes: the ones that broke readers (0, negative, huge, not a number, empty).
NASTY = ("0", "-1", "-500", "1e400", "400", "nan", "inf", "", "99999999999999", "abc", "0.0000001", "2.5", "-0")
CONFIG = StoreConfig(fs=500.0, n_samples=5000)
INPUT_OPTIONS = {"fs": 500.0, "units": "mV", "store_fs": 500.0}


def seeds(folder: Path) -> dict[str, Path]:
    """One valid file (or record) per format under ``folder``/seeds, written once."""
    root = folder / "seeds"
    done = {fmt: root / name for fmt, name in (("wfdb", "rec.hea"), ("muse", "muse.xml"), ("hl7aecg", "aecg.xml"),
                                               ("dicom", "wave.dcm"), ("code15", "shard.hdf5"), ("npy", "rec.npy"),
                                               ("csv", "rec.csv"), ("philips", "philips.xml"))}
    if all(p.exists() for p in done.values()):
        return done
    root.mkdir(parents=True, exist_ok=True)
    uv = ludb_leads_uv()
    for suffix in (".hea", ".dat"):
        shutil.copy(SHARED_DATA / "ludb" / f"1{suffix}", root / f"rec{suffix}")
    done["wfdb"].write_text(done["wfdb"].read_text().replace("1.dat", "rec.dat").replace("1 12", "rec 12", 1))
    write_muse(done["muse"], {n: uv[n] for n in MUSE_LEADS})
    write_hl7aecg(done["hl7aecg"], uv)
    write_dicom_ecg(done["dicom"], uv)
    real = h5py.File(SHARED_DATA / "code15" / "exams_part0.hdf5")["tracings"][:2]
    with h5py.File(done["code15"], "w") as f:
        f["tracings"] = real
        f["exam_id"] = np.array([1, 2])
    mv = np.stack([uv[n] for n in ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")]) / 1000
    np.save(done["npy"], mv.astype(np.float32))
    np.savetxt(done["csv"], mv.T, delimiter=",", header="I,II,III,aVR,aVL,aVF,V1,V2,V3,V4,V5,V6", comments="",
               fmt="%.4f")
    shutil.copy(Path(__file__).parent / "data" / "philips" / "129DYPRG.XML", done["philips"])
    return done


def _copy_seed(seed: Path, out: Path) -> Path:
    """Copy a seed (with a WFDB record's signal file) into ``out``; return the copy to mutate."""
    out.mkdir(parents=True, exist_ok=True)
    if seed.suffix == ".hea":
        shutil.copy(seed.with_suffix(".dat"), out / "rec.dat")
    target = out / seed.name
    shutil.copy(seed, target)
    return target


def _target(path: Path, rng: np.random.Generator) -> Path:
    """The file of a record to mutate: a WFDB record's header or its signal file."""
    return path.with_suffix(".dat") if path.suffix == ".hea" and rng.random() < 0.5 else path


def _flip(data: bytearray, rng: np.random.Generator) -> bytearray:
    for _ in range(int(rng.integers(1, 33))):
        data[int(rng.integers(len(data)))] = int(rng.integers(256))
    return data


def _edit_text_field(text: str, rng: np.random.Generator) -> str:
    numbers = list(re.finditer(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?", text))
    if not numbers:
        return text
    hit = numbers[int(rng.integers(len(numbers)))]
    return text[:hit.start()] + str(rng.choice(NASTY)) + text[hit.end():]


def _drop_text_part(path: Path, text: str, rng: np.random.Generator) -> str:
    if path.suffix.lower() == ".xml":
        tags = list(re.finditer(r"<([A-Za-z][\w:]*)\b[^>]*?(?:/>|>.*?</\1>)", text, flags=re.S))
        if tags:
            hit = tags[int(rng.integers(len(tags)))]
            return text[:hit.start()] + text[hit.end():]
    lines = text.splitlines()
    if len(lines) > 1:
        del lines[int(rng.integers(len(lines)))]
    return "\n".join(lines) + "\n"


def _mutate_hdf5(path: Path, kind: str, rng: np.random.Generator) -> None:
    with h5py.File(path, "a") as f:
        name = str(rng.choice(["tracings", "exam_id"]))
        if kind == "drop_part":
            del f[name]
            return
        del f[name]
        shapes = [(), (0,), (1,), (2,), (2, 3), (2, 4096), (2, 4096, 11), (2, 3, 12), (1, 4096, 12), (5, 4096, 12)]
        shape = shapes[int(rng.integers(len(shapes)))]
        dtype = str(rng.choice(["f4", "f8", "i2", "i8", "u1", "bool", "c8", "S4"]))
        choice = rng.random()
        if choice < 0.15:
            f[name] = h5py.SoftLink(f"/{name}")
        elif choice < 0.3:
            f.create_group(name)
        elif choice < 0.45:
            f.create_dataset(name, (int(rng.integers(1, 10**6)), 4096, 12), dtype="f4", chunks=(1, 4096, 12))
        else:
            values = rng.normal(0, float(rng.choice([0.01, 1, 1e3, 1e30])), shape)
            f[name] = values.astype(dtype) if dtype != "S4" else np.full(shape, b"ab", dtype="S4")


def _mutate_dicom(path: Path, kind: str, rng: np.random.Generator) -> None:
    import pydicom

    ds = pydicom.dcmread(path)
    group = ds.WaveformSequence[0]
    channel = group.ChannelDefinitionSequence[int(rng.integers(len(group.ChannelDefinitionSequence)))]
    fields = [(group, k) for k in ("NumberOfWaveformChannels", "NumberOfWaveformSamples", "SamplingFrequency",
                                   "WaveformBitsAllocated", "WaveformSampleInterpretation", "WaveformData")]
    fields += [(channel, k) for k in ("ChannelSensitivity", "ChannelSensitivityCorrectionFactor", "ChannelBaseline",
                                      "ChannelSourceSequence", "ChannelSensitivityUnitsSequence")]
    owner, keyword = fields[int(rng.integers(len(fields)))]
    if kind == "drop_part" or keyword.endswith("Sequence"):
        if keyword in owner:
            delattr(owner, keyword)
    elif keyword == "WaveformData":
        owner.WaveformData = bytes(_flip(bytearray(owner.WaveformData), rng))[: int(rng.integers(0, 200_000))]
    else:
        value = str(rng.choice(NASTY))
        try:
            setattr(owner, keyword, value)
        except (ValueError, TypeError, OverflowError):
            setattr(owner, keyword, 0)
    try:
        ds.save_as(path)
    except Exception:  # pydicom refused to write the nonsense: mutate the bytes instead
        path.write_bytes(bytes(_flip(bytearray(path.read_bytes()), rng)))


def _fs_object(folder: Path, seed: Path, rng: np.random.Generator) -> Path:
    """Replace the record by an odd file-system object of the same name."""
    target = folder / seed.name
    choice = int(rng.integers(7))
    if choice == 0:
        os.mkfifo(target)
    elif choice == 1:
        os.symlink(folder / "nowhere", target)
    elif choice == 2:
        os.symlink(target, target)
    elif choice == 3:
        target.mkdir()
    elif choice == 4:
        os.symlink("/dev/zero", target)
    elif choice == 5:
        target.write_bytes(b"")
    else:
        target.write_bytes(os.urandom(int(rng.integers(1, 4096))))
    if seed.suffix == ".hea" and choice != 6:
        shutil.copy(seed.with_suffix(".dat"), folder / "rec.dat")
    return target


def variant(folder: Path, fmt: str, kind: str, seed: int) -> Path:
    """Write one mutated ``fmt`` input of mutation ``kind`` under ``folder`` (a fresh folder); return its path."""
    rng = np.random.default_rng(seed)
    original = seeds(folder.parent)[fmt]
    out = folder / "case"
    if kind == "fs_object":
        out.mkdir(parents=True)
        return _fs_object(out, original, rng)
    path = _copy_seed(original, out)
    target = _target(path, rng)
    if fmt == "code15" and kind in ("edit_field", "drop_part"):
        _mutate_hdf5(target, kind, rng)
    elif fmt == "dicom" and kind in ("edit_field", "drop_part"):
        _mutate_dicom(target, kind, rng)
    elif kind in ("edit_field", "drop_part") and target.suffix.lower() in (".hea", ".xml", ".csv"):
        text = target.read_bytes().decode("utf-8", errors="replace")
        text = _edit_text_field(text, rng) if kind == "edit_field" else _drop_text_part(target, text, rng)
        target.write_text(text)
    else:  # byte-level, and field mutations of binary files
        data = bytearray(target.read_bytes())
        if kind == "truncate":
            data = data[: int(rng.integers(0, len(data)))]
        elif kind == "insert_bytes":
            at = int(rng.integers(len(data) + 1))
            data[at:at] = os.urandom(int(rng.integers(1, 65)))
        else:
            data = _flip(data, rng)
        target.write_bytes(bytes(data))
    return path


def outcome(path: Path) -> list[tuple[str, str]]:
    """Run ingest's per-file path on ``path``: discovery, then reading and standardising each record.

    Returns (outcome, detail) per input: ``stored``, ``quarantined`` (with the reason), ``not_ecg``. Raises
    ``AssertionError`` when something escaped or a stored record breaks the store's promises."""
    found = io.discover_inputs([path], **INPUT_OPTIONS)
    results = [("quarantined", reason) for _, reason in found.rejected]
    results += [("not_ecg", why) for _, why in found.not_ecg]
    for source in found.sources:
        result = _standardise_or_reason(source, CONFIG)
        if isinstance(result, str):
            results.append(("quarantined", result))
            continue
        meta, signal = result
        problems = corrupt(meta, signal.astype(np.float32))
        assert not problems, f"{source.id} stored although {problems}"
        results.append(("stored", ""))
    return results


def corrupt(meta: dict, signal: np.ndarray) -> list[str]:
    """The store's promises a stored record breaks (empty when none)."""
    problems = []
    if signal.shape != (12, CONFIG.n_samples) or not np.isfinite(signal).all():
        problems.append("wrong shape or non-finite samples")
    if not 50 <= meta["original_fs"] <= 20_000:
        problems.append(f"rate {meta['original_fs']}")
    if meta["original_samples"] / meta["original_fs"] < MIN_SECONDS:
        problems.append("shorter than the minimum")
    kept = signal[:, : int(min(meta["original_samples"] * CONFIG.fs / meta["original_fs"], CONFIG.n_samples))]
    if np.abs(kept).max() > 1.5 * MAX_SAMPLE_MV:  # resampling may overshoot a little, never this much
        problems.append("amplitude beyond any ECG")
    p2p = typical_p2p_mv(kept)
    if not GAIN_P2P_MV[0] / 2 <= p2p <= GAIN_P2P_MV[1] * 2:
        problems.append(f"typical peak-to-peak {p2p:.3g} mV")
    return problems
