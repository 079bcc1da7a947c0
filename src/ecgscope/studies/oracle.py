"""The oracle: a model fitted on the noise-free waveform parameters of a simulated cohort.

It marks the accuracy an ECG model can hope for on that cohort: the parameters are what the waveform shows
without noise, so a deep model reading the noisy signal should approach it. Fitted on a finite training
split it is itself an estimate, so at small n (and for rare phenotypes) a deep model can land above it
within the confidence intervals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from ecgscope.simulate.waveform import ORACLE_COLUMNS

# Early stopping and shrinkage keep the oracle from overfitting a few thousand subjects.
_BOOSTING = dict(max_iter=500, learning_rate=0.05, early_stopping=True, validation_fraction=0.15,
                 n_iter_no_change=20, l2_regularization=1.0, min_samples_leaf=40)


def oracle_features(oracle: pd.DataFrame, extra: np.ndarray | None = None) -> np.ndarray:
    """The oracle table as a feature matrix (NaN where a parameter does not exist, e.g. PR in AF), with
    ``extra`` columns (e.g. age and sex, when the model it is compared with reads them too) appended."""
    x = oracle[list(ORACLE_COLUMNS)].to_numpy(dtype=float)
    return x if extra is None else np.column_stack([x, np.asarray(extra, float)])


def fit_oracle(oracle_train: pd.DataFrame, targets: pd.DataFrame, seed: int = 0,
               extra: np.ndarray | None = None) -> dict:
    """Fit one gradient-boosted model per target column (bool columns are classified, others regressed)."""
    x = oracle_features(oracle_train, extra)
    models = {}
    for name in targets.columns:
        y = targets[name].to_numpy()
        if y.dtype == bool:
            model = HistGradientBoostingClassifier(**_BOOSTING, random_state=seed, class_weight="balanced")
        else:
            model = HistGradientBoostingRegressor(**_BOOSTING, random_state=seed)
        models[name] = model.fit(x, y)
    return models


def phenotype_score(measure_prediction: np.ndarray, direction: str) -> np.ndarray:
    """A phenotype score from a predicted measurement: higher means more likely (``direction`` '<=' or '>').

    At low prevalence (1 % RV dysfunction in a population cohort) a classifier fitted on a few dozen
    positives is unstable; the regression uses every subject, so the oracle scores threshold phenotypes
    through its predicted measurement.
    """
    return -np.asarray(measure_prediction) if direction in ("<", "<=") else np.asarray(measure_prediction)


def predict_oracle(models: dict, oracle: pd.DataFrame, extra: np.ndarray | None = None) -> pd.DataFrame:
    """Predictions of :func:`fit_oracle` models: probability for classifiers, value for regressors."""
    x = oracle_features(oracle, extra)
    out = {}
    for name, model in models.items():
        out[name] = model.predict_proba(x)[:, 1] if hasattr(model, "predict_proba") else model.predict(x)
    return pd.DataFrame(out, index=oracle.index)
