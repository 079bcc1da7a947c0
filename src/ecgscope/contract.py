"""A model's input contract applied to a store: checked once, then every record read through it.

The contract is the model directory's ``preprocess.json`` (:class:`ecgscope.signal.Pipeline`): rate, length,
lead set and order, units and signal steps. ``predict``, ``finetune``, ``embed``, ``motion`` and ``export``
take it from the model, never from the data, and read a store only through :class:`StoreInput` (one ECG
record: :func:`ecg_input`). The rules:

- **Units** must agree: a z-scored store cannot feed a model that takes mV (its amplitudes are gone), nor
  the reverse.
- **Leads**: the store must hold every lead the model takes; they are picked by name, in the model's order.
- **Rate**: another sampling rate is resampled with an anti-aliasing filter, unless ``allow_resample`` is
  off, in which case it is refused.
- **Length**: a record is *short* when what was recorded (``original_samples / original_fs`` in the store's
  manifest, at most the store's own length) covers less than :data:`MIN_COVERED_FRACTION` of the model's
  input. A short record is never zero-padded into a model: ``predict``, ``embed`` and ``motion generate``
  give it no value and say why in ``input_note``; training refuses a cohort that holds one. A store whose
  records are all shorter than the model's input is refused outright.
"""

from __future__ import annotations

import numpy as np

from ecgscope.ecg import ECG
from ecgscope.errors import ContractError
from ecgscope.signal.pipeline import Pipeline
from ecgscope.store.layout import Store

#: A record must cover at least this share of the model's input length to be used (10 s model: 9.5 s).
MIN_COVERED_FRACTION = 0.95
OK = "ok"


def contract_problems(pipeline: Pipeline, *, fs: float, n_samples: int, units: str, leads: tuple[str, ...],
                      allow_resample: bool = True) -> list[str]:
    """What keeps input of this description from fitting ``pipeline`` (empty when it fits)."""
    problems = []
    if units != pipeline.units:
        fix = ("ingest the original recordings into an mV store" if pipeline.units == "mV"
               else "use a store created with --units z-score")
        problems.append(f"units: the input is in {units}, the model takes {pipeline.units} ({fix})")
    missing = [lead for lead in pipeline.leads if lead not in leads]
    if missing:
        problems.append(f"leads: the model takes {', '.join(pipeline.leads)}; the input lacks {', '.join(missing)}")
    if fs != pipeline.fs and not allow_resample:
        problems.append(f"rate: the input is at {fs:g} Hz, the model takes {pipeline.fs:g} Hz and resampling "
                        "was not allowed")
    seconds = n_samples / fs
    if seconds < MIN_COVERED_FRACTION * pipeline.seconds:
        problems.append(f"length: the input holds {seconds:g} s, the model takes {pipeline.seconds:g} s "
                        "(shorter records are not zero-padded into a model)")
    return problems


def check_fits(pipeline: Pipeline, *, fs: float, n_samples: int, units: str, leads: tuple[str, ...],
               what: str, model: str = "the model", allow_resample: bool = True) -> None:
    """Raise ``ContractError`` naming both sides when input described so cannot be made to fit ``pipeline``."""
    problems = contract_problems(pipeline, fs=fs, n_samples=n_samples, units=units, leads=leads,
                                 allow_resample=allow_resample)
    if problems:
        raise ContractError(f"{what} does not fit the input contract of {model} ({pipeline.describe()}): "
                            + "; ".join(problems))


class StoreInput:
    """The records of ``store`` as ``pipeline``'s model takes them: (leads, samples) float32 per row.

    Raises ``ContractError`` at construction when the store cannot be made to fit; :attr:`short` marks the
    rows too short to use (see the module's rules) and :meth:`notes` says why.
    """

    def __init__(self, pipeline: Pipeline, store: Store, model: str = "the model", allow_resample: bool = True):
        self.pipeline, self.store = pipeline, store
        cfg = store.config
        check_fits(pipeline, fs=cfg.fs, n_samples=cfg.n_samples, units=cfg.units, leads=tuple(cfg.leads),
                   what=f"store {store.root} ({cfg.fs:g} Hz x {cfg.n_samples} samples, {cfg.units})", model=model,
                   allow_resample=allow_resample)
        self.lead_index = [list(cfg.leads).index(lead) for lead in pipeline.leads]
        self.recorded_seconds = recorded_seconds(store)
        self.short = self.recorded_seconds < MIN_COVERED_FRACTION * pipeline.seconds

    def read(self, row: int) -> np.ndarray:
        """Manifest row ``row`` through the contract."""
        return self.pipeline(self.store.read(int(row))[self.lead_index], self.store.config.fs)

    def read_many(self, rows) -> np.ndarray:
        """Several rows as one (n, leads, samples) batch."""
        raw = np.stack([self.store.read(int(r))[self.lead_index] for r in rows])
        return self.pipeline(raw, self.store.config.fs)

    def notes(self, rows) -> list[str]:
        """Per row, ``"ok"`` or why it is not given to the model (the ``input_note`` column)."""
        return [OK if not self.short[row] else
                f"short record: {self.recorded_seconds[row]:.2f} s recorded, the model takes "
                f"{self.pipeline.seconds:g} s (not zero-padded)" for row in np.asarray(rows, dtype=np.int64)]

    def refuse_short(self, rows, what: str) -> None:
        """Raise ``ContractError`` when any of ``rows`` is short (training must not learn from padding)."""
        rows = np.asarray(rows, dtype=np.int64)
        bad = rows[self.short[rows]]
        if len(bad):
            ids = self.store.manifest["ecg_id"].to_numpy()[bad[:3]]
            raise ContractError(f"{what}: {len(bad)} ECG(s) are shorter than the model's {self.pipeline.seconds:g} s "
                                f"input (e.g. {', '.join(map(str, ids))}, {self.recorded_seconds[bad[0]]:.2f} s); "
                                "drop them from the cohort, since zero padding would train the model on silence")


def ecg_input(pipeline: Pipeline, ecg: ECG, model: str = "the model", allow_resample: bool = True) -> np.ndarray:
    """One ECG record as ``pipeline``'s model takes it, (leads, samples) float32: the same rules as for a store
    (a missing limb lead is derived from I and II first), and a record shorter than the model's input raises
    ``ContractError`` rather than being zero-padded."""
    units = "z-score" if ecg.meta.get("normalized") else "mV"
    have = ecg if set(pipeline.leads) <= set(ecg.leads) else ecg.to_standard()
    check_fits(pipeline, fs=have.fs, n_samples=have.n_samples, units=units, leads=tuple(have.leads),
               what=f"ECG {ecg.ecg_id or ecg.source} ({have.fs:g} Hz x {have.n_samples} samples, {units})",
               model=model, allow_resample=allow_resample)
    return pipeline(have.signal[[list(have.leads).index(lead) for lead in pipeline.leads]], have.fs)


def recorded_seconds(store: Store) -> np.ndarray:
    """Seconds of real signal in each stored record: what the source held, capped at the store's length."""
    cfg = store.config
    full = np.full(len(store), cfg.n_samples / cfg.fs)
    if not len(store):
        return full
    try:
        original = store.column("original_samples").astype(float) / store.column("original_fs").astype(float)
    except (KeyError, ValueError):  # a store written before these columns existed
        return full
    return np.where(np.isfinite(original), np.minimum(original, full), full)


def usable_batches(source: StoreInput, rows: np.ndarray, batch_size: int):
    """Yield ``(positions, batch)`` over the rows that are not short: ``positions`` index into ``rows``, and
    ``batch`` is (n, leads, samples) float32 through the contract. Short rows are left out (callers give them
    no value and say why with :meth:`StoreInput.notes`). Batches follow the store's order, not ``rows``'."""
    rows = np.asarray(rows, dtype=np.int64)
    usable = np.flatnonzero(~source.short[rows])
    usable = usable[np.argsort(rows[usable], kind="stable")]  # storage order: an object store is read part by part
    for start in range(0, len(usable), batch_size):
        positions = usable[start:start + batch_size]
        yield positions, source.read_many(rows[positions])
