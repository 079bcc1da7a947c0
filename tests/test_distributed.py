"""Distributed data parallel training on two CPU processes (gloo), launched as a user would: `ecgscope train`
with ``trainer: {accelerator: cpu, devices: 2, strategy: ddp}``."""

from __future__ import annotations

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
import yaml
from safetensors.torch import load_file

from ecgscope.cohort import carve_calibration
from ecgscope.contract import StoreInput
from ecgscope.store import Store
from ecgscope.train import load_model
from ecgscope.train.datamodule import BLOCK_PARTS, EpochSeededSampler, PartBlockSampler
from ecgscope.train.module import validation_metrics

from .service_model import build_cohort

ECGSCOPE = str(Path(sys.executable).parent / "ecgscope")
TWO_RANKS = {"accelerator": "cpu", "devices": 2, "strategy": "ddp"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return build_cohort(tmp_path_factory.mktemp("ddp"), n=90, seed=4)


def _config(data, out: Path, epochs: int = 2, trainer: dict | None = None) -> Path:
    store, cohort = data
    cfg = {"out": str(out), "data": {"store": str(store), "cohort": str(cohort), "regression": ["rvef"],
                                     "binary": ["rv_dysfunction"]},
           "model": {"name": "compact_cnn_tiny"}, "train": {"max_epochs": epochs, "batch_size": 8},
           "trainer": trainer or TWO_RANKS}
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _train(config: Path, *args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two ranks on two cores
    return subprocess.Popen([ECGSCOPE, "train", str(config), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **popen)


def _finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    return output


def test_the_sampler_gives_each_rank_a_disjoint_share():
    orders = []
    for rank in range(3):
        sampler = EpochSeededSampler(10, seed=1, shuffle=True)
        sampler.rank, sampler.world = rank, 3
        sampler.set_epoch(2)
        orders.append([i for i, _ in sampler])
        assert len(sampler) == len(orders[-1])
    assert {len(o) for o in orders} == {4}  # padded to 12: every rank takes the same number of steps
    assert set(sum(orders, [])) == set(range(10))
    validation = []
    for rank in range(3):
        sampler = EpochSeededSampler(10, seed=1, shuffle=False)
        sampler.rank, sampler.world = rank, 3
        validation += [i for i, _ in sampler]
        assert len(sampler) == len(list(sampler))
    assert sorted(validation) == list(range(10))  # no padding: each validation ECG counted once


def test_part_blocked_order_reads_parts_sequentially_and_covers_every_ecg():
    parts = np.random.default_rng(0).permutation(np.repeat(np.arange(1, 11), 20))  # 200 ECGs in 10 parts
    batch, workers = 8, 3

    def order(rank, world, epoch, shuffle=True):
        sampler = PartBlockSampler(parts, seed=5, shuffle=shuffle, batch_size=batch, workers=workers)
        sampler.rank, sampler.world = rank, world
        sampler.set_epoch(epoch)
        drawn = np.array([i for i, _ in sampler])
        assert len(sampler) == len(drawn)
        return drawn

    single = order(0, 1, 1)
    assert sorted(single) == list(range(200)) and not np.array_equal(single, order(0, 1, 2))
    assert np.array_equal(single, order(0, 1, 1))  # a function of (seed, epoch)
    batches = single[: len(single) // batch * batch].reshape(-1, batch)
    for worker in range(workers):  # the loader gives batch j to worker j mod workers
        seen = parts[batches[worker::workers].ravel()]
        changes = np.count_nonzero(np.diff(seen) != 0)
        assert len(np.unique(seen)) <= 10 // workers + 2 * BLOCK_PARTS  # a contiguous run of blocks...
        assert changes > 0 and len(np.unique(seen)) < 10  # ...not every part
    ranks = [order(r, 3, 1) for r in range(3)]
    assert {len(o) for o in ranks} == {67} and set(np.concatenate(ranks)) == set(range(200))  # padded to 201
    validation = np.concatenate([order(r, 3, 1, shuffle=False) for r in range(3)])
    assert sorted(validation) == list(range(200)) and (np.diff(parts[validation]) >= 0).all()  # storage order


def test_ddp_validation_metrics_are_those_of_all_ranks_predictions(data, tmp_path):
    out = tmp_path / "run"
    output = _finish(_train(_config(data, out)))
    assert "rv_dysfunction_auroc" in output  # rank 0 reported; the model was written once
    history = pd.read_csv(out / "validation_history.csv")
    best = history.loc[history["val/loss"].idxmin()]  # the restored epoch

    store, cohort_path = data
    cohort = pd.read_parquet(cohort_path)
    split = carve_calibration(cohort, 0.15, seed=0).to_numpy()
    val = cohort[split == "val"]
    loaded = load_model(out / "model")
    x = StoreInput(loaded.pipeline, Store(store)).read_many(val["ecg_row"].to_numpy())
    with torch.no_grad():
        outputs = loaded.model(torch.from_numpy(x)).numpy()
    targets = loaded.spec.encode({k: val[k].to_numpy(float) for k in ("rvef", "rv_dysfunction")})
    everyone = validation_metrics(loaded.spec, outputs, targets)
    assert best["val/mae_rvef"] == pytest.approx(everyone["val/mae_rvef"], abs=1e-4)
    assert best["val/auroc_rv_dysfunction"] == pytest.approx(everyone["val/auroc_rv_dysfunction"], abs=1e-6)
    one_rank = validation_metrics(loaded.spec, outputs[0::2], targets[0::2])  # what rank 0 alone would log
    assert abs(one_rank["val/mae_rvef"] - best["val/mae_rvef"]) > 1e-3


@pytest.mark.long
def test_a_ddp_run_killed_mid_run_resumes_to_identical_weights(data, tmp_path):
    whole = tmp_path / "whole"
    _finish(_train(_config(data, whole, epochs=2)))

    killed = tmp_path / "killed"
    config = _config(data, killed, epochs=2)  # killed in the second epoch, after the first one's checkpoint
    _killed_after_first_checkpoint(config, killed)
    _finish(_train(config, "--resume"))

    a, b = load_file(whole / "model" / "weights.safetensors"), load_file(killed / "model" / "weights.safetensors")
    assert a.keys() == b.keys()
    assert max(float((a[k].float() - b[k].float()).abs().max()) for k in a) == 0.0


def _killed_after_first_checkpoint(config: Path, out: Path) -> None:
    process = _train(config, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (out / "checkpoints" / "last.ckpt").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # every rank, in the middle of the next epoch
    process.communicate()
    assert not (out / "model").exists()


def test_a_ddp_checkpoint_resumes_on_one_process(data, tmp_path):
    out = tmp_path / "run"
    _killed_after_first_checkpoint(_config(data, out, epochs=2), out)
    single = _config(data, out, epochs=2, trainer={"accelerator": "cpu", "devices": 1})
    output = _finish(_train(single, "--resume"))
    assert "rvef_mae" in output
    history = pd.read_csv(out / "validation_history.csv")
    assert list(history["epoch"]) == [0, 1] and np.isfinite(history["val/loss"]).all()


def _contrastive_rank(rank: int, world: int, init_file: str, z1_all, z2_all, out: str) -> None:
    """One rank of the NT-Xent check: its share of the global batch, negatives gathered from every rank."""
    import torch.distributed as dist
    from safetensors.torch import save_file

    from ecgscope.foundation.contrastive import nt_xent

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    share = len(z1_all) // world
    z1 = z1_all[rank * share:(rank + 1) * share].clone().requires_grad_(True)
    z2 = z2_all[rank * share:(rank + 1) * share].clone().requires_grad_(True)
    loss = nt_xent(z1, z2, 0.1, gather=True)
    loss.backward()
    save_file({"loss": loss.detach().reshape(1), "g1": z1.grad, "g2": z2.grad}, f"{out}/rank{rank}.safetensors")
    dist.destroy_process_group()


def test_the_contrastive_loss_under_ddp_is_the_global_batch_loss(tmp_path):
    import torch.multiprocessing as mp

    from ecgscope.foundation.contrastive import nt_xent

    generator = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(12, 16, generator=generator), torch.randn(12, 16, generator=generator)
    whole1, whole2 = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
    loss = nt_xent(whole1, whole2, 0.1)
    loss.backward()
    single = float(loss.detach())
    world = 2
    mp.spawn(_contrastive_rank, args=(world, str(tmp_path / "init"), z1, z2, str(tmp_path)), nprocs=world)
    for rank in range(world):
        got = load_file(tmp_path / f"rank{rank}.safetensors")
        assert float(got["loss"][0]) == pytest.approx(single, abs=1e-6)  # same number on every rank
        rows = slice(rank * 6, (rank + 1) * 6)
        # each rank's views get world x their share; DDP's mean of parameter gradients restores the global one
        torch.testing.assert_close(got["g1"] / world, whole1.grad[rows], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(got["g2"] / world, whole2.grad[rows], atol=1e-6, rtol=1e-5)
    local = nt_xent(z1[:6], z2[:6], 0.1)  # without the gather the loss is another number
    assert abs(float(local) - single) > 1e-3


def test_ddp_pretraining_writes_one_encoder(data, tmp_path):
    store, _ = data
    process = subprocess.Popen([ECGSCOPE, "pretrain", "--store", str(store), "--out", str(tmp_path / "pre"),
                                "--model", "compact_cnn_tiny", "--epochs", "1", "--batch-size", "8",
                                "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu"],
                               env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output = _finish(process)
    assert output.count("encoder:") == 1 and (tmp_path / "pre" / "model" / "model.json").exists()


def _recon(generator, source: StoreInput, rows: np.ndarray, targets: np.ndarray) -> float:
    """The validation reconstruction term (L1 of the scaled curves + L1 of log RR) over ``rows`` at once."""
    n_points = generator.n_points
    with torch.no_grad():
        fake, rr_hat = generator.eval()(torch.from_numpy(source.read_many(rows)))
    flat = torch.from_numpy(targets)
    curves, log_rr = flat[:, : 2 * n_points].view(len(rows), 2, n_points), flat[:, -1]
    return float(torch.nn.functional.l1_loss(fake, curves) + torch.nn.functional.l1_loss(rr_hat, log_rr))


def test_ddp_motion_training_logs_the_whole_validation_sets_reconstruction(data, tmp_path):
    from ecgscope.motion import load_generator
    from ecgscope.motion.train import _targets, paired_curves

    store, cohort_path = data
    motion_path = cohort_path.parent / "sim" / "truth" / "motion.parquet"
    process = subprocess.Popen([ECGSCOPE, "motion", "train", "--store", str(store), "--cohort", str(cohort_path),
                                "--motion", str(motion_path), "--out", str(tmp_path / "gan"), "--encoder",
                                "compact_cnn_tiny", "--epochs", "1", "--batch-size", "8", "--devices", "2",
                                "--strategy", "ddp", "--accelerator", "cpu"],
                               env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output = _finish(process)
    assert output.count("generator:") == 1  # rank 0 alone evaluates and writes
    logged = pd.read_csv(tmp_path / "gan" / "logs" / "version_0" / "metrics.csv")["val/recon"].dropna()
    cohort = pd.read_parquet(cohort_path)
    val = cohort[cohort["split"] == "val"]
    targets = _targets(*paired_curves(val, pd.read_parquet(motion_path)))
    loaded = load_generator(tmp_path / "gan" / "model")
    source = StoreInput(loaded.pipeline, Store(store))
    rows = val["ecg_row"].to_numpy()
    whole = _recon(loaded.generator, source, rows, targets)
    assert float(logged.iloc[-1]) == pytest.approx(whole, rel=1e-4)
    assert float(logged.iloc[-1]) != pytest.approx(_recon(loaded.generator, source, rows[::2], targets[::2]),
                                                   rel=1e-4)  # not one rank's half
