"""Linear probes: a frozen embedding, standardised, with one linear model per label (scikit-learn)."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def linear_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, kind: str = "binary",
                 seed: int = 0) -> np.ndarray:
    """Fit on (``x_train``, ``y_train``) and return test predictions: probabilities for ``kind="binary"``
    (L2 logistic regression), values for ``"regression"`` (ridge); the penalty is chosen by 5-fold CV on
    the training rows only. Rows with a missing label are left out of the fit."""
    keep = ~np.isnan(np.asarray(y_train, float))
    if kind == "binary":
        model = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed)),
                             {"logisticregression__C": np.logspace(-4, 1, 6)}, cv=5, scoring="roc_auc")
        model.fit(x_train[keep], y_train[keep].astype(int))
        return model.predict_proba(x_test)[:, 1]
    if kind == "regression":
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 7)))
        return model.fit(x_train[keep], y_train[keep]).predict(x_test)
    raise ValueError(f"kind must be 'binary' or 'regression', not {kind!r}")
