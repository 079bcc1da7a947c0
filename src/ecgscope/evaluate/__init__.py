"""Metrics with patient-level bootstrap confidence intervals (pure functions returning numbers and tables)."""

from ecgscope.evaluate.classification import (
    auprc,
    brier,
    calibration_intercept,
    calibration_slope,
    calibration_table,
    choose_threshold,
    delong_test,
    net_benefit,
    pr_band,
    predictive_values_at,
    roc_band,
    threshold_metrics,
)
from ecgscope.evaluate.conformal import SplitConformal
from ecgscope.evaluate.metrics import auroc, bootstrap_ci, bootstrap_metrics, mae, paired_difference_ci, r2
from ecgscope.evaluate.reclassification import idi, nri_categorical, nri_continuous
from ecgscope.evaluate.regression import bland_altman, concordance_correlation, pearson_r, rmse
from ecgscope.evaluate.tables import age_bands, evaluate_table, evaluate_target

__all__ = ["SplitConformal", "age_bands", "auprc", "auroc", "bland_altman", "bootstrap_ci", "bootstrap_metrics",
           "brier", "calibration_intercept", "calibration_slope", "calibration_table", "choose_threshold",
           "concordance_correlation", "delong_test", "evaluate_table", "evaluate_target", "idi", "mae",
           "net_benefit", "nri_categorical", "nri_continuous", "paired_difference_ci", "pr_band", "pearson_r",
           "predictive_values_at", "r2",
           "rmse", "roc_band", "threshold_metrics"]

from ecgscope._callable import make_callable

make_callable(__name__)  # es.evaluate(...) is ecgscope.api.evaluate
