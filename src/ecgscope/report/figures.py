"""Figures a person would rather look at than read: a 12-lead ECG, ROC curves, predicted vs measured."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgscope.ecg import ECG


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_ecg(ecg: ECG, path: str | Path, title: str | None = None) -> Path:
    """Save a 12-lead plot (4 rows of 3 leads on a 1 mV / 0.2 s grid) of ``ecg`` to ``path``."""
    plt = _pyplot()
    fig, axes = plt.subplots(4, 3, figsize=(12, 8), sharex=True, sharey=True)
    t = np.arange(ecg.n_samples) / ecg.fs
    for k, ax in enumerate(axes.T.ravel()):
        if k >= len(ecg.leads):
            ax.axis("off")
            continue
        ax.plot(t, ecg.signal[k], lw=0.7, color="black")
        ax.set_title(ecg.leads[k], loc="left", fontsize=9)
        ax.set_xticks(np.arange(0, t[-1] + 1e-9, 0.2), minor=True)
        ax.set_yticks(np.arange(-3, 3.01, 0.5), minor=True)
        ax.grid(which="both", color="#f4a6a6", lw=0.4)
    axes[0, 0].set_ylim(-2, 3)
    fig.supxlabel("time (s)")
    fig.supylabel("mV")
    fig.suptitle(title or f"ECG {ecg.ecg_id} ({ecg.fs:g} Hz)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_roc_and_scatter(curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]],
                         scatters: dict[str, tuple[np.ndarray, np.ndarray, str]], path: str | Path) -> Path:
    """ROC curves per phenotype (one line per model) and predicted-vs-measured scatters, in one PNG.

    ``curves[phenotype][model] = (fpr, tpr)``; ``scatters[target] = (measured, predicted, unit)``.
    """
    plt = _pyplot()
    panels = len(curves) + len(scatters)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 4.2))
    axes = np.atleast_1d(axes)
    for ax, (name, models) in zip(axes, curves.items(), strict=False):
        for model, (fpr, tpr) in models.items():
            ax.plot(fpr, tpr, label=model)
        ax.plot([0, 1], [0, 1], ls=":", color="grey")
        ax.set(title=f"ROC: {name}", xlabel="1 - specificity", ylabel="sensitivity")
        ax.legend(loc="lower right", fontsize=8)
    for ax, (name, (measured, predicted, unit)) in zip(axes[len(curves):], scatters.items(), strict=False):
        ax.scatter(measured, predicted, s=4, alpha=0.4)
        lims = [min(measured.min(), predicted.min()), max(measured.max(), predicted.max())]
        ax.plot(lims, lims, ls=":", color="grey")
        ax.set(title=f"{name}: ECG model vs MRI", xlabel=f"measured ({unit})", ylabel=f"predicted ({unit})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
