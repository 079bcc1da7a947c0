"""Stacking over blocks of features (foundation embeddings, motion features, covariates), all scikit-learn.

Each block gets its own base learner (median imputation, z-scores, L2 logistic regression with its penalty
chosen by inner cross-validation); a logistic meta-learner combines the base learners' out-of-fold logits
(``StackingClassifier`` with ``stack_method="predict_proba"``), which also calibrates the result: the
meta-learner is fitted on predictions its base learners made without seeing those rows.

``cross_fitted`` gives every row of the development cohort a prediction from models that never saw that
row's patient (outer folds grouped by patient), for the ensemble and for each block alone, so the parts and the
whole are compared on equal terms. Given patient ids, every inner split (the base learners' penalty search and
the out-of-fold predictions the meta-learner is fitted on) is grouped by patient too: the ids ride along as a
column (``PATIENT_COLUMN``) that no learner reads and :class:`PatientFolds` splits on.

Only the stacking is cross-fitted here: features made by a model fitted on the same patients (a motion
generator trained on the development cohort's echoes) leave the development figure apparent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import StackingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from ecgscope.cohort.split import GroupedStratifiedKFold
from ecgscope.errors import EcgscopeError

#: The L2 penalties each base learner chooses from (inverse strength C).
C_GRID = np.logspace(-4, 1, 6)
#: The feature column that carries patient ids to the inner splits; no learner reads it.
PATIENT_COLUMN = "__patient_id"


class PatientFolds:
    """Stratified k folds grouped by the patient ids in ``PATIENT_COLUMN`` of the features (plain stratified
    folds when the column is absent), so nested cross-validation inside scikit-learn stays grouped."""

    def __init__(self, n_splits: int = 5, seed: int = 0):
        self.n_splits, self.seed = n_splits, seed

    def split(self, X, y, groups=None):
        """Yield (train, test) row indices."""
        if isinstance(X, pd.DataFrame) and PATIENT_COLUMN in X.columns:
            folds = GroupedStratifiedKFold(self.n_splits, shuffle=True, random_state=self.seed)
            yield from folds.split(X, y, X[PATIENT_COLUMN].to_numpy())
        else:
            yield from StratifiedKFold(self.n_splits, shuffle=True, random_state=self.seed).split(X, y)

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """The number of folds."""
        return self.n_splits


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class EnsembleError(EcgscopeError, ValueError):
    """Features or labels that cannot be stacked."""


def _without_patients(features: pd.DataFrame) -> np.ndarray:
    """The features a learner reads: everything but the patient-id column the inner splits group by."""
    return features.drop(columns=PATIENT_COLUMN).to_numpy(dtype=float)


def block_learner(columns: list[str], seed: int = 0, inner_folds: int = 3) -> Pipeline:
    """A base learner on ``columns`` only: impute, standardise, then an L2 logistic regression whose penalty
    is tuned by inner CV grouped by patient (the patient-id column rides through the scaling untouched, so the
    inner folds can see it; the regression never does)."""
    scale = ColumnTransformer([("block", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                                                       StandardScaler()), list(columns)),
                               ("patients", "passthrough", [PATIENT_COLUMN])],
                              verbose_feature_names_out=False).set_output(transform="pandas")
    logistic = make_pipeline(FunctionTransformer(_without_patients),
                             LogisticRegression(max_iter=3000, random_state=seed))
    search = GridSearchCV(logistic, {"logisticregression__C": C_GRID}, cv=PatientFolds(inner_folds, seed),
                          scoring="neg_log_loss")
    return make_pipeline(scale, search)


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
        cv=PatientFolds(folds, seed), passthrough=False)


@dataclass
class StackedEnsemble:
    """Fitted models: the ensemble and each block alone, with the blocks they read."""

    blocks: dict[str, list[str]]
    models: dict[str, object]

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Probabilities: ``ensemble`` and one column per block."""
        _check(features, self.blocks)
        features = with_patients(features, None)
        return pd.DataFrame({name: model.predict_proba(features)[:, 1] for name, model in self.models.items()},
                            index=features.index)

    @property
    def weights(self) -> dict[str, float]:
        """The meta-learner's coefficient on each block's probability (how much each part is used)."""
        meta = self.models["ensemble"].final_estimator_[-1]
        return dict(zip(self.blocks, meta.coef_.ravel().tolist(), strict=True))


def with_patients(features: pd.DataFrame, groups) -> pd.DataFrame:
    """``features`` with the patient-id column the inner splits group by (row numbers when ``groups`` is None:
    every row its own patient, which is also what prediction needs)."""
    ids = np.arange(len(features)) if groups is None else np.asarray(groups).astype(str)
    return features.assign(**{PATIENT_COLUMN: ids})


def _check(features: pd.DataFrame, blocks: dict[str, list[str]]) -> None:
    missing = sorted({c for cols in blocks.values() for c in cols} - set(features.columns))
    if missing:
        raise EnsembleError(f"the feature table lacks {len(missing)} column(s), e.g. {missing[:3]}")


def _labels(y) -> np.ndarray:
    y = np.asarray(y, float)
    if np.isnan(y).any():
        raise EnsembleError("labels must not be missing; drop unlabeled rows (e.g. indeterminate grades) first")
    if set(np.unique(y)) != {0.0, 1.0}:
        raise EnsembleError(f"labels must be 0/1 with both present; got values {sorted(set(np.unique(y)))[:5]}")
    return y.astype(int)


def fit_ensemble(features: pd.DataFrame, y, blocks: dict[str, list[str]], seed: int = 0,
                 folds: int = 5, groups=None) -> StackedEnsemble:
    """Fit the ensemble and each block alone on all rows; ``groups`` (patient ids) keeps every inner split
    grouped by patient."""
    _check(features, blocks)
    y = _labels(y)
    features = with_patients(features, groups)
    ensemble = stacking_model(blocks, seed, folds).fit(features, y)
    # the stack fits each block's learner on all rows, as fitting the block alone would: each part is that fit
    return StackedEnsemble(blocks, {"ensemble": ensemble, **dict(zip(blocks, ensemble.estimators_, strict=True))})


def cross_fitted(features: pd.DataFrame, y, groups, blocks: dict[str, list[str]], seed: int = 0,
                 folds: int = 5) -> pd.DataFrame:
    """Out-of-fold probabilities for every row (``ensemble`` and each block), outer folds grouped by patient."""
    _check(features, blocks)
    y = _labels(y)
    out = pd.DataFrame(index=features.index, columns=["ensemble", *blocks], dtype=float)
    outer = GroupedStratifiedKFold(folds, shuffle=True, random_state=seed)
    groups = np.asarray(groups)
    for train, test in outer.split(features, y, groups):
        fitted = fit_ensemble(features.iloc[train], y[train], blocks, seed, folds, groups=groups[train])
        out.iloc[test] = fitted.predict(features.iloc[test]).to_numpy()
    return out
