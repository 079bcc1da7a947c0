"""The Python API for notebooks and scripts: ``import ecgscope as es``, then one call per step of a study.

Each function takes and returns DataFrames or objects and writes to disk only when given a path (training
writes its checkpoints and model directory under ``out``, which it needs to resume). The command line is a
shell over the same functions, so a notebook and ``ecgscope ...`` give the same numbers.

Study A on a store, in ten lines::

    import ecgscope as es

    cohort = es.build_cohort("stores/ukb", "mri.parquet", labels=["rv_dysfunction", "rv_dilation"],
                             stratify="rv_dysfunction")
    print(cohort.summary())
    model = es.train(cohort, store="stores/ukb", out="runs/a", regression=["rvef", "rvedvi"],
                     binary=["rv_dysfunction", "rv_dilation"])
    predictions = es.predict(model, "stores/ukb")
    metrics = es.evaluate(predictions, cohort.table[cohort.table.split == "test"])
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ecgscope.cohort import Cohort, build_cohort
from ecgscope.ecg import ECG
from ecgscope.store import IngestReport, Store, ingest
from ecgscope.train.artifact import LoadedModel, load_model

__all__ = ["Cohort", "IngestReport", "LoadedModel", "Store", "build_cohort", "evaluate", "ingest", "load_model",
           "predict", "read", "report", "survival", "train"]


def read(path: str | Path, format: str | None = None, **options) -> list[ECG]:
    """Every ECG record at ``path`` (a file or a dataset folder; format detected unless given), in mV with the
    standard lead names.

    >>> ecg = es.read("data/ludb/1.hea")[0]        # doctest: +SKIP
    >>> ecg.signal.shape, ecg.fs, ecg.leads         # doctest: +SKIP
    """
    from ecgscope import io

    return list(io.read(path, format, **options))


def train(cohort: Cohort | pd.DataFrame | str | Path | None = None, *, store: str | Path | None = None,
          out: str | Path | None = None, regression: list[str] = (), binary: list[str] = (),
          config: dict | str | Path | None = None, resume: bool = False, progress: bool = True,
          **train_options) -> LoadedModel:
    """Train a model on ``cohort``'s ECGs in ``store`` and return it loaded.

    Either give ``config`` (a run configuration: a YAML path or the same as a dict, see ``ecgscope config
    schema``), or build one from the arguments: ``cohort`` (a :class:`Cohort`, its table, or a table's path),
    ``store``, ``out`` (the run folder: checkpoints, the model directory, test metrics), the ``regression`` and
    ``binary`` targets, and any :class:`~ecgscope.config.TrainConfig` field as a keyword (``max_epochs=5``).
    A table given in memory is written to ``out/cohort.parquet`` first, so the run can be resumed.

    >>> model = es.train(cohort, store="stores/ukb", out="runs/a", regression=["rvef"], max_epochs=5)  # doctest: +SKIP
    """
    from ecgscope.config import ConfigError, load_config, parse_config
    from ecgscope.io import write_parquet
    from ecgscope.train.run import train_model

    if isinstance(config, str | Path):
        cfg = load_config(config)
    elif config is not None:
        cfg = parse_config(dict(config))
    else:
        if cohort is None or store is None or out is None:
            raise ConfigError("es.train needs either config=, or cohort, store= and out=")
        table = cohort.table if isinstance(cohort, Cohort) else cohort
        if isinstance(table, pd.DataFrame):
            Path(out).mkdir(parents=True, exist_ok=True)
            write_parquet(table, Path(out) / "cohort.parquet")
            table = Path(out) / "cohort.parquet"
        cfg = parse_config({"out": str(out), "train": train_options,
                            "data": {"store": str(store), "cohort": str(table), "regression": list(regression),
                                     "binary": list(binary)}}, "es.train's arguments")
    return load_model(train_model(cfg, resume=resume, progress=progress))


def predict(model: LoadedModel | str | Path, ecgs: Store | str | Path | list[ECG], *, progress: bool = False,
            **options) -> pd.DataFrame:
    """Predictions for every ECG of a store (one row per ECG: values with conformal intervals, probabilities),
    or for a list of ECG records assessed as the service does (a ``status`` of result / cannot_assess, with
    reasons). ``model`` is a model directory or a model :func:`train` returned.

    >>> es.predict("runs/a/model", "stores/ukb").head()   # doctest: +SKIP
    """
    folder = model.path if isinstance(model, LoadedModel) else model
    if isinstance(ecgs, list):
        from ecgscope.serve.assess import Assessor
        from ecgscope.serve.clinic import flatten

        answers = Assessor(folder).assess(ecgs)
        return pd.DataFrame([{"ecg_id": e.ecg_id, **flatten(a)} for e, a in zip(ecgs, answers, strict=True)])
    from ecgscope.train.predict import predict_store

    return predict_store(folder, ecgs, progress=progress, **options)


def evaluate(predictions: pd.DataFrame, labels: pd.DataFrame | None = None, *, subgroups: list[str] = (),
             out: str | Path | None = None, **options) -> pd.DataFrame:
    """Metrics with patient-bootstrap 95 % CIs (AUROC, AUPRC, MAE, R², calibration, ...) for every target the
    two tables share, overall and by ``subgroups``; with ``out``, also the curves and tables the report draws.

    ``predictions`` is what :func:`predict` returned; ``labels`` the measured values (a cohort table); rows
    match on ``ecg_id``. Without ``labels``, ``predictions`` must hold ``T_true`` / ``T_pred`` pairs.

    >>> es.evaluate(predictions, cohort.table[cohort.table.split == "test"])   # doctest: +SKIP
    """
    from ecgscope.evaluate.evaluation import prediction_frame, run_evaluation

    return run_evaluation(prediction_frame(predictions, labels), out, subgroups=list(subgroups), **options)


def survival(predictions: pd.DataFrame, outcomes: pd.DataFrame | str | Path, predictor: str, *,
             out: str | Path | None = None, **options) -> dict:
    """Whether ``predictor`` stratifies survival: Cox hazard ratios (``per`` units, optionally adjusted for
    ``covariates``), Fine-Gray, concordance, log-rank and risk groups; one row per patient (the first ECG).
    With ``out``, also the Kaplan-Meier, incidence and time-dependent AUC tables the report draws.

    >>> es.survival(predictions, "outcomes.parquet", "rvef", per=-10, higher_is_riskier=False)  # doctest: +SKIP
    """
    from ecgscope.survival.analysis import run_survival, survival_frame

    return run_survival(survival_frame(predictions, outcomes), out, predictor, **options)


def report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """One self-contained HTML report of a run folder's evaluations and survival analyses; returns its path.

    >>> es.report("runs/a")   # doctest: +SKIP
    """
    from ecgscope.report.html import build_report

    return build_report(run_dir, out)
