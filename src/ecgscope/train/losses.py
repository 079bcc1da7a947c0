"""Losses for ragged multi-task imaging cohorts: every one ignores targets that are missing (NaN)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_nll(mean: torch.Tensor, log_var: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """Gaussian negative log-likelihood (mean and variance per prediction); None when all are missing."""
    mask = ~torch.isnan(target)
    if not mask.any():
        return None
    var = torch.exp(log_var[mask].clamp(-10.0, 10.0))
    return F.gaussian_nll_loss(mean[mask], target[mask], var, eps=1e-6)


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """Mean squared error over the targets that are present."""
    mask = ~torch.isnan(target)
    return F.mse_loss(pred[mask], target[mask]) if mask.any() else None


def masked_bce(logit: torch.Tensor, target: torch.Tensor, pos_weight: float = 1.0) -> torch.Tensor | None:
    """Binary cross-entropy with a positive-class weight, over the targets that are present."""
    mask = ~torch.isnan(target)
    if not mask.any():
        return None
    weight = torch.tensor(pos_weight, device=logit.device, dtype=logit.dtype)
    return F.binary_cross_entropy_with_logits(logit[mask], target[mask], pos_weight=weight)


def cox_partial_likelihood(log_risk: torch.Tensor, time: torch.Tensor, event: torch.Tensor) -> torch.Tensor | None:
    """Negative Cox partial log-likelihood (Breslow ties) per event, within the batch.

    ``log_risk`` is the predicted log hazard ratio: higher means earlier events. Rows with a missing time
    or event are ignored; a batch without events gives None.
    """
    mask = ~(torch.isnan(time) | torch.isnan(event))
    log_risk, time, event = log_risk[mask], time[mask], event[mask]
    if event.sum() == 0:
        return None
    order = torch.argsort(time, descending=True)
    log_risk, time, event = log_risk[order], time[order], event[order]
    log_risk_set = torch.logcumsumexp(log_risk, dim=0)  # everyone still at risk at each time (sorted desc)
    # Breslow: tied times share the largest risk set, i.e. the value at the last row of the tie
    _, counts = torch.unique_consecutive(time, return_counts=True)
    last_of_tie = torch.cumsum(counts, 0) - 1
    log_risk_set = torch.repeat_interleave(log_risk_set[last_of_tie], counts)
    return -((log_risk - log_risk_set) * event).sum() / event.sum()
