"""Does a new model move patients to better risk categories than an old one? NRI and IDI.

Both take the predicted probabilities of the two models for the same patients. NRI counts moves in the
right direction among events (up) and non-events (down); the categorical form uses risk cut-offs, the
continuous form any change. IDI is the gain in discrimination slope (mean risk of events minus non-events).
"""

from __future__ import annotations

import numpy as np


def _nri(y: np.ndarray, up: np.ndarray, down: np.ndarray) -> dict[str, float]:
    events, nonevents = y, ~y
    nri_events = float(up[events].mean() - down[events].mean())
    nri_nonevents = float(down[nonevents].mean() - up[nonevents].mean())
    return {"nri": nri_events + nri_nonevents, "nri_events": nri_events, "nri_nonevents": nri_nonevents}


def nri_categorical(y_true: np.ndarray, prob_old: np.ndarray, prob_new: np.ndarray,
                    cutoffs: list[float]) -> dict[str, float]:
    """Categorical net reclassification improvement over risk categories split at ``cutoffs``."""
    y = np.asarray(y_true).astype(bool)
    old, new = np.digitize(prob_old, cutoffs), np.digitize(prob_new, cutoffs)
    return _nri(y, new > old, new < old)


def nri_continuous(y_true: np.ndarray, prob_old: np.ndarray, prob_new: np.ndarray) -> dict[str, float]:
    """Continuous (category-free) NRI: any rise in risk counts as up, any fall as down."""
    y = np.asarray(y_true).astype(bool)
    prob_old, prob_new = np.asarray(prob_old, float), np.asarray(prob_new, float)
    return _nri(y, prob_new > prob_old, prob_new < prob_old)


def idi(y_true: np.ndarray, prob_old: np.ndarray, prob_new: np.ndarray) -> float:
    """Integrated discrimination improvement: new minus old discrimination slope."""
    y = np.asarray(y_true).astype(bool)
    prob_old, prob_new = np.asarray(prob_old, float), np.asarray(prob_new, float)
    return float((prob_new[y].mean() - prob_new[~y].mean()) - (prob_old[y].mean() - prob_old[~y].mean()))
