"""``ecgscope train CONFIG.yaml``: a whole training run from a store and a cohort table, resumable.

:func:`train_model` is the one way ecgscope trains a supervised model: the CLI's ``train`` and ``finetune``,
the demo's ukb model, study A's transfer arms and the models benchmark all call it, so every model compared
anywhere shares one recipe (store-backed loading, augmentation, one-cycle schedule, best-epoch weights and,
with ``train.lr_grid``, a learning rate chosen on validation loss).

The run directory holds ``config.yaml``, ``checkpoints/last.ckpt`` (every epoch), ``logs/`` (Lightning's
CSV metrics), ``test_metrics.json``, ``environment.json`` (the versions and CPU kernels that computed them) and
the final model directory ``model/`` with conformal intervals calibrated on the cohort's 'calibration'
patients: when the cohort has none, ``train.calibration_fraction`` of its training patients are set aside
(not trained on) for them, since the validation patients chose the epoch and are no longer exchangeable with
test.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
import yaml
from lightning.pytorch.callbacks import EarlyStopping

from ecgscope.cohort import CohortError, carve_calibration, check_no_leakage, load_table
from ecgscope.config import ConfigError, RunConfig
from ecgscope.contract import StoreInput, usable_batches
from ecgscope.evaluate import SplitConformal, auroc, mae, r2
from ecgscope.io import write_text
from ecgscope.provenance import write_environment
from ecgscope.signal import default_pipeline
from ecgscope.store.layout import Store
from ecgscope.train.artifact import load_model, operating_thresholds, save_model
from ecgscope.train.card import model_card, performance
from ecgscope.train.datamodule import CohortDataModule, EpochSeededSampler, StoreDataset, make_loader
from ecgscope.train.finetune import (
    FrozenInEval,
    GradualUnfreezing,
    discriminative_param_groups,
    layer_groups,
    set_trainable,
)
from ecgscope.train.inference import TaskSpec, inference_device, predict_batches
from ecgscope.train.module import (
    MultiTaskModule,
    RestoreBestWeights,
    ValidationHistory,
    monitor_mode,
    quiet_lightning,
    seeded_model,
)
from ecgscope.train.ood import FAR_PERCENTILE, REFERENCE_MAX_ECGS, OODReference, embeddings, reference_rows
from ecgscope.train.trainer import fit, make_trainer


def _predict(module: MultiTaskModule, data: StoreDataset, batch_size: int,
             num_workers: int | None) -> dict[str, np.ndarray]:
    loader = make_loader(data, batch_size, EpochSeededSampler(len(data), 0, shuffle=False), num_workers)
    return predict_batches(module, module.spec, (x for x, _ in loader))


def check_cohort_matches_store(cohort: pd.DataFrame, store: Store, name: str | Path) -> None:
    """Raise ``CohortError`` unless every cohort row's ``ecg_row`` holds, in ``store``, the ECG its ``ecg_id``
    names (a cohort built on one store must not train on another store's ECGs that happen to fit)."""
    rows = cohort["ecg_row"].to_numpy()
    if len(rows) and (rows.min() < 0 or rows.max() >= len(store)):
        raise CohortError(f"{name} points at store row {int(rows.max())}, but {store.root} holds {len(store)} ECGs: "
                          "was the cohort built on another store? Rebuild it with `ecgscope cohort build`")
    stored = store.column("ecg_id").astype(str)[rows]
    wrong = np.flatnonzero(stored != cohort["ecg_id"].astype(str).to_numpy())
    if len(wrong):
        k = wrong[0]
        raise CohortError(f"{name} does not match store {store.root}: {len(wrong)} of {len(rows)} rows name another "
                          f"ECG than the store holds at their ecg_row (e.g. row {int(rows[k])}: cohort "
                          f"{cohort['ecg_id'].iloc[k]!r}, store {stored[k]!r}); rebuild the cohort on this store "
                          "with `ecgscope cohort build`")


def check_binary_targets(cohort: pd.DataFrame, binary: list[str], name: str | Path) -> None:
    """Raise ``CohortError`` unless every binary target holds only 0, 1 or missing values."""
    for target in binary:
        values = pd.to_numeric(cohort[target], errors="coerce")
        bad = cohort[target].notna() & ~values.isin([0, 1])
        if bad.any():
            examples = ", ".join(map(str, cohort.loc[bad, target].unique()[:3]))
            raise CohortError(f"{name}: binary target {target!r} holds values other than 0 and 1 (e.g. "
                              f"{examples}); list a continuous measurement under data.regression")


def best_validation_loss(run_dir: Path) -> float:
    """The lowest validation loss of a training run over all its epochs, resumed or not (``ValidationHistory``;
    runs made before it kept only Lightning's log)."""
    history = Path(run_dir) / "validation_history.csv"
    logged = pd.read_csv(history if history.exists() else Path(run_dir) / "logs" / "version_0" / "metrics.csv")
    return float(logged["val/loss"].min())


def train_model(cfg: RunConfig, resume: bool = False, progress: bool = True,
                callbacks: list[L.Callback] | None = None, init_from: str | Path | None = None) -> Path:
    """Train as ``cfg`` says and return the model directory; with ``cfg.train.lr_grid``, one run per learning
    rate under ``OUT/lr_VALUE`` and the model of the lowest best validation loss (``OUT/learning_rates.json``
    records the choice). Test patients take no part in the choice."""
    grid = cfg.train.lr_grid
    if not grid:
        return train_from_config(cfg, resume=resume, progress=progress, callbacks=callbacks, init_from=init_from)
    out = Path(cfg.out)
    runs = {}
    for lr in grid:
        sub = cfg.model_copy(update={"out": out / f"lr_{lr:g}",
                                     "train": cfg.train.model_copy(update={"lr": lr, "lr_grid": None})})
        done = (sub.out / "model" / "model.json").exists() and resume
        runs[lr] = sub.out / "model" if done else train_from_config(
            sub, resume=resume, progress=progress, callbacks=callbacks, init_from=init_from)
    losses = {lr: best_validation_loss(path.parent) for lr, path in runs.items()}
    chosen = min(losses, key=losses.get)
    write_text(out / "learning_rates.json", json.dumps({"chosen": chosen, "model": str(runs[chosen]),
                                                        "best_val_loss": {f"{k:g}": v for k, v in losses.items()}},
                                                       indent=2) + "\n")
    return runs[chosen]


def _what_is_trained(config: dict) -> dict:
    """A run configuration without its ``trainer`` section: a checkpoint resumes on any number of ranks."""
    return {k: v for k, v in config.items() if k != "trainer"}


def train_from_config(cfg: RunConfig, resume: bool = False, progress: bool = True,
                      callbacks: list[L.Callback] | None = None, init_from: str | Path | None = None) -> Path:
    """Train, evaluate on the test split and save the model; return the model directory.

    ``init_from`` names a saved model to fine-tune (its architecture replaces ``cfg.model``; its head is
    replaced for the new targets) with the mode in ``cfg.train.finetune``.
    """
    out = Path(cfg.out)
    text = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=True)
    saved = out / "config.yaml"
    if resume and saved.exists() and _what_is_trained(yaml.safe_load(saved.read_text())) != _what_is_trained(
            cfg.model_dump(mode="json")):
        raise ConfigError(f"{saved} differs from the configuration given: resume with the same one (only "
                          "`trainer`, where and on how many processes it runs, may change)")
    if not resume and (out / "checkpoints").exists():
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it or choose another out")

    # everything that can be checked is checked before the run folder exists: a refused run leaves nothing
    store = Store(cfg.data.store)
    cohort = load_table(cfg.data.cohort)
    targets = cfg.data.regression + cfg.data.binary
    missing = [c for c in ("ecg_row", "ecg_id", "split", "patient_id", *targets) if c not in cohort.columns]
    if missing:
        raise CohortError(f"{cfg.data.cohort} lacks column(s) {missing}; build it with `ecgscope cohort build`")
    check_binary_targets(cohort, cfg.data.binary, cfg.data.cohort)
    check_cohort_matches_store(cohort, store, cfg.data.cohort)
    check_no_leakage(cohort)
    out.mkdir(parents=True, exist_ok=True)
    write_text(saved, text)
    split = carve_calibration(cohort, cfg.train.calibration_fraction, cfg.train.seed).to_numpy()
    values = {k: cohort[k].to_numpy(dtype=float) for k in targets}
    spec = TaskSpec.from_targets({k: v[split == "train"] for k, v in values.items()}, cfg.data.regression,
                                 cfg.data.binary)
    encoded = spec.encode(values)
    if init_from is not None:  # seeded first: building the saved architecture draws (then discarded) weights
        L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    pretrained = load_model(init_from) if init_from is not None else None
    # a fine-tuned model keeps the contract of the model it starts from: its weights learnt that input
    pipeline = pretrained.pipeline if pretrained is not None else default_pipeline(store.config.fs,
                                                                                   store.config.n_samples)
    source = StoreInput(pipeline, store, model=str(init_from) if pretrained is not None else cfg.model.name)
    source.refuse_short(cohort["ecg_row"].to_numpy(), f"{cfg.data.cohort} on store {store.root}")
    seed = cfg.train.seed
    data = {s: StoreDataset(source, cohort["ecg_row"].to_numpy()[split == s], encoded[split == s],
                             cfg.train.augment if s == "train" else None, seed)
            for s in ("train", "val", "calibration", "test")}
    if not len(data["train"]) or not len(data["val"]):
        raise CohortError("the cohort needs rows in both the 'train' and 'val' splits")

    quiet_lightning()
    architecture, kwargs, groups, extra = cfg.model.name, dict(cfg.model.kwargs), None, []
    if pretrained is not None:
        model, architecture = pretrained.model, pretrained.info["architecture"]
        kwargs = {k: v for k, v in pretrained.info.get("model_kwargs", {}).items() if k != "num_outputs"}
        model.reset_head(spec.n_outputs)
        ft = cfg.train.finetune
        if ft.mode == "linear_probe":
            for group in layer_groups(model):
                set_trainable(group, False)
            extra.append(FrozenInEval())
        elif ft.mode == "discriminative":
            groups = discriminative_param_groups(model, cfg.train.lr, ft.lr_decay)
        elif ft.mode == "gradual":
            extra.append(GradualUnfreezing(ft.unfreeze_every))
        model.train()
    else:
        model = seeded_model(architecture, seed, num_outputs=spec.n_outputs, **kwargs)
    module = MultiTaskModule(model, spec, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay,
                             max_epochs=cfg.train.max_epochs, param_groups=groups)
    hooks = [*extra, RestoreBestWeights(cfg.train.monitor), ValidationHistory(out / "validation_history.csv"),
             *(callbacks or [])]
    if cfg.train.patience:
        hooks.append(EarlyStopping(cfg.train.monitor, mode=monitor_mode(cfg.train.monitor),
                                   patience=cfg.train.patience))
    trainer = make_trainer(out, cfg.train.max_epochs, cfg.trainer, hooks, progress=progress)
    datamodule = CohortDataModule(data, cfg.train.batch_size, cfg.train.num_workers, seed, cfg.data.order)
    fit(trainer, module, datamodule, out, resume)
    if not trainer.is_global_zero:  # under DDP, rank 0 alone evaluates and writes the model
        return out / "model"

    module.to(inference_device())  # Lightning hands a fitted model back on the CPU
    val, calibration, test = (_predict(module, data[s], 256, cfg.train.num_workers) for s in ("val", "calibration",
                                                                                              "test"))
    thresholds = operating_thresholds({k: values[k][split == "val"] for k in cfg.data.binary}, val,
                                      cfg.data.binary, chosen_on="validation")
    conformal = {k: SplitConformal(cfg.train.conformal_alpha).fit(values[k][split == "calibration"], calibration[k],
                                                                  calibration[f"{k}_std"])
                 for k in cfg.data.regression}
    metrics: dict[str, float] = {}
    if len(data["test"]):
        for k in cfg.data.regression:
            y = values[k][split == "test"]
            lo, hi = conformal[k].interval(test[k], test[f"{k}_std"])
            metrics |= {f"{k}_mae": mae(y, test[k]), f"{k}_r2": r2(y, test[k]),
                        f"{k}_interval_coverage": float(np.mean((y >= lo) & (y <= hi)))}
        for k in cfg.data.binary:
            metrics[f"{k}_auroc"] = auroc(values[k][split == "test"], test[k])
    write_text(out / "test_metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_environment(out)
    rows = {s: cohort["ecg_row"].to_numpy()[split == s] for s in ("train", "calibration")}
    rows["train"] = reference_rows(rows["train"], cfg.train.seed)
    ood = None
    if len(rows["train"]) >= 2 and len(rows["calibration"]):
        # unaugmented: the reference describes ECGs as they arrive, not as training perturbed them
        ood = OODReference.fit(*(embeddings(module.model, (torch.from_numpy(x) for _, x in usable_batches(
            source, rows[s], 256))) for s in ("train", "calibration")))
    card = _card(cfg, cohort, split, values, test, conformal, thresholds, architecture, pipeline, ood)
    return save_model(out / "model", module.model, architecture, spec, pipeline, model_kwargs=kwargs,
                      metrics=metrics, conformal=conformal, thresholds=thresholds,
                      data=f"{cfg.data.cohort} ({len(data['train'])} train)", ood=ood, card=card)


def _card(cfg: RunConfig, cohort: pd.DataFrame, split: np.ndarray, values: dict, test: dict, conformal: dict,
          thresholds: dict, architecture: str, pipeline, ood: OODReference | None) -> dict:
    """The TRIPOD+AI model card of a finished run, its performance computed on the test split."""
    is_test = split == "test"
    frame = cohort.loc[is_test, [c for c in ("sex", "age") if c in cohort.columns]].reset_index(drop=True)
    intervals = {}
    for k in cfg.data.regression:
        frame[k], frame[f"{k}_pred"] = values[k][is_test], test[k]
        intervals[k] = conformal[k].interval(test[k], test[f"{k}_std"])
    for k in cfg.data.binary:
        frame[k], frame[f"{k}_pred"] = values[k][is_test], test[k]
    counts = {s: f"{int((split == s).sum())} ECGs of {cohort.loc[split == s, 'patient_id'].nunique()} patients"
              for s in ("train", "val", "calibration", "test")}
    return model_card(
        architecture=architecture, targets={"regression": cfg.data.regression, "binary": cfg.data.binary},
        contract=pipeline.describe(), thresholds=thresholds,
        conformal_alpha={k: c.alpha for k, c in conformal.items()},
        data={"cohort": str(cfg.data.cohort), "store": str(cfg.data.store), **counts,
              "split": "by patient; calibration patients carved from training, never seen by the fit"},
        performance_by_group=performance(frame, cfg.data.regression, cfg.data.binary, thresholds, intervals)
        if is_test.any() else {},
        ood=None if ood is None else {
            "score": "Mahalanobis distance of the pooled embedding from the training ECGs (Ledoit-Wolf covariance; "
                     f"at most {REFERENCE_MAX_ECGS:,} of them, a seeded draw), as a percentile of the calibration "
                     "ECGs' distances",
            "far_percentile": FAR_PERCENTILE,
            "rule": f"an ECG farther from the training data than {FAR_PERCENTILE:g} % of the held-out calibration "
                    "ECGs is answered 'cannot assess' (about 1 % of in-distribution ECGs by construction)",
            "n_calibration": int(len(ood.calibration_distances))})

