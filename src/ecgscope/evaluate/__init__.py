"""Metrics with patient-level bootstrap confidence intervals (pure functions returning tables)."""

from ecgscope.evaluate.conformal import SplitConformal
from ecgscope.evaluate.metrics import auroc, bootstrap_ci, mae, paired_difference_ci, r2

__all__ = ["SplitConformal", "auroc", "bootstrap_ci", "mae", "paired_difference_ci", "r2"]
