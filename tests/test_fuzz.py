"""Property-based fuzzing of every reader: mutated files never raise, never hang, and nothing corrupt is stored.

Hypothesis draws a format, a mutation kind and a seed; ``tests/fuzzing.py`` writes the variant and runs
ingest's per-file path on it. The property: discovery and reading raise nothing (every failure is a
quarantine reason), no read reaches its time limit, and a stored record keeps the store's promises (shape,
finite, rate, minimum length, plausible amplitude). benchmarks/fuzz_benchmark.py runs the same on 10,000+
variants; the examples below are variants that once broke a reader, kept as regression cases.
"""

from __future__ import annotations

import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecgscope.store import Store, ingest

from . import fuzzing

SETTINGS = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    fuzzing.seeds(root)
    return root


@SETTINGS
@given(fmt=st.sampled_from(fuzzing.FORMATS), kind=st.sampled_from(fuzzing.KINDS), seed=st.integers(0, 2**31 - 1))
def test_a_mutated_file_is_stored_sound_or_quarantined_with_a_reason(fuzz_root, fmt, kind, seed):
    folder = fuzz_root / "variants" / f"{fmt}-{kind}-{seed}"
    shutil.rmtree(folder, ignore_errors=True)
    path = fuzzing.variant(folder, fmt, kind, seed)
    results = fuzzing.outcome(path)  # raises if anything escaped or a stored record is corrupt
    assert all(what in ("stored", "quarantined", "not_ecg") for what, _ in results)
    assert not any("longer than" in detail for _, detail in results)  # nothing ran into the time limit
    assert all(detail for what, detail in results if what != "stored")  # every refusal says why


def test_a_batch_of_variants_is_accounted_for_in_one_store(fuzz_root, tmp_path):
    paths = [fuzzing.variant(tmp_path / f"v{k}", fmt, kind, k) for k, (fmt, kind) in enumerate(
        (f, k) for f in fuzzing.FORMATS for k in fuzzing.KINDS)]
    report = ingest(paths, tmp_path / "store", workers=2, input_fs=500, input_units="mV", progress=False)
    store = Store(tmp_path / "store")
    assert report.added == len(store) and report.rejected == len(store.quarantine)
    assert report.added + report.rejected + len(report.not_ecg) >= len(paths) - 5  # empty folders hold nothing
    assert store.manifest.row.tolist() == list(range(len(store)))


#: Variants that once broke a reader (found by the fuzz benchmark): an HDF5 soft link to itself escaped as
#: RuntimeError, a 1e30 sample became inf in float16 and was stored, a DICOM element length inflated by
#: inserted bytes allocated gigabytes (MemoryError), an empty or random .npy raised EOFError.
FOUND = [("code15", "edit_field", 0), ("code15", "flip_bytes", 1), ("dicom", "insert_bytes", 0),
         ("dicom", "insert_bytes", 1), ("npy", "fs_object", 2), ("npy", "fs_object", 3)]


@pytest.mark.parametrize("fmt,kind,seed", FOUND)
def test_variants_that_once_broke_a_reader_now_get_a_foreseen_reason(fuzz_root, fmt, kind, seed):
    path = fuzzing.variant(fuzz_root / "found" / f"{fmt}-{kind}-{seed}", fmt, kind, seed)
    results = fuzzing.outcome(path)
    assert results and not any(detail.startswith("reader error") for _, detail in results), results
