"""What a fitted model needs to predict, without the training machinery (Lightning is not imported): the task
layout (:class:`TaskSpec`), the device, and the one batch-inference loop that prediction, embedding and motion
generation share. ``ecgscope predict``, ``embed``, ``motion generate`` and the service start faster for it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn


@dataclass
class TaskSpec:
    """The outputs a model predicts and how they are trained and decoded.

    Head layout, in order: per regression target a mean and (with ``uncertainty``) a log-variance, per
    binary target one logit, per survival target one log-risk. Regression targets are standardised with
    ``mean`` / ``std``, which travel with the model.
    """

    regression: list[str] = field(default_factory=list)
    binary: list[str] = field(default_factory=list)
    survival: list[str] = field(default_factory=list)
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    pos_weight: dict[str, float] = field(default_factory=dict)
    uncertainty: bool = True

    @property
    def names(self) -> list[str]:
        """Target names: regressions, then binary, then survival."""
        return self.regression + self.binary + self.survival

    @property
    def layout(self) -> dict[str, tuple[int, int]]:
        """Output columns of each target: name -> (first column, width)."""
        out, col = {}, 0
        for name in self.regression:
            width = 2 if self.uncertainty else 1
            out[name], col = (col, width), col + width
        for name in self.binary + self.survival:
            out[name], col = (col, 1), col + 1
        return out

    @property
    def n_outputs(self) -> int:
        """Width of the model's head."""
        return sum(width for _, width in self.layout.values())

    @property
    def n_target_columns(self) -> int:
        """Columns of an encoded target array: one per regression/binary target, two per survival target."""
        return len(self.regression) + len(self.binary) + 2 * len(self.survival)

    @classmethod
    def from_targets(cls, targets: dict[str, np.ndarray], regression: list[str], binary: list[str],
                     survival: list[str] = (), uncertainty: bool = True) -> TaskSpec:
        """Derive scaling and class weights from training targets (NaN ignored)."""
        mean = {k: float(np.nanmean(targets[k])) for k in regression}
        std = {k: float(np.nanstd(targets[k]) or 1.0) for k in regression}
        pos = {}
        for k in binary:
            p = float(np.nanmean(targets[k]))
            # capped: at 1 % prevalence an uncapped weight of ~100 makes the loss follow a few positives
            pos[k] = float(np.clip((1 - p) / max(p, 1e-3), 1.0, 10.0))
        return cls(list(regression), list(binary), list(survival), mean, std, pos, uncertainty)

    def encode(self, targets: dict[str, np.ndarray]) -> np.ndarray:
        """Targets as float32 columns: standardised regressions, binaries, then (time, event) per survival
        target (given as ``NAME_time`` and ``NAME_event``); NaN where missing."""
        cols = [(np.asarray(targets[k], float) - self.mean[k]) / self.std[k] for k in self.regression]
        cols += [np.asarray(targets[k], float) for k in self.binary]
        for k in self.survival:
            cols += [np.asarray(targets[f"{k}_time"], float), np.asarray(targets[f"{k}_event"], float)]
        return np.stack(cols, 1).astype(np.float32)

    def decode(self, outputs: np.ndarray) -> dict[str, np.ndarray]:
        """Head outputs -> values in their units (and ``NAME_std`` with uncertainty), probabilities (corrected
        for the positive-class weight of training), log-risks."""
        out, layout = {}, self.layout
        for k in self.regression:
            col, width = layout[k]
            out[k] = outputs[:, col] * self.std[k] + self.mean[k]
            if width == 2:
                out[f"{k}_std"] = np.exp(0.5 * np.clip(outputs[:, col + 1], -10, 10)) * self.std[k]
        for k in self.binary:
            # training weighted positives by w, which moves the optimal logit up by log(w); undo it so the
            # probabilities are calibrated rather than inflated (the ranking, and so AUROC, is unchanged)
            logit = outputs[:, layout[k][0]] - np.log(self.pos_weight.get(k, 1.0))
            out[k] = 1 / (1 + np.exp(-logit))
        for k in self.survival:
            out[f"{k}_log_risk"] = outputs[:, layout[k][0]]
        return out

    def to_dict(self) -> dict:
        """JSON-ready form (stored in model.json)."""
        return asdict(self)


def inference_device() -> torch.device:
    """Where prediction runs: the GPU when there is one (Lightning leaves a fitted model on the CPU)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def infer(model: nn.Module, batches: Iterable, call: Callable | None = None) -> Iterator:
    """The one batch-inference loop: ``call`` (default ``model`` itself) on each batch of signals (batch, leads,
    samples; a tensor or an array), in eval mode without gradients on the model's own device; yields each
    output (a tensor, or a tuple of them) as float32 on the CPU. Prediction, embedding and motion generation
    all run through it."""
    model.eval()
    device = next(model.parameters()).device
    call = call or model
    with torch.no_grad():
        for batch in batches:
            x = batch if isinstance(batch, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(batch))
            out = call(x.to(device))
            yield tuple(o.float().cpu() for o in out) if isinstance(out, tuple) else out.float().cpu()


def predict_batches(model: nn.Module, spec: TaskSpec, batches: Iterable[torch.Tensor]) -> dict[str, np.ndarray]:
    """Decoded predictions of ``model`` over batches of signals (batch, leads, samples), on its own device."""
    outs = [out.numpy() for out in infer(model, batches)]
    return spec.decode(np.concatenate(outs) if outs else np.empty((0, spec.n_outputs), dtype=np.float32))
