"""A simulated cohort written as PTB-XL-style WFDB files and ingested into a store: how every study's cohorts
are made, so that each goes through the readers a real dataset would."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ecgscope.simulate import SimulatedCohort, simulate_cohort
from ecgscope.simulate.export import write_cohort
from ecgscope.store import ingest


def simulate_into_store(preset: str, n: int, seed: int, files: Path, store: Path, *, fs: float = 100.0,
                        file_format: str = "wfdb", progress: bool = True,
                        written: Callable[[], None] | None = None) -> SimulatedCohort:
    """Simulate ``n`` subjects of ``preset``, write them under ``files`` in ``file_format`` (``wfdb``, PTB-XL's
    layout, or ``code15``) and ingest them into ``store`` at ``fs``; return the cohort. Of PTB-XL's trees only
    the one the store reads is written (the 100 Hz one for a 100 Hz store of a 500 Hz cohort). Ids are kept as
    simulated, so the truth tables join by them. ``written`` is called between writing and ingesting (the demo
    times the two apart)."""
    cohort = simulate_cohort(preset, n=n, seed=seed)
    if file_format != "wfdb":
        write_cohort(cohort, files, formats=(file_format,), overwrite=True, progress=progress)
        if written is not None:
            written()
        ingest([Path(files) / file_format], store, fs=fs, identifiers="keep", progress=progress)
        return cohort
    tree = 100.0 if fs == 100 and cohort.fs == 500 else cohort.fs
    write_cohort(cohort, files, formats=("wfdb",), overwrite=True, progress=progress, wfdb_rates=(tree,))
    if written is not None:
        written()
    # PTB-XL's two trees are read as 100 (lr) and 500 (hr); a cohort at another rate is in the hr tree
    ingest([Path(files) / "wfdb"], store, fs=fs, rate=100 if tree == 100 else 500, identifiers="keep",
           progress=progress)
    return cohort
