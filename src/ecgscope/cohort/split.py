"""Patient-level splits: train / validation / test and k folds, stratified, with a leakage check."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from ecgscope.cohort.link import CohortError


class GroupedStratifiedKFold(StratifiedGroupKFold):
    """scikit-learn's ``StratifiedGroupKFold``, with its greedy choice of a fold for each patient computed for
    all folds at once: the same folds (tested equal), in a fraction of the time. Its loop over folds runs once
    per patient, so splitting thousands of patients into 20 folds took seconds, and nested cross-validation
    splits again and again."""

    def _find_best_fold(self, y_counts_per_fold, y_cnt, group_y_counts):
        k = self.n_splits
        # (candidate, fold, class): candidate i is the fold counts with this patient added to fold i. Each
        # candidate's table keeps scikit-learn's layout and is reduced along the same axis, so numpy sums it
        # in the same order and every figure, ties and last bits included, is the one scikit-learn computes
        candidates = np.repeat(y_counts_per_fold[None], k, axis=0)
        candidates[np.arange(k), np.arange(k)] += group_y_counts
        spread = np.std(candidates / y_cnt.reshape(1, 1, -1), axis=1)
        evals = spread.mean(axis=1).tolist()
        in_fold = y_counts_per_fold.sum(axis=1).tolist()
        best_fold, min_eval, min_samples_in_fold = None, np.inf, np.inf
        for i in range(k):  # scikit-learn's rule: the most even classes, ties (np.isclose) to the smaller fold
            close = (abs(evals[i] - min_eval) <= 1e-8 + 1e-5 * abs(min_eval) and min_eval != np.inf) \
                or evals[i] == min_eval
            if evals[i] < min_eval or (close and in_fold[i] < min_samples_in_fold):
                best_fold, min_eval, min_samples_in_fold = i, evals[i], in_fold[i]
        return best_fold


def check_no_leakage(table: pd.DataFrame, split_column: str = "split", patient_column: str = "patient_id") -> None:
    """Raise ``CohortError`` if any patient appears in more than one split."""
    per_patient = table.groupby(patient_column)[split_column].nunique()
    leaking = per_patient[per_patient > 1]
    if len(leaking):
        raise CohortError(f"{len(leaking)} patient(s) appear in more than one {split_column}, e.g. "
                          f"{list(leaking.index[:5])}: split by patient, not by ECG")


def patient_kfold(table: pd.DataFrame, k: int = 5, stratify: str | None = None, seed: int = 0,
                  patient_column: str = "patient_id") -> pd.Series:
    """Fold number (0..k-1) per row; every patient's rows share a fold, strata balanced across folds."""
    n_patients = table[patient_column].nunique()
    if n_patients < k:
        raise CohortError(f"{n_patients} patient(s) cannot be split {k} ways by patient; at least {k} are needed "
                          "(pair more studies, e.g. with a wider window, or add data)")
    y = table[stratify].fillna(-1).astype(int).to_numpy() if stratify else np.zeros(len(table), dtype=int)
    folds = np.empty(len(table), dtype=int)
    splitter = GroupedStratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # a class with fewer patients than folds cannot be in every fold; stratifying spreads it as far as it
        # goes, which is all it promises (patient_split asks for twentieths, so a small cohort always warned)
        warnings.filterwarnings("ignore", message="The least populated class in y", category=UserWarning)
        for fold, (_, test) in enumerate(splitter.split(np.zeros(len(table)), y, table[patient_column])):
            folds[test] = fold
    return pd.Series(folds, index=table.index, name="fold")


def patient_split(table: pd.DataFrame, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
                  stratify: str | None = None, seed: int = 0, patient_column: str = "patient_id") -> pd.Series:
    """'train' / 'val' / 'test' per row, by patient, in about the given fractions (in twentieths)."""
    if abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise CohortError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    folds = patient_kfold(table, 20, stratify, seed, patient_column)
    n_train, n_val = round(fractions[0] * 20), round(fractions[1] * 20)
    split = np.select([folds < n_train, folds < n_train + n_val], ["train", "val"], "test")
    out = pd.Series(split, index=table.index, name="split")
    check_no_leakage(pd.DataFrame({"split": out, patient_column: table[patient_column]}), "split", patient_column)
    return out


def carve_calibration(table: pd.DataFrame, fraction: float = 0.15, seed: int = 0, split_column: str = "split",
                      patient_column: str = "patient_id") -> pd.Series:
    """The split column with ``fraction`` of the training patients (drawn at random) moved to 'calibration'.

    Calibration patients take no part in fitting or choosing a model (not its weights, epoch, early stop or
    learning rate), so conformal intervals calibrated on them are exchangeable with the test patients; the
    validation patients that chose the model are not. A table that already has a 'calibration' split is
    returned unchanged.
    """
    split = table[split_column]
    if (split == "calibration").any():
        return split.copy()
    if not 0 < fraction < 1:
        raise CohortError(f"the calibration fraction must be in (0, 1), got {fraction}")
    patients = np.sort(table.loc[split == "train", patient_column].unique())
    n = int(round(fraction * len(patients)))
    if n < 1 or n >= len(patients):
        raise CohortError(f"{len(patients)} training patients are too few to set {fraction:.0%} aside for "
                          "calibration")
    chosen = np.random.default_rng(seed).permutation(patients)[:n]
    return split.mask((split == "train") & table[patient_column].isin(chosen), "calibration")
