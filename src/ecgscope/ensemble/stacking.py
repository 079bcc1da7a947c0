"""Stacking over blocks of features (foundation embeddings, motion features, covariates), all scikit-learn.

Each block gets its own base learner (median imputation, z-scores, L2 logistic regression with its penalty
chosen by inner cross-validation); a logistic meta-learner combines the base learners' out-of-fold logits
(``StackingClassifier`` with ``stack_method="predict_proba"``), which also calibrates the result: the
meta-learner is fitted on predictions its base learners made without seeing those rows.

``cross_fitted`` gives every row of the development cohort a prediction from models that never saw that
row's patient (outer folds grouped by patient), for the ensemble and for each block alone, so the parts and the
whole are compared on equal terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import StackingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from ecgscope.errors import EcgscopeError

#: The L2 penalties each base learner chooses from (inverse strength C).
C_GRID = np.logspace(-4, 1, 6)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class EnsembleError(EcgscopeError, ValueError):
    """Features or labels that cannot be stacked."""


def block_learner(columns: list[str], seed: int = 0, inner_folds: int = 3) -> Pipeline:
    """A base learner on ``columns`` only: impute, standardise, L2 logistic regression tuned by inner CV."""
    logistic = GridSearchCV(LogisticRegression(max_iter=3000, random_state=seed), {"C": C_GRID},
                            cv=StratifiedKFold(inner_folds, shuffle=True, random_state=seed), scoring="neg_log_loss")
    select = ColumnTransformer([("block", "passthrough", columns)])
    return make_pipeline(select, SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(), logistic)


def stacking_model(blocks: dict[str, list[str]], seed: int = 0, folds: int = 5) -> StackingClassifier:
    """The ensemble over ``blocks`` (name -> feature columns): an unpenalised logistic regression on the logits
    of the base learners' out-of-fold probabilities (a few weights, so no penalty is needed, and none shrinks
    the combined probabilities toward the mean)."""
    if not blocks:
        raise EnsembleError("the ensemble needs at least one block of features")
    meta = make_pipeline(FunctionTransformer(_logit), LogisticRegression(C=1e6, max_iter=1000))
    return StackingClassifier(
        estimators=[(name, block_learner(cols, seed)) for name, cols in blocks.items()],
        final_estimator=meta, stack_method="predict_proba",
        cv=StratifiedKFold(folds, shuffle=True, random_state=seed), passthrough=False)


@dataclass
class StackedEnsemble:
    """Fitted models: the ensemble and each block alone, with the blocks they read."""

    blocks: dict[str, list[str]]
    models: dict[str, object]

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Probabilities: ``ensemble`` and one column per block."""
        _check(features, self.blocks)
        return pd.DataFrame({name: model.predict_proba(features)[:, 1] for name, model in self.models.items()},
                            index=features.index)

    @property
    def weights(self) -> dict[str, float]:
        """The meta-learner's coefficient on each block's probability (how much each part is used)."""
        meta = self.models["ensemble"].final_estimator_[-1]
        return dict(zip(self.blocks, meta.coef_.ravel().tolist(), strict=True))


def _check(features: pd.DataFrame, blocks: dict[str, list[str]]) -> None:
    missing = sorted({c for cols in blocks.values() for c in cols} - set(features.columns))
    if missing:
        raise EnsembleError(f"the feature table lacks {len(missing)} column(s), e.g. {missing[:3]}")


def _models(blocks: dict[str, list[str]], seed: int, folds: int) -> dict[str, object]:
    parts = {name: block_learner(cols, seed) for name, cols in blocks.items()}
    return {"ensemble": stacking_model(blocks, seed, folds), **parts}


def _labels(y) -> np.ndarray:
    y = np.asarray(y, float)
    if np.isnan(y).any():
        raise EnsembleError("labels must not be missing; drop unlabeled rows (e.g. indeterminate grades) first")
    if set(np.unique(y)) != {0.0, 1.0}:
        raise EnsembleError(f"labels must be 0/1 with both present; got values {sorted(set(np.unique(y)))[:5]}")
    return y.astype(int)


def fit_ensemble(features: pd.DataFrame, y, blocks: dict[str, list[str]], seed: int = 0,
                 folds: int = 5) -> StackedEnsemble:
    """Fit the ensemble and each block alone on all rows."""
    _check(features, blocks)
    y = _labels(y)
    models = {name: clone(model).fit(features, y) for name, model in _models(blocks, seed, folds).items()}
    return StackedEnsemble(blocks, models)


def cross_fitted(features: pd.DataFrame, y, groups, blocks: dict[str, list[str]], seed: int = 0,
                 folds: int = 5) -> pd.DataFrame:
    """Out-of-fold probabilities for every row (``ensemble`` and each block), outer folds grouped by patient."""
    _check(features, blocks)
    y = _labels(y)
    out = pd.DataFrame(index=features.index, columns=["ensemble", *blocks], dtype=float)
    outer = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    for train, test in outer.split(features, y, np.asarray(groups)):
        fitted = fit_ensemble(features.iloc[train], y[train], blocks, seed, folds)
        out.iloc[test] = fitted.predict(features.iloc[test]).to_numpy()
    return out
