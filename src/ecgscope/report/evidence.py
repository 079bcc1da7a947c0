"""Figures of the evidence: ROC/PR with CI bands, calibration, scatter and Bland-Altman, forest plots,
Kaplan-Meier with numbers at risk, cumulative incidence. Each draws from tables that ``evaluate`` and
``survival`` wrote and returns PNG bytes (the report embeds them); nothing here computes a statistic."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from ecgscope.report.figures import _pyplot

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def roc_pr_figure(target: str, roc: pd.DataFrame, pr: pd.DataFrame, auroc_ci: tuple[float, float, float],
                  auprc: float) -> bytes:
    """ROC curve with its bootstrap band, and the precision-recall curve against prevalence."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    left.fill_between(roc.fpr, roc.tpr_low, roc.tpr_high, alpha=0.25, color=COLORS[0], label="95 % CI")
    est, lo, hi = auroc_ci
    left.plot(roc.fpr, roc.tpr, color=COLORS[0], label=f"AUROC {est:.2f} [{lo:.2f}, {hi:.2f}]")
    left.plot([0, 1], [0, 1], ls=":", color="grey")
    left.set(title=f"ROC: {target}", xlabel="1 - specificity", ylabel="sensitivity")
    left.legend(loc="lower right", fontsize=8)
    right.fill_between(pr.recall, pr.precision_low, pr.precision_high, alpha=0.25, color=COLORS[1], label="95 % CI")
    right.plot(pr.recall, pr.precision, color=COLORS[1], label=f"AUPRC {auprc:.2f}")
    right.axhline(pr.prevalence.iloc[0], ls=":", color="grey", label=f"prevalence {pr.prevalence.iloc[0]:.2f}")
    right.set(title=f"precision-recall: {target}", xlabel="recall (sensitivity)", ylabel="precision (PPV)",
              ylim=(0, 1.02))
    right.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def calibration_figure(target: str, table: pd.DataFrame, intercept: float, slope: float) -> bytes:
    """Observed against predicted risk in quantile bins, with the ideal diagonal."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 4))
    top = max(table.predicted.max(), table.observed.max()) * 1.05
    ax.plot([0, top], [0, top], ls=":", color="grey", label="ideal")
    ax.plot(table.predicted, table.observed, "o-", color=COLORS[0],
            label=f"intercept {intercept:+.2f}, slope {slope:.2f}")
    ax.set(title=f"calibration: {target}", xlabel="predicted probability", ylabel="observed rate")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def agreement_figure(target: str, measured: np.ndarray, predicted: np.ndarray, bias: float, loa: tuple[float, float],
                     unit: str = "") -> bytes:
    """Predicted against measured, and the Bland-Altman plot (difference against mean, bias and limits)."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    left.scatter(measured, predicted, s=5, alpha=0.35, color=COLORS[0])
    lims = [np.nanmin([measured.min(), predicted.min()]), np.nanmax([measured.max(), predicted.max()])]
    left.plot(lims, lims, ls=":", color="grey")
    left.set(title=f"{target}: predicted vs measured", xlabel=f"measured {unit}", ylabel=f"predicted {unit}")
    mean, diff = (measured + predicted) / 2, predicted - measured
    right.scatter(mean, diff, s=5, alpha=0.35, color=COLORS[0])
    right.axhline(bias, color=COLORS[1], label=f"bias {bias:+.2f}")
    for value in loa:
        right.axhline(value, color=COLORS[1], ls="--")
    right.set(title=f"Bland-Altman: {target} (limits {loa[0]:.1f} to {loa[1]:.1f})",
              xlabel=f"mean of the two {unit}", ylabel=f"predicted - measured {unit}")
    right.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def forest_figure(title: str, rows: pd.DataFrame, reference: float | None = None) -> bytes:
    """Estimates with CIs, one line per subgroup level (rows: label, estimate, ci_low, ci_high, n)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    ax.errorbar(rows.estimate, y, xerr=[rows.estimate - rows.ci_low, rows.ci_high - rows.estimate], fmt="o",
                color=COLORS[0], capsize=3)
    if reference is not None:
        ax.axvline(reference, ls=":", color="grey")
    ax.set_yticks(y, [f"{label} (n={n})" for label, n in zip(rows.label, rows.n, strict=True)])
    ax.set(title=title)
    fig.tight_layout()
    return _png(fig)


def _curves_with_at_risk(curves: pd.DataFrame, value: str, at_risk: pd.DataFrame, title: str, ylabel: str,
                         legend: str, horizon: float | None = None) -> bytes:
    """Step curves per group with CI bands, and the numbers at risk in a table under the time axis."""
    plt = _pyplot()
    groups = list(dict.fromkeys(curves.group))
    fig, (ax, table_ax) = plt.subplots(2, 1, figsize=(7, 4.4 + 0.25 * len(groups)), sharex=True,
                                       gridspec_kw={"height_ratios": [4, 0.35 * len(groups) + 0.3]})
    for color, group in zip(COLORS, groups, strict=False):
        g = curves[curves.group == group]
        ax.step(g.time, g[value], where="post", color=color, label=str(group))
        ax.fill_between(g.time, g.ci_low, g.ci_high, step="post", alpha=0.15, color=color)
    if horizon is not None:
        ax.axvline(horizon, ls=":", color="grey")
    ax.set(title=title, ylabel=ylabel, xlabel="years")
    ax.tick_params(labelbottom=True)
    ax.legend(loc=legend, fontsize=8)
    table_ax.axis("off")
    for row, (color, group) in enumerate(zip(COLORS, groups, strict=False)):
        g = at_risk[at_risk.group == group]
        for _, r in g.iterrows():
            table_ax.text(r.time, -row, str(int(r.at_risk)), ha="center", va="center", fontsize=8, color=color)
        table_ax.text(ax.get_xlim()[0], -row, f"{group}  ", ha="right", va="center", fontsize=8, color=color)
    table_ax.set_ylim(-len(groups) + 0.5, 0.6)
    table_ax.set_title("numbers at risk", fontsize=8, loc="left")
    fig.tight_layout(h_pad=0.3)
    return _png(fig)


def km_figure(curves: pd.DataFrame, at_risk: pd.DataFrame, title: str) -> bytes:
    """Kaplan-Meier survival curves with CI bands and a numbers-at-risk table."""
    return _curves_with_at_risk(curves, "survival", at_risk, title, "survival", "lower left")


def cif_figure(curves: pd.DataFrame, at_risk: pd.DataFrame, title: str, horizon: float | None = None) -> bytes:
    """Cumulative incidence curves (competing risks) with CI bands and a numbers-at-risk table."""
    return _curves_with_at_risk(curves, "incidence", at_risk, title, "cumulative incidence", "upper left", horizon)


def motion_figure(points: pd.DataFrame, examples: pd.DataFrame, correlations: dict[str, float]) -> bytes:
    """Generated against true motion: scatters of e' and s' (one point per patient, identity line) and a few
    example velocity cycles, true solid and generated dashed."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, name, label in ((axes[0], "e_prime", "e'"), (axes[1], "s_prime", "s'")):
        x, y = points[f"true_{name}"], points[f"generated_{name}"]
        ax.scatter(x, y, s=6, alpha=0.4, color=COLORS[0])
        lo, hi = np.nanmin([x.min(), y.min()]), np.nanmax([x.max(), y.max()])
        ax.plot([lo, hi], [lo, hi], ls=":", color="grey")
        ax.set(title=f"{label}: r = {correlations.get(name, float('nan')):.2f}", xlabel=f"true {label} (cm/s)",
               ylabel=f"generated {label} (cm/s)")
    for i, row in enumerate(examples.itertuples()):
        t = np.linspace(0, 1, len(row.true_velocity), endpoint=False)
        color = COLORS[i % len(COLORS)]
        axes[2].plot(t, row.true_velocity, color=color, lw=1.5)
        axes[2].plot(t, row.generated_velocity, color=color, lw=1.5, ls="--")
    axes[2].axhline(0, color="grey", lw=0.5)
    axes[2].set(title="examples: true (solid) and generated (dashed)", xlabel="fraction of the R-R cycle",
                ylabel="annular velocity (cm/s)")
    fig.tight_layout()
    return _png(fig)
