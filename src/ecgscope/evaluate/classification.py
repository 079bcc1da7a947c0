"""Binary classification: discrimination, operating points, calibration, DeLong's test, decision curves.

Scores are probabilities where calibration or net benefit is asked for, and any monotone score elsewhere.
Point metrics are scikit-learn's; DeLong's test and the calibration intercept are written here because no
well-kept Python library provides them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

from ecgscope.evaluate.metrics import PatientResampler, auroc


def auprc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision (scikit-learn's definition: the sum over
    distinct thresholds of precision times the recall gained); NaN with one class only."""
    y = np.asarray(y_true).astype(bool)
    if y.all() or not y.any():
        return float("nan")
    order = np.argsort(-np.asarray(score, float), kind="mergesort")
    ranked, hits = np.asarray(score, float)[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # one point per distinct threshold
    tp = np.cumsum(hits)[last_of_tie]
    precision, recall = tp / (last_of_tie + 1), tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def brier(y_true: np.ndarray, prob: np.ndarray) -> float:
    """Mean squared error of predicted probabilities (scikit-learn's ``brier_score_loss``, without its
    input checks, which cost more than the sum inside a bootstrap)."""
    return float(np.mean((np.clip(np.asarray(prob, float), 0, 1) - np.asarray(y_true, float)) ** 2))


def choose_threshold(y_true: np.ndarray, score: np.ndarray, rule: str = "youden") -> float:
    """The score threshold of a named operating point: ``youden`` (max sensitivity + specificity - 1),
    ``sensitivity:0.9`` / ``specificity:0.9`` (the first threshold reaching it), or ``threshold:0.5``."""
    kind, _, value = rule.partition(":")
    if kind == "threshold":
        return float(value)
    fpr, tpr, thresholds = roc_curve(np.asarray(y_true).astype(int), score)
    thresholds = np.minimum(thresholds, np.nextafter(np.inf, 0))  # sklearn's first threshold is +inf
    if kind == "youden":
        return float(thresholds[np.argmax(tpr - fpr)])
    if kind == "sensitivity":
        return float(thresholds[np.argmax(tpr >= float(value))])
    if kind == "specificity":
        ok = np.flatnonzero(1 - fpr >= float(value))
        return float(thresholds[ok[-1]])
    raise ValueError(f"unknown operating point {rule!r}: use youden, sensitivity:X, specificity:X or threshold:X")


def choose_thresholds(y_true: dict[str, np.ndarray], score: dict[str, np.ndarray], targets: list[str],
                      rule: str = "youden") -> dict[str, float]:
    """Each target's threshold by ``rule`` (see :func:`choose_threshold`), over its rows with both values;
    targets whose rows hold one class only are left out."""
    out = {}
    for target in targets:
        y, s = np.asarray(y_true[target], float), np.asarray(score[target], float)
        seen = np.isfinite(y) & np.isfinite(s)
        if 0 < y[seen].sum() < seen.sum():
            out[target] = choose_threshold(y[seen], s[seen], rule)
    return out


def threshold_metrics(y_true: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    """Sensitivity, specificity, PPV and NPV of ``score >= threshold`` (NaN where a denominator is 0)."""
    y, positive = np.asarray(y_true).astype(bool), np.asarray(score) >= threshold
    tp, fp = np.sum(positive & y), np.sum(positive & ~y)
    fn, tn = np.sum(~positive & y), np.sum(~positive & ~y)

    def ratio(a: int, b: int) -> float:
        return float(a / b) if b else float("nan")

    return {"sensitivity": ratio(tp, tp + fn), "specificity": ratio(tn, tn + fp),
            "ppv": ratio(tp, tp + fp), "npv": ratio(tn, tn + fn)}


def predictive_values_at(sensitivity: float, specificity: float, prevalence: float) -> dict[str, float]:
    """PPV and NPV a test of this sensitivity and specificity would have where the condition has
    ``prevalence`` (Bayes' rule: the evaluated set's own case mix no longer decides them)."""
    true_pos, false_pos = sensitivity * prevalence, (1 - specificity) * (1 - prevalence)
    true_neg, false_neg = specificity * (1 - prevalence), (1 - sensitivity) * prevalence
    ppv = true_pos / (true_pos + false_pos) if true_pos + false_pos > 0 else float("nan")
    npv = true_neg / (true_neg + false_neg) if true_neg + false_neg > 0 else float("nan")
    return {"ppv": float(ppv), "npv": float(npv)}


def _logit(prob: np.ndarray) -> np.ndarray:
    return special.logit(np.clip(np.asarray(prob, float), 1e-6, 1 - 1e-6))


def calibration_intercept(y_true: np.ndarray, prob: np.ndarray) -> float:
    """Calibration-in-the-large: the intercept of a logistic model with logit(prob) as offset (0 is ideal)."""
    y, offset = np.asarray(y_true, float), _logit(prob)
    return float(optimize.brentq(lambda a: np.sum(y - special.expit(a + offset)), -20, 20))


def calibration_slope(y_true: np.ndarray, prob: np.ndarray) -> float:
    """Slope of y on logit(prob) in an unpenalised logistic model (1 is ideal; < 1 means too extreme).

    Fitted by Newton-Raphson on the two parameters (the same fit as scikit-learn's unpenalised
    ``LogisticRegression``, tested equal, at a tenth of its cost inside a bootstrap); NaN if it diverges
    (separable data).
    """
    y, design = np.asarray(y_true, float), np.column_stack([np.ones(len(prob)), _logit(prob)])
    beta = np.array([0.0, 1.0])  # start at perfect calibration
    for _ in range(50):
        mu = special.expit(design @ beta)
        hessian = design.T @ (design * (mu * (1 - mu))[:, None])
        try:
            step = np.linalg.solve(hessian, design.T @ (y - mu))
        except np.linalg.LinAlgError:  # singular: the outcome is separated by the score
            return float("nan")
        if not np.all(np.isfinite(step)) or np.max(np.abs(beta)) > 1e3:
            return float("nan")
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            return float(beta[1])
    return float("nan")


def calibration_table(y_true: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Observed event rate against mean predicted probability in quantile bins (a calibration curve)."""
    observed, predicted = calibration_curve(np.asarray(y_true).astype(int), prob, n_bins=n_bins, strategy="quantile")
    return pd.DataFrame({"predicted": predicted, "observed": observed})


def _midrank_components(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components: per positive, the share of negatives it outranks, and per negative,
    the share of positives that outrank it (ties count one half)."""
    pos, neg = score[y], score[~y]
    m, n = len(pos), len(neg)
    rank_all = stats.rankdata(np.concatenate([pos, neg]))
    v10 = (rank_all[:m] - stats.rankdata(pos)) / n
    v01 = 1 - (rank_all[m:] - stats.rankdata(neg)) / m
    return v10, v01


def delong_test(y_true: np.ndarray, score_a: np.ndarray, score_b: np.ndarray,
                groups: np.ndarray | None = None) -> dict[str, float]:
    """DeLong's test for two correlated AUROCs on the same patients.

    ``groups`` (patient ids) makes it per patient when a patient has several ECGs: the structural components
    are summed within each patient and their covariance taken over patients (Obuchowski's clustered form,
    which is DeLong's when every patient has one row). Without ``groups`` every row must be its own patient.
    Returns both AUROCs, their difference (a - b) with its standard error and 95 % CI, z and the two-sided p.
    """
    y = np.asarray(y_true).astype(bool)
    if y.all() or not y.any():
        raise ValueError("DeLong's test needs both classes")
    _, cluster = np.unique(np.arange(len(y)) if groups is None else np.asarray(groups), return_inverse=True)
    comps = [_midrank_components(y, np.asarray(s, float)) for s in (score_a, score_b)]
    auc = np.array([c[0].mean() for c in comps])
    n_clusters = cluster.max() + 1

    def centred(components: list[np.ndarray], members: np.ndarray) -> tuple[np.ndarray, int]:
        """Per patient: summed components minus (its count x AUROC), for both scores; patients counted."""
        counts = np.bincount(cluster[members], minlength=n_clusters)
        sums = np.stack([np.bincount(cluster[members], c, n_clusters) for c in components])
        return sums - counts * auc[:, None], int(np.sum(counts > 0))

    m, n = int(y.sum()), int((~y).sum())
    d10, k10 = centred([c[0] for c in comps], y)
    d01, k01 = centred([c[1] for c in comps], ~y)
    if min(k10, k01) < 2:
        raise ValueError("DeLong's test needs at least two patients with each outcome")
    s10 = k10 / ((k10 - 1) * m) * d10 @ d10.T
    s01 = k01 / ((k01 - 1) * n) * d01 @ d01.T
    s11 = n_clusters / (n_clusters - 1) * d10 @ d01.T
    cov = s10 / m + s01 / n + (s11 + s11.T) / (m * n)
    diff = auc[0] - auc[1]
    se = float(np.sqrt(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0)))
    z = diff / se if se > 0 else 0.0
    return {"auroc_a": float(auc[0]), "auroc_b": float(auc[1]), "difference": float(diff), "se": se,
            "ci_low": float(diff - 1.959964 * se), "ci_high": float(diff + 1.959964 * se), "z": float(z),
            "p": float(2 * stats.norm.sf(abs(z))) if se > 0 else 1.0, "patients": int(n_clusters)}


def net_benefit(y_true: np.ndarray, prob: np.ndarray, thresholds: np.ndarray | None = None) -> pd.DataFrame:
    """Decision curve: net benefit of treating when ``prob >= t``, of treating all and of treating none."""
    y = np.asarray(y_true).astype(bool)
    prob = np.asarray(prob, float)
    thresholds = np.linspace(0.01, 0.5, 50) if thresholds is None else np.asarray(thresholds, float)
    n, prevalence = len(y), y.mean()
    rows = []
    for t in thresholds:
        treat = prob >= t
        odds = t / (1 - t)
        model = np.sum(treat & y) / n - np.sum(treat & ~y) / n * odds
        rows.append((t, model, prevalence - (1 - prevalence) * odds, 0.0))
    return pd.DataFrame(rows, columns=["threshold", "model", "treat_all", "treat_none"])


def _banded(curve, y: np.ndarray, score: np.ndarray, groups: np.ndarray | None, n_boot: int,
            seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A curve (``curve(y, score)`` on a fixed grid) and its patient-bootstrap 95 % band (low, high)."""
    resampler = PatientResampler.of(len(y), groups)
    rng = np.random.default_rng(seed)
    curves = []
    for _ in range(n_boot):
        pick = resampler.draw(rng)
        if 0 < y[pick].sum() < len(pick):
            curves.append(curve(y[pick], score[pick]))
    point = curve(y, score)
    if not curves:
        return point, np.full_like(point, np.nan), np.full_like(point, np.nan)
    low, high = np.quantile(curves, [0.025, 0.975], axis=0)
    return point, low, high


def roc_band(y_true: np.ndarray, score: np.ndarray, groups: np.ndarray | None = None, n_boot: int = 200,
             seed: int = 0, grid: np.ndarray | None = None) -> pd.DataFrame:
    """ROC curve on a false-positive-rate grid with a patient-bootstrap 95 % band for the true-positive rate."""
    y, score = np.asarray(y_true).astype(bool), np.asarray(score, float)
    grid = np.linspace(0, 1, 101) if grid is None else grid

    def curve(yy: np.ndarray, ss: np.ndarray) -> np.ndarray:
        fpr, tpr, _ = roc_curve(yy, ss)
        return np.interp(grid, fpr, tpr)

    tpr, low, high = _banded(curve, y, score, groups, n_boot, seed)
    return pd.DataFrame({"fpr": grid, "tpr": tpr, "tpr_low": low, "tpr_high": high, "auroc": auroc(y, score)})


def pr_band(y_true: np.ndarray, score: np.ndarray, groups: np.ndarray | None = None, n_boot: int = 200,
            seed: int = 0, grid: np.ndarray | None = None) -> pd.DataFrame:
    """Precision-recall curve on a recall grid (interpolated precision: the best precision at that recall or
    more) with a patient-bootstrap 95 % band, and the prevalence (the curve of a useless model)."""
    y, score = np.asarray(y_true).astype(bool), np.asarray(score, float)
    grid = np.linspace(0, 1, 101) if grid is None else grid

    def curve(yy: np.ndarray, ss: np.ndarray) -> np.ndarray:
        precision, recall, _ = precision_recall_curve(yy, ss)
        # scikit-learn orders recall from 1 down to 0, so the best precision at this recall or more is the
        # running maximum from the start
        best = np.maximum.accumulate(precision)
        return np.interp(grid, recall[::-1], best[::-1])

    precision, low, high = _banded(curve, y, score, groups, n_boot, seed)
    return pd.DataFrame({"recall": grid, "precision": precision, "precision_low": low, "precision_high": high,
                         "prevalence": y.mean()})
