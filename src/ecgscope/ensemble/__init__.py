"""Ensembles: cross-fitted, calibrated stacking over foundation embeddings, motion features and covariates."""

from ecgscope.ensemble.blocks import join_blocks
from ecgscope.ensemble.stacking import (
    EnsembleError,
    StackedEnsemble,
    block_learner,
    cross_fitted,
    fit_ensemble,
    stacking_model,
)

__all__ = ["EnsembleError", "StackedEnsemble", "block_learner", "cross_fitted", "fit_ensemble", "join_blocks",
           "stacking_model"]
