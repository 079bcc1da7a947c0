"""The store and ingest: broken inputs quarantined, idempotent, resumable after a crash or a kill."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import wfdb
from scipy.signal import decimate
from typer.testing import CliRunner

from ecgscope.cli import app
from ecgscope.store import Store, StoreError, ingest
from ecgscope.train import StoreDataset

from . import broken_corpus
from .conftest import SHARED_DATA

ingest_module = sys.modules["ecgscope.store.ingest"]  # the module, which the function's name shadows


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return root, broken_corpus.build(root)


def _reason(quarantine: pd.DataFrame, path: Path) -> str | None:
    base = str(path.with_suffix("")) if path.suffix == ".hea" else str(path)
    hits = quarantine[(quarantine.source == base) | quarantine.source.str.startswith(base + "#")]
    return hits.reason.iloc[0] if len(hits) else None


def test_every_broken_input_is_quarantined_with_its_reason_and_the_rest_is_stored(corpus, tmp_path):
    root, cases = corpus
    assert len(cases) >= 15
    inputs = [root / g for g in broken_corpus.GOOD] + list(cases)
    report = ingest(inputs, tmp_path / "store", workers=2, progress=False, input_fs=500, input_units="mV",
                    identifiers="keep")
    store = Store(tmp_path / "store")
    for path, words in cases.items():
        reason = _reason(store.quarantine, path)
        assert reason is not None and words in reason, (path.name, reason)
    assert report.rejected == len(cases) and report.added == 3
    assert sorted(store.manifest.ecg_id) == ["901", "good", "rec42"]
    assert store.manifest.source.str.contains("dup_a").any()  # the first copy of a duplicate id is kept
    assert len(store.manifest) == len(store.manifest.row.unique()) == 3
    for row in range(3):
        x = store.read(row)
        assert x.shape == (12, 5000) and np.isfinite(x).all()


def test_cli_ingest_exit_status_and_summary_count_the_rejects(corpus, tmp_path):
    root, cases = corpus
    picks = [root / "good.hea", root / "notes.txt", root / "bomb.xml"]
    result = CliRunner().invoke(app, ["ingest", *map(str, picks), "--store", str(tmp_path / "s"), "--workers", "1"])
    assert result.exit_code == 3, result.output
    assert "1 added" in result.output and "2 rejected" in result.output
    info = CliRunner().invoke(app, ["store", "info", str(tmp_path / "s")])
    assert info.exit_code == 0 and "records" in info.output and "1" in info.output
    clean = CliRunner().invoke(app, ["ingest", str(SHARED_DATA / "ludb" / "1"), "--store", str(tmp_path / "t")])
    assert clean.exit_code == 0, clean.output


def test_ingest_resamples_crops_pads_and_agrees_with_wfdb(tmp_path):
    ingest([SHARED_DATA / "ptbdb" / "s0010_re", SHARED_DATA / "code15"], tmp_path / "s", workers=1, progress=False)
    store = Store(tmp_path / "s")
    first = store.manifest.iloc[0]
    assert first.original_fs == 1000 and first.original_samples == 38400  # cropped to the first 10 s
    ref = wfdb.rdrecord(str(SHARED_DATA / "ptbdb" / "s0010_re"), sampto=10000).p_signal[:, :12].T
    expected = decimate(ref, 2, ftype="fir", zero_phase=True)  # scipy's own anti-aliased 2:1
    stored = store.read(0)
    np.testing.assert_allclose(stored[:, 200:-200], expected[:, 200:-200], atol=5e-3)
    short = store.manifest[store.manifest.original_samples < 4000].iloc[0]
    padded = store.read(int(short.row))
    n = int(round(short.original_samples * 500 / 400))
    assert np.all(padded[:, n + 5:] == 0) and np.abs(padded[:, : n - 5]).max() > 0.1


def test_ingest_twice_adds_nothing(tmp_path):
    src = [SHARED_DATA / "cinc2021"]
    first = ingest(src, tmp_path / "s", workers=2, progress=False)
    second = ingest(src, tmp_path / "s", workers=2, progress=False)
    # two real Ningbo records (JS20004, JS20008) have flat V2, V4 and V6 and are quarantined
    assert (first.added, first.rejected) == (23, 2)
    assert second.added == 0 and second.rejected == 0 and second.skipped == 25
    quarantine = Store(tmp_path / "s").quarantine
    assert sorted(Path(s).name for s in quarantine.source) == ["JS20004", "JS20008"]
    assert quarantine.reason.str.contains("flat lead").all()
    assert len(Store(tmp_path / "s")) == 23


def test_a_copy_met_in_a_later_run_names_the_stored_source(tmp_path):
    """The content-key index outlives the run that filled it: a copy ingested later, in another batch, is
    quarantined naming the committed source it repeats (found by a pass over the manifest)."""
    ingest([SHARED_DATA / "ludb" / "1"], tmp_path / "s", workers=1, progress=False)
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    for suffix in (".hea", ".dat"):
        (copy / f"ludb1{suffix}").write_bytes((SHARED_DATA / "ludb" / f"1{suffix}").read_bytes())
    (copy / "ludb1.hea").write_text((copy / "ludb1.hea").read_text().replace("1.dat", "ludb1.dat").replace(
        "1 ", "ludb1 ", 1))
    report = ingest([SHARED_DATA / "cinc2021", copy], tmp_path / "s", workers=1, progress=False, part_size=4)
    assert (report.added, report.rejected) == (23, 3)  # two Ningbo records with flat leads, and the copy
    assert _reason(Store(tmp_path / "s").quarantine, copy / "ludb1.hea") == (
        f"duplicate: the same signal is already stored from {SHARED_DATA}/ludb/1")


def test_discovery_streams_so_ingest_never_holds_a_whole_tree(tmp_path):
    """The first record of a folder is handed on before the walk reaches the folder's last file."""
    from ecgscope import io

    for name in ("a", "b"):
        for suffix in (".hea", ".dat"):
            (tmp_path / f"{name}{suffix}").write_bytes((SHARED_DATA / "ludb" / f"1{suffix}").read_bytes())
        (tmp_path / f"{name}.hea").write_text((tmp_path / f"{name}.hea").read_text().replace("1.dat", f"{name}.dat")
                                              .replace("1 ", f"{name} ", 1))
    (tmp_path / "z.xml").write_text("<nothing/>")
    found = io.Discovered()
    stream = io.iter_inputs([tmp_path], found)
    assert Path(next(stream).path).name == "a" and not found.not_ecg  # z.xml not reached yet
    assert [Path(s.path).name for s in stream] == ["b"]
    assert [Path(p).name for p, _ in found.not_ecg] == ["z.xml"]


def test_digest_index_holds_strings_across_merges(monkeypatch):
    from ecgscope.store import digests

    monkeypatch.setattr(digests, "MERGE_EVERY", 7)
    texts = [f"/data/record-{i}.hea" for i in range(500)]
    ending_in_zero = next(t for t in (f"z{i}" for i in range(100_000)) if digests.digest(t).endswith(b"\0"))
    index = digests.DigestIndex((t, i) for i, t in enumerate([*texts, ending_in_zero]))
    assert len(index) == 501 and len(index._pending) < 7
    assert [index.get(t) for t in texts] == list(range(500)) and index.get(ending_in_zero) == 500
    assert index.get("/data/record-500.hea") is None and "x" not in index
    index.add(texts[3], 99)  # the first value stays
    index.set(texts[4], 44)
    index.set(ending_in_zero, 7)
    assert (index.get(texts[3]), index.get(texts[4]), index.get(ending_in_zero)) == (3, 44, 7)


def test_a_simulated_cohort_root_is_stored_once(tmp_path):
    """Ingesting a simulated cohort's folder stores each ECG once (one PTB-XL rate tree, chosen by --fs) and
    counts its tables as files that are not ECGs."""
    from ecgscope.simulate import simulate_cohort
    from ecgscope.simulate.export import write_cohort

    root = write_cohort(simulate_cohort("hospital", n=12, seed=2), tmp_path / "sim", formats=("wfdb",),
                        progress=False, workers=1)
    report = ingest([root], tmp_path / "s", fs=100, workers=1, progress=False, identifiers="keep")
    assert (report.added, report.rejected) == (12, 0) and len(report.not_ecg) >= 5
    assert set(Store(tmp_path / "s").manifest.original_fs) == {100.0}


def test_store_settings_must_match(tmp_path):
    ingest([SHARED_DATA / "ludb" / "1"], tmp_path / "s", workers=1, progress=False)
    with pytest.raises(StoreError, match="created with fs=500"):
        ingest([SHARED_DATA / "ludb" / "1"], tmp_path / "s", fs=250, workers=1, progress=False)
    with pytest.raises(StoreError, match="not an ecgscope store"):
        Store(tmp_path / "nothing")


def _snapshot(path: Path):
    store = Store(path)
    return store.manifest.reset_index(drop=True), np.stack([store.read(r) for r in range(len(store))])


def test_crash_between_waveform_and_manifest_resumes_to_the_same_store(tmp_path, monkeypatch):
    src = [SHARED_DATA / "cinc2021"]
    ingest(src, tmp_path / "clean", workers=1, part_size=4, progress=False)
    calls = {"n": 0}
    real_write = ingest_module._write_typed

    def crash_on_third_manifest(table, schema, location, relative):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")  # the waveform part of batch 3 is already on disk
        return real_write(table, schema, location, relative)

    monkeypatch.setattr(ingest_module, "_write_typed", crash_on_third_manifest)
    with pytest.raises(KeyboardInterrupt):
        ingest(src, tmp_path / "crashed", workers=1, part_size=4, progress=False)
    monkeypatch.setattr(ingest_module, "_write_typed", real_write)
    assert len(Store(tmp_path / "crashed")) == 8  # two committed batches visible, the third not
    assert (tmp_path / "crashed" / "waveforms" / "part-000003.h5").exists()  # its orphan waveform part
    ingest(src, tmp_path / "crashed", workers=1, part_size=4, progress=False)
    clean, crashed = _snapshot(tmp_path / "clean"), _snapshot(tmp_path / "crashed")
    pd.testing.assert_frame_equal(clean[0], crashed[0])
    np.testing.assert_array_equal(clean[1], crashed[1])


def test_killed_ingest_restarted_equals_an_uninterrupted_one(tmp_path, hospital_dir):
    src = str(hospital_dir / "wfdb")
    ingest([src], tmp_path / "clean", workers=1, part_size=5, progress=False)
    code = (f"from ecgscope.store import ingest; ingest([{src!r}], {str(tmp_path / 'killed')!r}, workers=1, "
            "part_size=5, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    manifest = tmp_path / "killed" / "manifest.parquet"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(manifest.glob("part-*.parquet"))) < 2:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < len(Store(tmp_path / "killed")) < 40  # killed part-way
    ingest([src], tmp_path / "killed", workers=1, part_size=5, progress=False)
    clean, killed = _snapshot(tmp_path / "clean"), _snapshot(tmp_path / "killed")
    pd.testing.assert_frame_equal(clean[0], killed[0])
    np.testing.assert_array_equal(clean[1], killed[1])


def test_parallel_and_serial_ingest_agree(tmp_path):
    src = [SHARED_DATA / "cinc2021", SHARED_DATA / "code15"]
    ingest(src, tmp_path / "one", workers=1, progress=False)
    ingest(src, tmp_path / "two", workers=2, progress=False)
    one, two = _snapshot(tmp_path / "one"), _snapshot(tmp_path / "two")
    pd.testing.assert_frame_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_torch_dataset_reads_random_records(tmp_path):
    ingest([SHARED_DATA / "cinc2021"], tmp_path / "s", workers=1, progress=False)
    store = Store(tmp_path / "s")
    n = len(store)
    targets = np.arange(n, dtype=np.float32)[:, None]
    data = StoreDataset(store, rows=np.arange(n), targets=targets)
    loader = torch.utils.data.DataLoader(data, batch_size=4, shuffle=True, num_workers=2,
                                         generator=torch.Generator().manual_seed(0))
    seen = []
    for x, y in loader:
        assert x.shape[1:] == (12, 5000) and x.dtype == torch.float32
        for xi, yi in zip(x, y, strict=True):
            np.testing.assert_array_equal(xi.numpy(), store.read(int(yi.item())))
            seen.append(int(yi.item()))
    assert sorted(seen) == list(range(n))
