"""ecgscope train: a config-driven run over a store, resumable to the same result."""

import json

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from safetensors.numpy import load_file
from typer.testing import CliRunner

from ecgscope.cli import app
from ecgscope.cohort import carve_calibration, derive_labels, link_imaging, patient_split
from ecgscope.config import ConfigError, RunConfig, load_config
from ecgscope.store import Store, ingest
from ecgscope.train import load_model
from ecgscope.train.run import best_validation_loss, train_from_config


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from ecgscope.simulate import simulate_cohort
    from ecgscope.simulate.export import write_cohort

    root = tmp_path_factory.mktemp("run")
    sim = write_cohort(simulate_cohort("hospital", n=90, seed=4), root / "sim", formats=("wfdb",), progress=False,
                       workers=1)
    ingest([sim / "wfdb"], root / "store", fs=100, rate=100, workers=1, identifiers="keep", progress=False)
    store = Store(root / "store")
    pairs = derive_labels(link_imaging(store.manifest, sim / "measurements" / "mri.parquet", days_before=90,
                                       days_after=90), ["rv_dysfunction"])
    pairs["split"] = patient_split(pairs, (0.6, 0.2, 0.2), seed=0)
    pairs.to_parquet(root / "cohort.parquet")
    return root


def _config(data, out, **train):
    return RunConfig.model_validate({
        "out": str(out), "data": {"store": str(data / "store"), "cohort": str(data / "cohort.parquet"),
                                  "regression": ["rvef"], "binary": ["rv_dysfunction"]},
        "model": {"name": "compact_cnn_tiny"}, "train": {"max_epochs": 3, "batch_size": 16, **train}})


def test_train_command_writes_a_complete_run(data, tmp_path):
    cfg = _config(data, tmp_path / "run")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    result = CliRunner().invoke(app, ["train", str(tmp_path / "run.yaml")])
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    assert (run / "config.yaml").exists() and (run / "checkpoints" / "last.ckpt").exists()
    assert (run / "logs" / "version_0" / "metrics.csv").exists()
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert {"rvef_mae", "rvef_r2", "rvef_interval_coverage", "rv_dysfunction_auroc"} <= set(metrics)
    assert metrics["rvef_mae"] > 0
    environment = json.loads((run / "environment.json").read_text())  # what computed them
    assert environment["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    loaded = load_model(run / "model")
    assert "rvef" in loaded.conformal and loaded.spec.regression == ["rvef"]
    # intervals are calibrated on training patients set aside (15 %), not on the validation patients
    cohort = pd.read_parquet(data / "cohort.parquet")
    carved = carve_calibration(cohort, 0.15, seed=0)
    n_val = int(((cohort.split == "val") & cohort.rvef.notna()).sum())
    assert loaded.conformal["rvef"].n_calibration_ == int(((carved == "calibration") & cohort.rvef.notna()).sum())
    assert loaded.conformal["rvef"].n_calibration_ != n_val
    assert loaded.info["thresholds"]["rv_dysfunction"]["chosen_on"] == "validation"
    again = CliRunner().invoke(app, ["train", str(tmp_path / "run.yaml")])
    assert again.exit_code == 2 and "--resume" in again.output  # a finished run is not overwritten


class Crash(L.Callback):
    """Dies in the middle of epoch 1, as a killed process would (nothing saved after the last epoch end)."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 1:
            raise RuntimeError("killed mid-epoch")


class StartEpoch(L.Callback):
    """Records the epoch a fit starts at."""

    value = None

    def on_train_start(self, trainer, pl_module):
        self.value = trainer.current_epoch


def test_run_killed_mid_epoch_and_resumed_ends_like_an_uninterrupted_one(data, tmp_path):
    clean = train_from_config(_config(data, tmp_path / "clean"), progress=False)
    cfg = _config(data, tmp_path / "crashed")
    with pytest.raises(RuntimeError, match="killed mid-epoch"):
        train_from_config(cfg, progress=False, callbacks=[Crash()])
    assert (tmp_path / "crashed" / "checkpoints" / "last.ckpt").exists()  # from the end of epoch 0
    first_epoch = StartEpoch()
    resumed = train_from_config(cfg, resume=True, progress=False, callbacks=[first_epoch])
    assert first_epoch.value == 1  # it continued from the checkpoint rather than starting over
    assert json.loads((clean.parent / "test_metrics.json").read_text()) == pytest.approx(
        json.loads((resumed.parent / "test_metrics.json").read_text()), rel=1e-6)
    a, b = load_file(str(clean / "weights.safetensors")), load_file(str(resumed / "weights.safetensors"))
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-6, atol=1e-7)
    # the learning-rate grid compares runs by their best validation loss: a resumed run keeps every epoch's
    # (Lightning's own log restarts at the resume and has lost epoch 0)
    history = pd.read_csv(resumed.parent / "validation_history.csv")
    assert list(history.epoch) == [0, 1, 2]
    pd.testing.assert_frame_equal(history, pd.read_csv(clean.parent / "validation_history.csv"), rtol=1e-6)
    assert best_validation_loss(resumed.parent) == pytest.approx(best_validation_loss(clean.parent), rel=1e-6)


SEEDED_RUN = """
import hashlib, sys
from pathlib import Path
from ecgscope.config import RunConfig
from ecgscope.train.run import train_from_config
data, out = Path(sys.argv[1]), sys.argv[2]
cfg = RunConfig.model_validate({
    "out": out, "data": {"store": str(data / "store"), "cohort": str(data / "cohort.parquet"),
                         "regression": ["rvef"], "binary": ["rv_dysfunction"]},
    "model": {"name": "compact_cnn_tiny"}, "train": {"max_epochs": 1, "batch_size": 16}})
model = train_from_config(cfg, progress=False)
print(hashlib.sha256((model / "weights.safetensors").read_bytes()).hexdigest())
"""


def test_same_seed_same_weights_in_separate_processes(data, tmp_path):
    import subprocess
    import sys

    runs = [subprocess.run([sys.executable, "-c", SEEDED_RUN, str(data), str(tmp_path / f"run{i}")],
                           capture_output=True, text=True, check=True) for i in range(2)]
    hashes = [r.stdout.strip().splitlines()[-1] for r in runs]
    assert hashes[0] == hashes[1]  # weight initialisation included: the model is built after seeding


def test_learning_rate_grid_keeps_the_run_with_the_lowest_validation_loss(data, tmp_path):
    from ecgscope.train.run import best_validation_loss, train_model

    chosen = train_model(_config(data, tmp_path / "grid", max_epochs=2, lr_grid=[1e-4, 3e-3]), progress=False)
    record = json.loads((tmp_path / "grid" / "learning_rates.json").read_text())
    losses = {lr: best_validation_loss(tmp_path / "grid" / f"lr_{lr}") for lr in ("0.0001", "0.003")}
    assert record["best_val_loss"] == pytest.approx(losses)
    best = min(losses, key=losses.get)
    assert chosen == tmp_path / "grid" / f"lr_{best}" / "model" and record["chosen"] == float(best)
    # a resumed grid reuses the finished runs instead of training them again
    start = StartEpoch()
    assert train_model(_config(data, tmp_path / "grid", max_epochs=2, lr_grid=[1e-4, 3e-3]), resume=True,
                       progress=False, callbacks=[start]) == chosen
    assert start.value is None


def test_config_errors_name_the_field(tmp_path):
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"out": "x", "data": {"store": "s", "cohort": "c"},
                                                       "model": {"name": "resnet9000"},
                                                       "train": {"max_epochs": 0, "learning_rate": 1}}))
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "bad.yaml")
    text = str(err.value)
    assert "model.name" in text and "unknown model 'resnet9000'" in text
    assert "train.max_epochs" in text and "train.learning_rate" in text


def test_shipped_configs_are_valid():
    from pathlib import Path

    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert configs
    for path in configs:
        assert load_config(path).data.regression


@pytest.fixture(scope="module")
def pretrained(data, tmp_path_factory):
    return train_from_config(_config(data, tmp_path_factory.mktemp("pre") / "run"), progress=False)


def _finetune(data, pretrained, out, mode, epochs=3, callbacks=None):
    cfg = _config(data, out, max_epochs=epochs, finetune={"mode": mode, "unfreeze_every": 1})
    return train_from_config(cfg, progress=False, init_from=pretrained, callbacks=callbacks)


def _groups_equal(model_a, model_b):
    from ecgscope.train.finetune import layer_groups

    return [all(np.array_equal(x.detach().numpy(), y.detach().numpy())
                for x, y in zip(ga.state_dict().values(), gb.state_dict().values(), strict=True))
            for ga, gb in zip(layer_groups(model_a), layer_groups(model_b), strict=True)]


def test_linear_probe_trains_only_the_head(data, pretrained, tmp_path):
    tuned = _finetune(data, pretrained, tmp_path / "probe", "linear_probe")
    before, after = load_model(pretrained).model, load_model(tuned).model
    assert all(_groups_equal(before, after))  # weights and BatchNorm statistics untouched
    result = CliRunner().invoke(app, ["predict", str(tuned), "--store", str(data / "store"),
                                      "--out", str(tmp_path / "p.parquet")])
    assert result.exit_code == 0, result.output


class GroupsUnchanged(L.Callback):
    """After each training epoch, which layer groups still equal the pretrained model's."""

    def __init__(self, reference):
        self.reference, self.history = reference, []

    def on_train_epoch_end(self, trainer, pl_module):
        self.history.append(_groups_equal(self.reference, pl_module.model))


def test_gradual_unfreezing_opens_the_top_groups_first(data, pretrained, tmp_path):
    watch = GroupsUnchanged(load_model(pretrained).model)
    _finetune(data, pretrained, tmp_path / "gradual", "gradual", epochs=3, callbacks=[watch])
    n = len(watch.history[0])
    # epochs 0, 1, 2 open 0, 1, 2 groups from the top; the head trains throughout
    for epoch, same in enumerate(watch.history):
        assert same == [True] * (n - epoch) + [False] * epoch, (epoch, same)


def test_full_and_discriminative_fine_tuning_move_every_group(data, pretrained, tmp_path):
    from ecgscope.models import create_model
    from ecgscope.train.finetune import discriminative_param_groups

    for mode in ("full", "discriminative"):
        tuned = _finetune(data, pretrained, tmp_path / mode, mode, epochs=1)
        assert not any(_groups_equal(load_model(pretrained).model, load_model(tuned).model)), mode
    model = create_model("compact_cnn_tiny")
    groups = discriminative_param_groups(model, 1.0, 0.5)
    assert [g["lr"] for g in groups] == [0.5**k for k in range(len(groups))]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))  # every weight, once


def test_early_stopping_can_follow_a_named_validation_metric(data, tmp_path):
    import pandas as pd

    with pytest.raises(ValueError, match="val/auroc_rv_dysfunction"):  # the error lists what is allowed
        _config(data, tmp_path / "bad", monitor="val/auroc_rvef")
    train_from_config(_config(data, tmp_path / "run", monitor="val/auroc_rv_dysfunction", patience=1),
                      progress=False)
    logged = pd.read_csv(tmp_path / "run" / "logs" / "version_0" / "metrics.csv")
    assert {"val/loss", "val/mae_rvef", "val/auroc_rv_dysfunction"} <= set(logged.columns)
    assert logged["val/mae_rvef"].dropna().gt(0).all()
    assert logged["val/auroc_rv_dysfunction"].dropna().between(0, 1).all()


def test_validation_metrics_are_in_target_units_and_skip_missing_labels():
    from types import SimpleNamespace

    from sklearn.metrics import roc_auc_score

    from ecgscope.train.module import RestoreBestWeights, TaskSpec, validation_metrics

    spec = TaskSpec(regression=["rvef"], binary=["rv_dysfunction"], mean={"rvef": 50.0}, std={"rvef": 10.0},
                    uncertainty=False)
    rng = np.random.default_rng(0)
    rvef, label, logit = rng.normal(50, 10, 40), rng.integers(0, 2, 40).astype(float), rng.normal(size=40)
    label[:5] = np.nan
    pred = rvef + rng.normal(0, 3, 40)
    outputs = np.column_stack([(pred - 50) / 10, logit]).astype(np.float32)
    targets = np.column_stack([(rvef - 50) / 10, label]).astype(np.float32)
    got = validation_metrics(spec, outputs, targets)
    assert got["val/mae_rvef"] == pytest.approx(np.abs(pred - rvef).mean(), rel=1e-5)
    assert got["val/auroc_rv_dysfunction"] == pytest.approx(roc_auc_score(label[5:], logit[5:]))

    import torch

    best = RestoreBestWeights("val/auroc_rv_dysfunction")  # higher is better for AUROC
    for epoch, value in enumerate([0.6, 0.8, 0.7]):
        module = SimpleNamespace(state_dict=lambda epoch=epoch: {"epoch": torch.tensor(epoch)})
        best.on_validation_end(SimpleNamespace(callback_metrics={best.monitor: value}, sanity_checking=False), module)
    assert best.state["epoch"].item() == 1


class FirstBatch(L.Callback):
    """Keeps the first training batch's signals, as the model received them."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if not hasattr(self, "x"):
            self.x = batch[0].detach().cpu().numpy()


def test_finetuning_feeds_the_starting_models_pipeline_not_the_stores(data, tmp_path):
    from ecgscope.models import create_model
    from ecgscope.signal import Pipeline
    from ecgscope.train import TaskSpec, save_model
    from ecgscope.train.datamodule import EpochSeededSampler

    # a model whose contract differs from the 100 Hz store's default: 50 Hz, 8 s, each lead z-scored
    theirs = Pipeline(50.0, 400, [{"name": "zscore_lead"}])
    start = save_model(tmp_path / "theirs", create_model("compact_cnn_tiny", num_outputs=2), "compact_cnn_tiny",
                       TaskSpec(regression=["x"], mean={"x": 0.0}, std={"x": 1.0}), theirs)
    seen = FirstBatch()
    still = {"amplitude_scale_sd": 0, "baseline_wander_mv": 0, "noise_mv": 0, "lead_dropout_p": 0,
             "random_shift_s": 0}
    cfg = _config(data, tmp_path / "tuned", max_epochs=1, augment=still, finetune={"mode": "full"})
    tuned = train_from_config(cfg, progress=False, init_from=start, callbacks=[seen])
    assert load_model(tuned).pipeline == theirs
    cohort, store = pd.read_parquet(data / "cohort.parquet"), Store(data / "store")
    split = carve_calibration(cohort, cfg.train.calibration_fraction, cfg.train.seed).to_numpy()
    rows = cohort["ecg_row"].to_numpy()[split == "train"]
    order = [i for i, _ in EpochSeededSampler(len(rows), cfg.train.seed, shuffle=True)][: len(seen.x)]
    expected = theirs(np.stack([store.read(int(r)) for r in rows[order]]), store.config.fs)
    assert seen.x.shape == (len(order), 12, 400)
    np.testing.assert_allclose(seen.x, expected, atol=1e-5)


def test_a_cohort_built_on_another_store_is_refused(data, tmp_path):
    from ecgscope.cohort import CohortError

    cohort = pd.read_parquet(data / "cohort.parquet")
    cohort["ecg_row"] = np.roll(cohort["ecg_row"].to_numpy(), 1)  # same size, other ECGs behind each row
    cohort.to_parquet(tmp_path / "other.parquet")
    cfg = _config(data, tmp_path / "run").model_copy(deep=True)
    cfg.data.cohort = tmp_path / "other.parquet"
    with pytest.raises(CohortError, match="does not match store"):
        train_from_config(cfg, progress=False)


_STEPS = """
import hashlib, sys
import torch
from ecgscope.models import create_model
from ecgscope.train.trainer import reuse_freed_memory
print(reuse_freed_memory() if sys.argv[1] == "1" else "default")
torch.set_num_threads(1)
torch.manual_seed(0)
model = create_model("net1d_small", num_outputs=3)
opt = torch.optim.Adam(model.parameters(), 1e-3)
g = torch.Generator().manual_seed(1)
for _ in range(3):
    opt.zero_grad()
    model(torch.randn(16, 12, 1000, generator=g)).pow(2).mean().backward()
    opt.step()
print(hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest())
"""


def test_reusing_freed_memory_takes_on_glibc_and_leaves_training_bit_for_bit_the_same():
    # the allocator setting every training run makes (page faults, not numbers): the same weights either way
    import subprocess
    import sys

    runs = [subprocess.run([sys.executable, "-c", _STEPS, flag], capture_output=True, text=True, check=True)
            .stdout.split() for flag in ("0", "1")]
    assert runs[1][0] == "True"  # the machines ecgscope's tests run on are glibc Linux
    assert runs[0][1] == runs[1][1]
