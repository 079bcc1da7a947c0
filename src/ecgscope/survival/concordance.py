"""Discrimination for time-to-event outcomes, with one sign convention: every function takes a *risk*.

Higher risk means an earlier event (a predicted RVEF is a risk after a minus sign: pass ``-rvef``). The two
libraries underneath disagree: lifelines' ``concordance_index`` wants predicted *times* and scikit-survival's
functions want *risk*; swapping them silently gives 1 - C. Here that translation happens once, so a perfect
risk score gives 1, a reversed one 0 and noise 0.5.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lifelines.utils import concordance_index
from sksurv.metrics import concordance_index_ipcw, cumulative_dynamic_auc
from sksurv.util import Surv


def harrell_c(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's concordance of ``risk`` with observed event order (censored pairs counted where usable)."""
    return float(concordance_index(np.asarray(time, float), -np.asarray(risk, float), np.asarray(event).astype(bool)))


def _surv(time: np.ndarray, event: np.ndarray):
    return Surv.from_arrays(event=np.asarray(event).astype(bool), time=np.asarray(time, float))


def uno_c(time: np.ndarray, event: np.ndarray, risk: np.ndarray, tau: float | None = None) -> float:
    """Uno's inverse-probability-of-censoring weighted concordance up to ``tau`` (less biased by censoring)."""
    y = _surv(time, event)
    return float(concordance_index_ipcw(y, y, np.asarray(risk, float), tau=tau)[0])


def time_dependent_auc(time: np.ndarray, event: np.ndarray, risk: np.ndarray, horizons: list[float]) -> pd.DataFrame:
    """Cumulative/dynamic AUC at each horizon: events by t against patients still event-free at t."""
    y = _surv(time, event)
    follow = np.asarray(time, float)
    usable = [h for h in horizons if follow.min() <= h < follow[np.asarray(event).astype(bool)].max()]
    if not usable:
        return pd.DataFrame(columns=["horizon", "auc"])
    auc, _ = cumulative_dynamic_auc(y, y, np.asarray(risk, float), usable)
    return pd.DataFrame({"horizon": usable, "auc": auc})
