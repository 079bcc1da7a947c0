"""Pair imaging studies and outcomes with ECGs, in SQL (DuckDB) over the manifest and the user's tables.

Tables may be DataFrames or paths to CSV / Parquet. Dates are compared as timestamps; gaps are in days,
``ECG time - study time`` (negative: the ECG came first).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from ecgscope.errors import EcgscopeError


class CohortError(EcgscopeError, ValueError):
    """A cohort table lacks a column, or a split leaks patients."""


def load_table(table: pd.DataFrame | str | Path) -> pd.DataFrame:
    """A DataFrame, or one read from a CSV or Parquet path."""
    if isinstance(table, pd.DataFrame):
        return table
    path = Path(table)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    return pd.read_parquet(path)


def covariate_values(table: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The named covariates of ``table`` as numbers, one column each, or a ``CohortError`` naming the columns
    that exist. ``male`` is derived from a ``sex`` column (M / F) when the table has no ``male`` column, and
    ``sex`` itself becomes 1 for M, 0 for F; any other covariate must be numeric."""
    values = {}
    for name in names:
        if name in table.columns and name != "sex":
            column = pd.to_numeric(table[name], errors="coerce")
            if column.isna().all() and table[name].notna().any():
                raise CohortError(f"covariate {name!r} is not numeric (it holds e.g. {table[name].dropna().iloc[0]!r})")
            values[name] = column.astype(float)
        elif name in ("male", "sex") and "sex" in table.columns:
            sex = table["sex"]
            if pd.api.types.is_numeric_dtype(sex):  # already coded 1 male / 0 female
                values[name] = sex.astype(float)
                continue
            coded = sex.astype("string").str.upper().str[:1].map({"M": 1.0, "F": 0.0}).astype(float)
            unknown = sex.notna() & coded.isna()
            if unknown.any():
                found = sorted(set(sex[unknown].astype(str)))[:5]
                raise CohortError(f"covariate {name!r}: the sex column holds {found}; only M / F (or 1 / 0) can "
                                  "be adjusted for")
            values[name] = coded
        else:
            hint = " (derived from a sex column, which this table lacks too)" if name == "male" else ""
            raise CohortError(f"covariate {name!r}{hint} is not a column of this table; its columns are "
                              f"{list(table.columns)}")
    return pd.DataFrame(values, index=table.index)


def _require(table: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise CohortError(f"{name} table lacks column(s) {missing}; it has {list(table.columns)}")


def link_imaging(manifest: pd.DataFrame, imaging: pd.DataFrame | str | Path, *, days_before: float = 30,
                 days_after: float = 30, date_column: str = "study_date") -> pd.DataFrame:
    """One row per imaging study with the ECG nearest in time inside the window, if any.

    An ECG qualifies when it was taken at most ``days_before`` days before the study and at most
    ``days_after`` days after it (EchoNext's rule is ``days_before=365, days_after=0``). Among several, the
    nearest wins; ties go to the earlier ECG. Studies without a qualifying ECG are dropped. The ECG's
    ``age`` and ``sex`` (from the store's manifest) come along when the imaging table lacks them, so the
    cohort can be adjusted for them.
    """
    studies = load_table(imaging).copy()
    _require(studies, ("patient_id", date_column), "imaging")
    _require(manifest, ("row", "ecg_id", "patient_id", "acquired_at"), "manifest")
    if "study_id" not in studies:
        studies["study_id"] = range(1, len(studies) + 1)
    studies["patient_id"] = studies["patient_id"].astype(str)
    studies["_study_time"] = pd.to_datetime(studies[date_column])
    demographics = [c for c in ("age", "sex") if c in manifest.columns and c not in studies.columns]
    ecgs = manifest[["row", "ecg_id", "patient_id", "acquired_at", *demographics]].copy()
    ecgs["patient_id"] = ecgs["patient_id"].astype(str)
    con = duckdb.connect()
    con.register("studies", studies)
    con.register("ecgs", ecgs)
    carried = "".join(f", e.{c}" for c in demographics)
    linked = con.execute(
        f"""
        WITH candidates AS (
            SELECT s.*, e.row AS ecg_row, e.ecg_id, e.acquired_at AS ecg_time{carried},
                   date_diff('second', s._study_time, e.acquired_at) / 86400.0 AS gap_days
            FROM studies s JOIN ecgs e USING (patient_id)
            WHERE e.acquired_at BETWEEN s._study_time - to_seconds(CAST(? * 86400 AS BIGINT))
                                    AND s._study_time + to_seconds(CAST(? * 86400 AS BIGINT))
        )
        SELECT * EXCLUDE (_study_time) FROM candidates
        QUALIFY row_number() OVER (PARTITION BY study_id ORDER BY abs(gap_days), ecg_time, ecg_row) = 1
        ORDER BY study_id
        """,
        [float(days_before), float(days_after)],
    ).df()
    if linked.empty and len(studies):
        raise CohortError(f"none of the {len(studies):,} imaging studies has an ECG of the same patient from "
                          f"{days_before:g} days before to {days_after:g} days after it; check that patient ids "
                          f"and dates in the store's manifest match the imaging table")
    return linked


def time_to_event(pairs: pd.DataFrame, outcomes: pd.DataFrame | str | Path,
                  time_column: str = "ecg_time") -> pd.DataFrame:
    """Add ``time_years`` and ``event`` from the ECG date to the event or censoring.

    ``outcomes`` has per patient either ``index_date``, ``followup_years`` and ``event`` (follow-up from an
    index date, as ecgscope's simulator writes), or ``event_date`` (empty if none) and ``censor_date``.
    ``event`` keeps its codes (0 censored, 1, 2, ... competing causes). Patients without an outcome row
    are dropped; so are ECGs taken after the end of follow-up.
    """
    table = load_table(outcomes).copy()
    table["patient_id"] = table["patient_id"].astype(str)
    con = duckdb.connect()
    con.register("pairs", pairs.assign(patient_id=pairs["patient_id"].astype(str)))
    con.register("outcomes", table)
    if {"index_date", "followup_years", "event"} <= set(table.columns):
        sql = """
            SELECT p.*, o.followup_years - date_diff('second', CAST(o.index_date AS TIMESTAMP),
                   CAST(p.{t} AS TIMESTAMP)) / (365.25 * 86400) AS time_years, o.event
            FROM pairs p JOIN outcomes o USING (patient_id)"""
    elif {"censor_date"} <= set(table.columns):
        sql = """
            SELECT p.*, date_diff('second', CAST(p.{t} AS TIMESTAMP),
                   CAST(coalesce(o.event_date, o.censor_date) AS TIMESTAMP)) / (365.25 * 86400) AS time_years,
                   CASE WHEN o.event_date IS NULL THEN 0 ELSE coalesce(o.event, 1) END AS event
            FROM pairs p JOIN outcomes o USING (patient_id)"""
        if "event" not in table.columns:
            sql = sql.replace("coalesce(o.event, 1)", "1")
    else:
        raise CohortError("outcomes need index_date + followup_years + event, or event_date + censor_date; "
                          f"got {list(table.columns)}")
    out = con.execute(sql.format(t=time_column) + " ORDER BY ALL").df()
    return out[out["time_years"] > 0].reset_index(drop=True)


def nearest_ecgs(manifest: pd.DataFrame, studies: pd.DataFrame, date_column: str = "study_date") -> pd.DataFrame:
    """For each study (``study_id``, ``patient_id``, ``date_column``), the signed gap in days to the same
    patient's nearest ECG at any distance (negative: the ECG came first); NaN where the patient has no ECG."""
    studies = studies[["study_id", "patient_id", date_column]].copy()
    studies["patient_id"] = studies["patient_id"].astype(str)
    studies["_study_time"] = pd.to_datetime(studies[date_column])
    ecgs = manifest[["patient_id", "acquired_at"]].assign(patient_id=lambda t: t["patient_id"].astype(str))
    con = duckdb.connect()
    con.register("studies", studies)
    con.register("ecgs", ecgs)
    return con.execute(
        """
        SELECT s.study_id, s.patient_id,
               date_diff('second', s._study_time, e.acquired_at) / 86400.0 AS nearest_ecg_days
        FROM studies s LEFT JOIN ecgs e USING (patient_id)
        QUALIFY row_number() OVER (PARTITION BY s.study_id ORDER BY abs(nearest_ecg_days) NULLS LAST) = 1
        ORDER BY s.study_id
        """).df()
