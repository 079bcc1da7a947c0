"""Feature blocks for the ensemble: tables keyed by ``ecg_id`` (embeddings, generated motion, ...) joined to a
cohort, one block per table, plus covariates taken from the cohort itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ecgscope.cohort import CohortError, covariate_values
from ecgscope.ensemble.stacking import EnsembleError

ID_COLUMNS = ("ecg_id", "patient_id")


def join_blocks(cohort: pd.DataFrame, tables: dict[str, pd.DataFrame | str | Path],
                covariates: list[str] = ()) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """One feature row per cohort row: every numeric column of each table (matched on ``ecg_id``; list columns
    such as curves are left out) as a block named after the table, and ``covariates`` from the cohort (``sex``
    becomes ``male`` 0/1) as the block ``covariates``. Returns the features and the blocks."""
    if "ecg_id" not in cohort.columns:
        raise EnsembleError("the cohort table needs an ecg_id column")
    keys = cohort["ecg_id"].astype(str).reset_index(drop=True)
    parts, blocks = [], {}
    for name, table in tables.items():
        table = pd.read_parquet(table) if isinstance(table, str | Path) else table
        if "ecg_id" not in table.columns:
            raise EnsembleError(f"feature table {name!r} has no ecg_id column")
        table = table.assign(ecg_id=table["ecg_id"].astype(str)).drop_duplicates("ecg_id").set_index("ecg_id")
        missing = sorted(set(keys) - set(table.index))
        if missing:
            raise EnsembleError(f"feature table {name!r} lacks {len(missing)} of the cohort's ECGs, e.g. {missing[:3]}")
        numeric = [c for c in table.columns if c not in ID_COLUMNS and pd.api.types.is_numeric_dtype(table[c])]
        if not numeric:
            raise EnsembleError(f"feature table {name!r} has no numeric feature columns")
        columns = [f"{name}:{c}" for c in numeric]
        parts.append(pd.DataFrame(table.loc[keys, numeric].to_numpy(float), columns=columns))
        blocks[name] = columns
    if covariates:
        try:
            values = covariate_values(cohort.reset_index(drop=True), [c if c != "sex" else "male" for c in covariates])
        except CohortError as exc:
            raise EnsembleError(str(exc)) from exc
        values.columns = [f"covariates:{c}" for c in values.columns]
        parts.append(values)
        blocks["covariates"] = list(values.columns)
    if not blocks:
        raise EnsembleError("give at least one feature table or covariate")
    return pd.concat(parts, axis=1).astype(np.float64), blocks
