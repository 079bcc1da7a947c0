"""Write a simulated cohort to disk in the formats real datasets use, plus its tables and ground truth.

Layout of the output directory::

    cohort.json                 preset, seed, sizes, formats, sampling rate, ecgscope version
    ecgs.parquet                ecg_id, patient_id, acquired_at, is_index, snr_db (electrode_reversal if asked)
    measurements/mri.parquet    (or echo.parquet) one row per imaging study, as measured
    outcomes.parquet            patient_id, index_date, followup_years, event, hf_death, death
    truth/patients.parquet      the true cardiac state of every subject
    truth/oracle.parquet        the noise-free waveform parameters of every ECG
    truth/motion.parquet        tissue Doppler velocity and annular displacement, one cycle per subject
    wfdb/                       PTB-XL-like tree: ptbxl_database.csv, records500/, records100/
    code15/                     exams_part*.hdf5 + exams.csv
    echonext/                   EchoNext_{split}_waveforms.npy, ..._tabular_features.npy, metadata CSV

The whole directory is built under a temporary name and renamed at the end, so an interrupted run leaves
nothing half-written under the final name.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ecgscope import __version__
from ecgscope.io import atomic_dir, code15, echonext, write_parquet, write_text
from ecgscope.io import wfdb as wfdb_io
from ecgscope.leads import STANDARD_LEADS, eight_from_twelve
from ecgscope.progress import progress_bar
from ecgscope.signal import resample
from ecgscope.simulate.cohort import CHUNK, UNITS_PER_MV, SimulatedCohort, quantize_eight
from ecgscope.simulate.measurements import ECHONEXT_FLAGS

FORMATS = ("wfdb", "code15", "echonext")


def _scp_codes(row: pd.Series) -> str:
    codes = {"NORM": 100.0} if row["stratum"] == "normal" else {}
    if row["af"]:
        codes["AFIB"] = 100.0
    if row["rprime_v1_mv"] > 0.2:
        codes["IRBBB" if row["qrs_duration_ms"] < 120 else "CRBBB"] = 80.0
    if row["frontal_rotation_deg"] > 75:
        codes["RAD"] = 50.0
    if row["lvmi"] > 110:
        codes["LVH"] = 50.0
    return repr(codes or {"NDT": 50.0})


def _strat_fold(patient_id: np.ndarray, seed: int) -> np.ndarray:
    return np.random.default_rng([seed, 1010]).permutation(len(patient_id)) % 10 + 1


def _ecgs_with_state(cohort: SimulatedCohort) -> pd.DataFrame:
    """One row per ECG with its subject's state and outcome beside the waveform parameters."""
    return cohort.ecgs.merge(cohort.patients, on="patient_id", suffixes=("", "_state"))


def _write_tables(cohort: SimulatedCohort, root: Path) -> None:
    truth = ["ecg_id", "patient_id", "acquired_at", "is_index", "snr_db"]
    truth += ["electrode_reversal"] if "electrode_reversal" in cohort.ecgs else []
    write_parquet(cohort.ecgs[truth], root / "ecgs.parquet")
    write_parquet(cohort.outcomes, root / "outcomes.parquet")
    truth = cohort.patients.drop(columns=["followup_years", "event", "hf_death", "death"])
    write_parquet(truth, root / "truth" / "patients.parquet")
    write_parquet(cohort.oracle, root / "truth" / "oracle.parquet")

    def curves(values: np.ndarray) -> pa.FixedSizeListArray:
        return pa.FixedSizeListArray.from_arrays(values.ravel(), values.shape[1])

    motion = pa.table({
        "patient_id": cohort.patients["patient_id"].to_numpy(),
        "rr_ms": cohort.motion_rr_ms,
        "tdi_velocity_cm_s": curves(cohort.tdi_velocity),
        "annular_displacement_mm": curves(cohort.annular_displacement),
    })
    (root / "truth").mkdir(exist_ok=True)
    pq.write_table(motion, root / "truth" / "motion.parquet")
    if cohort.imaging is not None:
        write_parquet(cohort.imaging, root / "measurements" / f"{cohort.preset.imaging}.parquet")


def _resampled_digital(digital: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Re-digitise int16 12-lead (B, 12, T) at another rate, keeping the limb-lead algebra exact."""
    eight = eight_from_twelve(digital.astype(np.float32) / UNITS_PER_MV)
    return quantize_eight(resample(eight, fs_in, fs_out).astype(np.float32))


def _wfdb_rates(cohort: SimulatedCohort, rates: tuple[float, ...] | None) -> list[float]:
    """The WFDB trees to write: ``rates``, by default the cohort's own rate and PTB-XL's 100 Hz."""
    possible = [cohort.fs] + ([100.0] if cohort.fs == 500 else [])
    if rates is None:
        return possible
    wanted = [float(r) for r in rates]
    if not wanted or set(wanted) - set(possible):
        raise ValueError(f"WFDB rates {rates} for a {cohort.fs:g} Hz cohort: choose from "
                         f"{', '.join(f'{r:g}' for r in possible)} Hz")
    return [r for r in possible if r in wanted]


class _WfdbSink:
    def __init__(self, cohort: SimulatedCohort, root: Path, rates: tuple[float, ...] | None = None):
        self.cohort, self.root = cohort, root / "wfdb"
        self.rates = _wfdb_rates(cohort, rates)
        self.info = cohort.ecgs.set_index("ecg_id")

    def add(self, batch) -> None:
        for fs in self.rates:
            digital = batch.digital if fs == self.cohort.fs else _resampled_digital(batch.digital, self.cohort.fs, fs)
            for k, ecg_id in enumerate(batch.ecg_ids):
                when = pd.Timestamp(self.info.at[ecg_id, "acquired_at"]).to_pydatetime()
                wfdb_io.write_record(self.root / wfdb_io.ptbxl_record_path(int(ecg_id), fs), digital[k], fs,
                                     STANDARD_LEADS, UNITS_PER_MV, [f"simulated by ecgscope {__version__}"], when)

    def close(self) -> None:
        ecgs = _ecgs_with_state(self.cohort)
        db = pd.DataFrame({
            "ecg_id": ecgs["ecg_id"], "patient_id": ecgs["patient_id"].astype(float), "age": ecgs["age"].round(),
            "sex": (ecgs["sex"] == "F").astype(int),  # PTB-XL: 0 male, 1 female
            "height": ecgs["height_cm"].round(), "weight": ecgs["weight_kg"].round(),
            "device": f"ecgscope-sim-{self.cohort.preset.name}",
            "recording_date": pd.to_datetime(ecgs["acquired_at"]).dt.strftime("%Y-%m-%d %H:%M:%S"),
            "report": "simulated", "scp_codes": ecgs.apply(_scp_codes, axis=1),
            "strat_fold": pd.Series(_strat_fold(self.cohort.patients["patient_id"].to_numpy(), self.cohort.seed),
                                    index=self.cohort.patients["patient_id"]).loc[ecgs["patient_id"]].to_numpy(),
            "filename_lr": [wfdb_io.ptbxl_record_path(int(i), 100) if 100.0 in self.rates else ""
                            for i in ecgs["ecg_id"]],
            "filename_hr": [wfdb_io.ptbxl_record_path(int(i), self.cohort.fs) if self.cohort.fs in self.rates
                            else "" for i in ecgs["ecg_id"]],
        })
        write_text(self.root / "ptbxl_database.csv", db.to_csv(index=False))


class _Code15Sink:
    def __init__(self, cohort: SimulatedCohort, root: Path):
        self.cohort, self.root = cohort, root / "code15"
        self.root.mkdir(parents=True, exist_ok=True)
        self.shard = code15.ShardWriter(self.root / "exams_part0.hdf5", len(cohort.ecgs))

    def add(self, batch) -> None:
        signal = batch.signal
        if self.cohort.fs != code15.CODE15_FS:
            signal = resample(signal, self.cohort.fs, code15.CODE15_FS)
        self.shard.append(batch.ecg_ids, signal)

    def close(self) -> None:
        self.shard.close()
        ecgs = _ecgs_with_state(self.cohort)
        first = ecgs["is_index"].to_numpy()
        exams = pd.DataFrame({
            "exam_id": ecgs["ecg_id"], "age": ecgs["age"].round().astype(int), "is_male": ecgs["sex"] == "M",
            "nn_predicted_age": (ecgs["age"] + 2.5 * ecgs["diastolic_score"] + 3.0 * np.random.default_rng(
                [self.cohort.seed, 15]).normal(0, 1, len(ecgs))).round(3),
            "1dAVb": ecgs["pr_ms"] > 200, "RBBB": (ecgs["rprime_v1_mv"] > 0.2) & (ecgs["qrs_duration_ms"] >= 120),
            "LBBB": False, "SB": ecgs["hr_bpm"] < 50, "AF": ecgs["af_rhythm"], "ST": ecgs["hr_bpm"] > 100,
            "patient_id": ecgs["patient_id"], "normal_ecg": ecgs["stratum"] == "normal",
            "death": pd.Series(ecgs["death"]).where(first, None), "timey": ecgs["followup_years"].where(first),
            "trace_file": "exams_part0.hdf5",
        })
        write_text(self.root / "exams.csv", exams[list(code15.EXAMS_COLUMNS)].to_csv(index=False))


class _EchoNextSink:
    def __init__(self, cohort: SimulatedCohort, root: Path):
        self.cohort, self.root = cohort, root / "echonext"
        self.root.mkdir(parents=True, exist_ok=True)
        pids = cohort.patients["patient_id"].to_numpy()
        draw = np.random.default_rng([cohort.seed, 250]).random(len(pids))
        split_of = pd.Series(np.select([draw < 0.8, draw < 0.9], ["train", "val"], "test"), index=pids)
        self.split = split_of.loc[cohort.ecgs["patient_id"]].to_numpy()
        self.arrays = {s: echonext.open_waveform_array(self.root / f"EchoNext_{s}_waveforms.npy",
                                                       int((self.split == s).sum())) for s in ("train", "val", "test")}
        self.row_in_split = np.zeros(len(self.split), dtype=np.int64)
        for s in ("train", "val", "test"):
            self.row_in_split[self.split == s] = np.arange((self.split == s).sum())

    def add(self, batch) -> None:
        signal = batch.signal
        if self.cohort.fs != echonext.ECHONEXT_FS:
            signal = resample(signal, self.cohort.fs, echonext.ECHONEXT_FS)
        waves = echonext.normalize_waveforms(signal[..., :echonext.ECHONEXT_SAMPLES])
        rows = batch.ecg_ids - 1  # ecg_id is the 1-based row of cohort.ecgs
        for s, array in self.arrays.items():
            pick = self.split[rows] == s
            array[self.row_in_split[rows[pick]]] = waves[pick]

    def close(self) -> None:
        for array in self.arrays.values():
            array.flush()
        ecgs = _ecgs_with_state(self.cohort)
        flags = self.cohort.imaging.set_index("patient_id").loc[ecgs["patient_id"], list(ECHONEXT_FLAGS)]
        tab = np.stack([(ecgs["sex"] == "M").astype(float), ecgs["age"], ecgs["hr_bpm"],
                        np.where(ecgs["af_rhythm"], np.nan, ecgs["hr_bpm"]), ecgs["pr_ms"], ecgs["qrs_duration_ms"],
                        ecgs["qtc_ms"]], 1).astype(np.float32)
        for s in ("train", "val", "test"):
            np.save(self.root / f"EchoNext_{s}_tabular_features.npy", tab[self.split == s])
        meta = pd.DataFrame({
            "patient_key": ecgs["patient_id"], "ecg_key": ecgs["ecg_id"], "split": self.split,
            "sex": ecgs["sex"], "age_at_ecg": ecgs["age"].round(1),
            "acquisition_datetime": pd.to_datetime(ecgs["acquired_at"]).dt.strftime("%Y-%m-%d %H:%M:%S"),
        })
        meta = pd.concat([meta, flags.reset_index(drop=True)], axis=1)
        write_text(self.root / "echonext_metadata_100k.csv", meta.to_csv(index=False))


_SINKS = {"wfdb": _WfdbSink, "code15": _Code15Sink, "echonext": _EchoNextSink}


_WORKER: dict = {}


def _init_worker(cohort: SimulatedCohort, wfdb_root: Path | None, rates: tuple[float, ...] | None,
                 keep: bool) -> None:
    """Give a worker process the cohort once, so that each job carries only its index range."""
    _WORKER["cohort"], _WORKER["keep"] = cohort, keep
    _WORKER["sink"] = _WfdbSink(cohort, wfdb_root, rates) if wfdb_root else None


def _render_chunk(lo: int, hi: int):
    """Render ECGs [lo, hi) of the worker's cohort and write their WFDB records if asked to: (how many, the
    batch, or None where no other format needs its signals, which then never cross between processes)."""
    batch = next(_WORKER["cohort"].iter_batches(lo, hi))
    if _WORKER["sink"] is not None:
        _WORKER["sink"].add(batch)
    return len(batch.ecg_ids), (batch if _WORKER["keep"] else None)


def _batches(cohort: SimulatedCohort, wfdb_root: Path | None, workers: int, rates: tuple[float, ...] | None = None,
             keep: bool = True) -> Iterator:
    """(count, batch) rendered in order; with ``workers`` > 1 rendering (and WFDB writing) runs in processes.
    ``keep`` False: the batch's signals are not needed past the WFDB writer and come back as None."""
    bounds = [(lo, min(lo + CHUNK, len(cohort))) for lo in range(0, len(cohort), CHUNK)]
    if workers <= 1 or len(bounds) <= 1:
        _init_worker(cohort, wfdb_root, rates, keep)
        for lo, hi in bounds:
            yield _render_chunk(lo, hi)
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                             initargs=(cohort, wfdb_root, rates, keep)) as pool:
        pending: deque = deque()
        for lo, hi in bounds:
            pending.append(pool.submit(_render_chunk, lo, hi))
            if len(pending) >= 2 * workers:  # bounded: memory stays flat whatever the cohort size
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def write_cohort(cohort: SimulatedCohort, out: str | Path, formats: tuple[str, ...] | None = None,
                 overwrite: bool = False, progress: bool = True, workers: int | None = None,
                 wfdb_rates: tuple[float, ...] | None = None) -> Path:
    """Write ``cohort`` under ``out`` in ``formats`` (default: the preset's); return ``out``.

    ``workers`` processes render and write WFDB records in parallel (default: all cores); the bytes written
    do not depend on it. ``wfdb_rates`` picks PTB-XL's trees (default both, the cohort's rate and 100 Hz; the
    demo writes only the 100 Hz tree it reads).
    """
    formats = tuple(formats or cohort.preset.formats)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
    if "echonext" in formats and cohort.preset.imaging != "echo":
        raise ValueError(f"the echonext format needs echo labels; preset {cohort.preset.name!r} has "
                         f"{cohort.preset.imaging or 'no'} imaging (use echo-dev, echo-external or echonext)")
    workers = (os.cpu_count() or 1) if workers is None else max(int(workers), 1)
    _wfdb_rates(cohort, wfdb_rates)  # a rate the cohort cannot give fails before anything is written
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as root:
        _write_tables(cohort, root)
        in_process = [_SINKS[f](cohort, root) for f in formats if f != "wfdb"]
        with progress_bar(progress) as bar:
            task = bar.add_task(f"simulating {cohort.preset.name}", total=len(cohort))
            wfdb_root = root if "wfdb" in formats else None
            for rendered, batch in _batches(cohort, wfdb_root, workers, wfdb_rates, keep=bool(in_process)):
                for sink in in_process:
                    sink.add(batch)
                bar.advance(task, rendered)
        if "wfdb" in formats:
            _WfdbSink(cohort, root, wfdb_rates).close()
        for sink in in_process:
            sink.close()
        manifest = {
            "ecgscope_version": __version__, "preset": cohort.preset.name, "seed": cohort.seed,
            "n_patients": len(cohort.patients), "n_ecgs": len(cohort.ecgs), "fs": cohort.fs,
            "n_samples": cohort.n_samples, "leads": list(STANDARD_LEADS), "units": "mV",
            "formats": list(formats), "imaging": cohort.preset.imaging,
        }
        write_text(root / "cohort.json", json.dumps(manifest, indent=2) + "\n")
    return out
