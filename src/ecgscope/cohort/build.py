"""The whole chain from a store to a training cohort: pair imaging with ECGs, add outcomes and labels, split.

The CLI's ``cohort build``, the demo's studies and the Python API (``ecgscope.build_cohort``) all build a
cohort here, so the chain exists once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ecgscope.cohort.diastolic import add_diastolic_labels
from ecgscope.cohort.labels import derive_labels
from ecgscope.cohort.link import link_imaging, load_table, nearest_ecgs, time_to_event
from ecgscope.cohort.phenogroups import Phenogroups
from ecgscope.cohort.split import patient_split


@dataclass
class Cohort:
    """A built cohort: ``table`` (one row per paired study: the ECG's row, labels, ``split``) and ``unpaired``
    (every imaging study left out, with the gap in days to its patient's nearest ECG, NaN when none)."""

    table: pd.DataFrame
    unpaired: pd.DataFrame
    days_before: float
    days_after: float

    def summary(self) -> str:
        """What was paired and what was left out, and the window that would pair the rest."""
        paired, left = len(self.table), len(self.unpaired)
        text = (f"{paired:,} of {paired + left:,} imaging studies paired with an ECG from {self.days_before:g} "
                f"days before to {self.days_after:g} days after ({self.table['patient_id'].nunique():,} patients)")
        if not left:
            return text
        gaps = self.unpaired["nearest_ecg_days"].to_numpy(float)
        far = gaps[np.isfinite(gaps)]
        parts = []
        if len(far):
            before = max(0.0, -far.min())
            after = max(0.0, far.max())
            parts.append(f"{len(far):,} have an ECG of the same patient outside the window (--days-before "
                         f"{np.ceil(before):g} --days-after {np.ceil(after):g} would pair them)")
        if len(far) < left:
            parts.append(f"{left - len(far):,} belong to patients with no ECG in the store")
        return f"{text}; {left:,} left unpaired: " + "; ".join(parts)


def build_cohort(store, imaging: pd.DataFrame | str | Path, *, outcomes: pd.DataFrame | str | Path | None = None,
                 labels: list[str] = (), diastolic: bool = False, phenogroups: Phenogroups | str | Path | None = None,
                 days_before: float = 30, days_after: float = 30, split: tuple[float, float, float] = (0.7, 0.1, 0.2),
                 stratify: str | None = None, seed: int = 0, pseudonym_key: str | Path | None = None) -> Cohort:
    """Pair each imaging study with the nearest ECG of ``store`` in the window, add follow-up from
    ``outcomes``, derive ``labels`` (``rv_dysfunction``, ``NAME=COLUMN<=VALUE``, ...), the ASE diastolic grades
    (``diastolic``) and ``phenogroups``, and split by patient into train / val / test.

    ``store`` is a :class:`~ecgscope.store.Store` or its path; the imaging and outcome tables carry the site's own
    patient ids and are mapped with the store's pseudonym key (``pseudonym_key``) first.

    >>> cohort = build_cohort("stores/ukb", "mri.csv", labels=["rv_dysfunction"])   # doctest: +SKIP
    >>> print(cohort.summary())                                                      # doctest: +SKIP
    """
    from ecgscope.store import Store

    st = store if isinstance(store, Store) else Store(store)
    studies = st.site_table(load_table(imaging), pseudonym_key)
    if "study_id" not in studies:
        studies = studies.assign(study_id=range(1, len(studies) + 1))
    table = link_imaging(st.manifest, studies, days_before=days_before, days_after=days_after)
    left = studies[~studies["study_id"].isin(table["study_id"])]
    unpaired = left.merge(nearest_ecgs(st.manifest, left), on=["study_id"], how="left",
                          suffixes=("", "_manifest")).drop(columns="patient_id_manifest", errors="ignore")
    if outcomes is not None:
        table = time_to_event(table, st.site_table(load_table(outcomes), pseudonym_key))
    table = derive_labels(table, list(labels))
    if diastolic:
        table = add_diastolic_labels(table)
    if phenogroups is not None:
        if not isinstance(phenogroups, Phenogroups):
            phenogroups = Phenogroups.from_dict(json.loads(Path(phenogroups).read_text()))
        table = table.join(phenogroups.label(table))
    table["split"] = patient_split(table, tuple(split), stratify=stratify, seed=seed)
    return Cohort(table, unpaired.reset_index(drop=True), days_before, days_after)
