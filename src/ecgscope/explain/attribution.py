"""Attributions of one head output to the input samples, and the randomisation check that they depend on the
learnt weights at all.

The explained quantity is the raw head output of the target (``TaskSpec.layout``): a regression target's
standardised mean, a binary target's logit, a survival target's log-risk. Integrated gradients integrate the
gradient along the straight path from a baseline (zeros: a flat ECG, the isoelectric line) to the input;
their sum equals the output difference (completeness, checked by Captum's convergence delta). Occlusion
replaces one lead's window at a time by the baseline and records how the output moves.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from torch import nn

from ecgscope.errors import EcgscopeError

METHODS = ("integrated_gradients", "occlusion")


class ExplainError(EcgscopeError, ValueError):
    """A target or method an explanation cannot be made for."""


@dataclass
class Attribution:
    """Attribution of one target's head output to each sample of each lead of one ECG."""

    values: np.ndarray  # (leads, samples)
    leads: tuple[str, ...]
    fs: float
    target: str
    method: str
    output: float  # the head output explained
    delta: float = float("nan")  # integrated gradients: sum of attributions minus the output difference

    def lead_importance(self) -> pd.Series:
        """Each lead's share of the total absolute attribution (sums to 1)."""
        total = np.abs(self.values).sum()
        share = np.abs(self.values).sum(axis=1) / total if total > 0 else np.zeros(len(self.leads))
        return pd.Series(share, index=list(self.leads), name=f"{self.target} ({self.method})")

    def segment_importance(self, seconds: float = 0.5) -> pd.DataFrame:
        """Share of the total absolute attribution in each lead x time window of ``seconds``."""
        width = max(int(round(seconds * self.fs)), 1)
        n = self.values.shape[1] // width
        blocks = np.abs(self.values[:, : n * width]).reshape(len(self.leads), n, width).sum(axis=2)
        total = blocks.sum()
        starts = [f"{k * width / self.fs:.2f}" for k in range(n)]
        return pd.DataFrame(blocks / total if total > 0 else blocks, index=list(self.leads), columns=starts)


def head_column(spec, target: str) -> int:
    """The output column that carries ``target`` (mean, logit or log-risk)."""
    if target not in spec.layout:
        raise ExplainError(f"the model has no target {target!r}; it predicts {', '.join(spec.layout)}")
    return spec.layout[target][0]


def _one_output(model: nn.Module, column: int):
    def forward(x: torch.Tensor) -> torch.Tensor:
        return model(x)[:, column]
    return forward


def _on_model(model: nn.Module, x: np.ndarray) -> torch.Tensor:
    """One input (leads, samples) as a batch of one on the model's device."""
    return torch.as_tensor(x, dtype=torch.float32, device=next(model.parameters()).device)[None]


def integrated_gradients(model: nn.Module, x: np.ndarray, column: int, steps: int = 64,
                         baseline: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Integrated gradients of output ``column`` for one input (leads, samples); returns (attributions, delta)."""
    from captum.attr import IntegratedGradients

    inputs = _on_model(model, x)
    base = torch.zeros_like(inputs) if baseline is None else _on_model(model, baseline)
    method = IntegratedGradients(_one_output(model, column))
    values, delta = method.attribute(inputs, baselines=base, n_steps=steps, internal_batch_size=steps,
                                     return_convergence_delta=True)
    return values[0].detach().cpu().numpy(), float(delta.abs().max())


def occlusion(model: nn.Module, x: np.ndarray, column: int, window: int) -> np.ndarray:
    """Output change when each lead's window of ``window`` samples is set to zero, spread over its samples."""
    from captum.attr import Occlusion

    inputs = _on_model(model, x)
    values = Occlusion(_one_output(model, column)).attribute(inputs, sliding_window_shapes=(1, window),
                                                           strides=(1, window), baselines=0.0)
    return values[0].detach().cpu().numpy()


def attribute(model: nn.Module, spec, x: np.ndarray, target: str, leads: tuple[str, ...], fs: float,
              method: str = "integrated_gradients", window_s: float = 0.25, steps: int = 64) -> Attribution:
    """Explain ``target`` for one model input ``x`` (leads, samples) with ``method``."""
    if method not in METHODS:
        raise ExplainError(f"method must be one of {METHODS}, not {method!r}")
    column = head_column(spec, target)
    model = model.eval()
    with torch.no_grad():
        output = float(model(_on_model(model, x))[0, column])
    if method == "integrated_gradients":
        values, delta = integrated_gradients(model, x, column, steps=steps)
        return Attribution(values, tuple(leads), fs, target, method, output, delta)
    values = occlusion(model, x, column, max(int(round(window_s * fs)), 1))
    return Attribution(values, tuple(leads), fs, target, method, output)


def _randomised_layers(model: nn.Module) -> list[list[str]]:
    """Modules that hold parameters directly, grouped by the block they sit in (a block's convolutions and
    normalisations are one step), from the output back to the input."""
    steps: dict[str, list[str]] = {}
    for name, module in model.named_modules():
        if any(True for _ in module.parameters(recurse=False)):
            steps.setdefault(name.rpartition(".")[0] or name, []).append(name)
    return list(steps.values())[::-1]


def randomisation_check(model: nn.Module, spec, x: np.ndarray, target: str, leads: tuple[str, ...], fs: float,
                        method: str = "integrated_gradients", seed: int = 0) -> pd.DataFrame:
    """Cascading model-parameter randomisation (Adebayo et al. 2018): re-draw the weights of one block after
    another, from the head towards the input, and after each step compare the attribution with the trained
    model's by Spearman rank correlation of absolute values (all samples) and of lead importance. Attributions
    that stay the same whatever the weights explain the input, not the model."""
    reference = attribute(model, spec, x, target, leads, fs, method)
    randomised = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for k, names in enumerate(_randomised_layers(randomised), start=1):
        with torch.no_grad():
            for parameter in (p for name in names for p in randomised.get_submodule(name).parameters(recurse=False)):
                scale = float(parameter.detach().std()) if parameter.numel() > 1 else 1.0
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * (scale or 0.1))
        after = attribute(randomised, spec, x, target, leads, fs, method)
        rows.append({"steps_randomised": k, "block": names[0].rpartition(".")[0] or names[0],
                     "rank_correlation": float(spearmanr(np.abs(reference.values).ravel(),
                                                         np.abs(after.values).ravel()).statistic),
                     "lead_rank_correlation": float(spearmanr(reference.lead_importance(),
                                                              after.lead_importance()).statistic)})
    return pd.DataFrame(rows)
