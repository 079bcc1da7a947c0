"""Data-driven diastolic phenogroups: clusters of standardised echo features, the high-risk one named by outcomes.

The study B lineage (REFERENCE.md section 1): patients grouped by about nine echo measurements of LV structure
and function, the groups then ranked by how often their members died. Here: median imputation, z-scores and
k-means (scikit-learn, fixed seed, many restarts) on the development cohort; groups are numbered by their
crude heart-failure death rate (events per 100 person-years), lowest first, so the highest number is the
high-risk phenogroup. A fitted ``Phenogroups`` is plain numbers (``to_dict`` / ``from_dict``), so an
external cohort is assigned with the development cohort's scaling and centres, never re-clustered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans

from ecgscope.cohort.link import CohortError

#: LV structure and diastolic function measurements clustered by default.
ECHO_FEATURES = ("lvef", "septal_e_prime", "lateral_e_prime", "e_over_a", "e_over_e_prime", "lavi",
                 "tr_velocity", "lv_wall_thickness_mm", "s_prime")


@dataclass
class Phenogroups:
    """A fitted clustering: features, imputation medians, z-score scaling and centres ordered by risk."""

    features: list[str]
    median: list[float]
    mean: list[float]
    scale: list[float]
    centres: list[list[float]]
    #: crude event rate per 100 person-years of each group on the development cohort (NaN without outcomes)
    rates: list[float]
    ranked_by: str

    @classmethod
    def fit(cls, echo: pd.DataFrame, time: np.ndarray | None = None, event: np.ndarray | None = None,
            k: int = 2, features: tuple[str, ...] = ECHO_FEATURES, seed: int = 0) -> Phenogroups:
        """Cluster ``echo`` into ``k`` groups and rank them by the event rate (``event`` > 0 counts; pass HF
        death as 1); without outcomes, by the mean z-score of E/e' and LAVI minus e' (worse diastolic profile)."""
        missing = [f for f in features if f not in echo.columns]
        if missing:
            raise CohortError(f"phenogroups need echo column(s) {missing}; the table has {list(echo.columns)}")
        x = echo[list(features)].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        median = np.nanmedian(x, 0)
        x = np.where(np.isnan(x), median, x)
        mean, scale = x.mean(0), x.std(0)
        scale[scale == 0] = 1.0
        z = (x - mean) / scale
        km = KMeans(n_clusters=k, n_init=20, random_state=seed).fit(z)
        labels = km.labels_
        if time is not None and event is not None:
            time, event = np.asarray(time, float), np.asarray(event) > 0
            rates = np.array([100 * event[labels == g].sum() / time[labels == g].sum() for g in range(k)])
            score, ranked_by = rates, "crude event rate per 100 person-years"
        else:
            rates = np.full(k, np.nan)
            col = {f: i for i, f in enumerate(features)}
            worse = [col[f] for f in ("e_over_e_prime", "lavi") if f in col]
            better = [col[f] for f in ("septal_e_prime", "lateral_e_prime") if f in col]
            score = km.cluster_centers_[:, worse].sum(1) - km.cluster_centers_[:, better].sum(1)
            ranked_by = "echo profile (E/e' and LAVI up, e' down)"
        order = np.argsort(score, kind="stable")
        return cls(list(features), median.tolist(), mean.tolist(), scale.tolist(),
                   km.cluster_centers_[order].tolist(), rates[order].tolist(), ranked_by)

    @property
    def high_risk(self) -> int:
        """The number of the high-risk group."""
        return len(self.centres) - 1

    def assign(self, echo: pd.DataFrame) -> np.ndarray:
        """Group number of each row (nearest centre in the development cohort's scaling)."""
        missing = [f for f in self.features if f not in echo.columns]
        if missing:
            raise CohortError(f"phenogroups need echo column(s) {missing}")
        x = echo[self.features].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        x = np.where(np.isnan(x), np.asarray(self.median), x)
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        distances = ((z[:, None, :] - np.asarray(self.centres)[None]) ** 2).sum(-1)
        return distances.argmin(1)

    def label(self, echo: pd.DataFrame) -> pd.DataFrame:
        """``phenogroup`` (0 = lowest risk) and ``diastolic_risk_phenogroup`` (1.0 in the high-risk group)."""
        group = self.assign(echo)
        return pd.DataFrame({"phenogroup": group, "diastolic_risk_phenogroup": (group == self.high_risk).astype(float)},
                            index=echo.index)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict) -> Phenogroups:
        """Rebuild from ``to_dict``."""
        return cls(**data)


def hf_death_followup(table: pd.DataFrame, outcomes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Follow-up years and HF death (``event == 1``) for each row of ``table``, matched on ``patient_id``."""
    need = [c for c in ("patient_id", "followup_years", "event") if c not in outcomes.columns]
    if need:
        raise CohortError(f"the outcomes table lacks column(s) {need}")
    follow = outcomes.drop_duplicates("patient_id").set_index("patient_id")
    missing = sorted(set(table["patient_id"]) - set(follow.index))
    if missing:
        raise CohortError(f"no follow-up for {len(missing)} patient(s), e.g. {missing[:3]}")
    rows = follow.loc[table["patient_id"]]
    return rows["followup_years"].to_numpy(float), rows["event"].to_numpy() == 1
