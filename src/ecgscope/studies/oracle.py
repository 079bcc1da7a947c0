"""The oracle: a model fitted on the noise-free waveform parameters of a simulated cohort.

It marks the best accuracy an ECG model can hope for on that cohort: the parameters are what the
waveform shows without noise, so a deep model reading the noisy signal should approach, not beat, it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from ecgscope.simulate.waveform import ORACLE_COLUMNS


def oracle_features(oracle: pd.DataFrame) -> np.ndarray:
    """The oracle table as a feature matrix (NaN where a parameter does not exist, e.g. PR in AF)."""
    return oracle[list(ORACLE_COLUMNS)].to_numpy(dtype=float)


def fit_oracle(oracle_train: pd.DataFrame, targets: pd.DataFrame, seed: int = 0) -> dict:
    """Fit one gradient-boosted model per target column (bool columns are classified, others regressed)."""
    x = oracle_features(oracle_train)
    models = {}
    for name in targets.columns:
        y = targets[name].to_numpy()
        if y.dtype == bool:
            model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=seed,
                                                   class_weight="balanced")
        else:
            model = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, random_state=seed)
        models[name] = model.fit(x, y)
    return models


def predict_oracle(models: dict, oracle: pd.DataFrame) -> pd.DataFrame:
    """Predictions of :func:`fit_oracle` models: probability for classifiers, value for regressors."""
    x = oracle_features(oracle)
    out = {}
    for name, model in models.items():
        out[name] = model.predict_proba(x)[:, 1] if hasattr(model, "predict_proba") else model.predict(x)
    return pd.DataFrame(out, index=oracle.index)
