"""Attribution drawn where a reader looks: shaded behind each of the 12 leads, and on the median beat."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter1d

from ecgscope.explain.attribution import Attribution
from ecgscope.leads import STANDARD_LEADS
from ecgscope.report.figures import _pyplot
from ecgscope.signal.leadcheck import beat_centres


def _shade(attribution: Attribution, smooth_s: float = 0.04) -> np.ndarray:
    """|attribution| smoothed over ``smooth_s`` and scaled to the record's maximum (0-1)."""
    width = max(int(round(smooth_s * attribution.fs)), 1)
    shade = uniform_filter1d(np.abs(attribution.values), width, axis=1)
    return shade / shade.max() if shade.max() > 0 else shade


def plot_attribution(signal: np.ndarray, attribution: Attribution, path: str | Path, title: str = "") -> Path:
    """Save the 12 leads (rows of ``signal``, the model's input) with the attribution shaded behind each trace,
    each lead's share of the total in its title, and, where three or more beats are found, the median beat of
    each lead with the attribution averaged over the same beats."""
    plt = _pyplot()
    shade = _shade(attribution)
    share = attribution.lead_importance()
    t = np.arange(signal.shape[1]) / attribution.fs
    standard = tuple(attribution.leads) == STANDARD_LEADS
    beats = beat_centres(signal, attribution.fs) if standard else None
    has_beats = beats is not None and len(beats[1]) >= 3
    fig, axes = plt.subplots(len(attribution.leads), 2 if has_beats else 1, figsize=(14 if has_beats else 12, 14),
                             squeeze=False, gridspec_kw={"width_ratios": [4, 1]} if has_beats else None)
    for k, lead in enumerate(attribution.leads):
        ax = axes[k, 0]
        low, high = float(signal[k].min()), float(signal[k].max())
        pad = 0.1 * (high - low or 1.0)
        ax.imshow(shade[k][None], aspect="auto", cmap="Reds", vmin=0, vmax=1, alpha=0.8,
                  extent=(0, t[-1], low - pad, high + pad))
        ax.plot(t, signal[k], lw=0.6, color="black")
        ax.set_ylabel(f"{lead}\n{share[lead]:.0%}", rotation=0, ha="right", va="center", fontsize=8)
        ax.set_yticks([])
        if k < len(attribution.leads) - 1:
            ax.set_xticks([])
        if has_beats:
            x, centres, before, after = beats
            beat = np.median(np.stack([x[k, c - before:c + after] for c in centres]), axis=0)
            weight = np.mean(np.stack([shade[k, c - before:c + after] for c in centres]), axis=0)
            bt = (np.arange(beat.size) - before) / attribution.fs * 1000
            axes[k, 1].scatter(bt, beat, c=weight, cmap="Reds", vmin=0, vmax=1, s=4)
            axes[k, 1].plot(bt, beat, lw=0.5, color="black")
            axes[k, 1].set_yticks([])
            if k < len(attribution.leads) - 1:
                axes[k, 1].set_xticks([])
    axes[-1, 0].set_xlabel("s")
    if has_beats:
        axes[-1, 1].set_xlabel("ms from QRS (median beat)")
    fig.suptitle(title or f"{attribution.target}: {attribution.method.replace('_', ' ')} (share of |attribution| "
                          "per lead; darker = more)", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
