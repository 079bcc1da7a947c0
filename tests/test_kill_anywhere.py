"""Kill anywhere: ingest, training, pretraining and embedding killed with SIGKILL at seeded random points, then
run again, end with exactly what an uninterrupted run makes, and leave nothing half-written.

A few seeds per job here; benchmarks/kill_anywhere.py runs many.
"""

from __future__ import annotations

import pytest

from ecgscope.cohort import derive_labels, link_imaging, patient_split
from ecgscope.store import Store, ingest

from . import killing


@pytest.fixture(scope="module")
def work(tmp_path_factory, hospital_dir):
    root = tmp_path_factory.mktemp("kill")
    ingest([hospital_dir / "wfdb"], root / "store", fs=100, rate=100, workers=1, identifiers="keep", progress=False)
    pairs = derive_labels(link_imaging(Store(root / "store").manifest, hospital_dir / "measurements" / "mri.parquet",
                                       days_before=90, days_after=90), [])
    pairs["split"] = patient_split(pairs, (0.6, 0.2, 0.2), seed=0)
    pairs.to_parquet(root / "cohort.parquet")
    return root


def _no_partials(folder) -> None:
    left = [p for p in folder.rglob("*.partial")]
    assert not left, left


def _killed_runs(job: str, args: dict, root, seeds: tuple[int, ...]) -> None:
    work_s = killing.run(job, {**args, "out": root / "clean"})
    for seed in seeds:
        killing.kill_and_compare(job, args, root / "clean", root / f"killed_{seed}", seed, work_s)
        _no_partials(root / f"killed_{seed}" if job != "embed" else root)


def test_ingest_killed_anywhere_ends_with_the_same_store(hospital_dir, tmp_path):
    _killed_runs("ingest", {"source": hospital_dir / "wfdb"}, tmp_path, seeds=(1, 2, 3))


@pytest.mark.long
def test_training_killed_anywhere_resumes_to_the_same_weights_and_metrics(work, tmp_path):
    _killed_runs("train", {"store": work / "store", "cohort": work / "cohort.parquet"}, tmp_path, seeds=(4,))


@pytest.mark.long
def test_pretraining_and_embedding_killed_anywhere_end_as_uninterrupted(work, tmp_path):
    _killed_runs("pretrain", {"store": work / "store"}, tmp_path / "pretrain", seeds=(5,))
    encoder = tmp_path / "pretrain" / "clean" / "model"
    _killed_runs("embed", {"store": work / "store", "model": encoder}, tmp_path / "embed", seeds=(6,))
