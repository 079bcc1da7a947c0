"""Labels from measurements with named thresholds (REFERENCE.md sections 1 and 5)."""

from __future__ import annotations

import operator
import re

import numpy as np
import pandas as pd

from ecgscope.cohort.link import CohortError

#: Named phenotypes: (measurement column, comparison, threshold).
RULES: dict[str, tuple[str, str, float]] = {
    "rv_dysfunction": ("rvef", "<=", 40.0),        # study A
    "rv_dilation": ("rvedvi", ">", 120.0),         # study A, mL/m2
    "lv_dysfunction": ("lvef", "<=", 40.0),        # HFrEF
    "lvef_lte_45": ("lvef", "<=", 45.0),           # EchoNext
    "e_over_e_prime_high": ("e_over_e_prime", ">", 14.0),  # ASE 2016
    "lavi_high": ("lavi", ">", 34.0),              # ASE 2016, mL/m2
    "tr_velocity_high": ("tr_velocity", ">", 2.8),  # ASE 2016, m/s
}
_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}


def parse_rule(text: str) -> tuple[str, tuple[str, str, float]]:
    """A named rule (``rv_dysfunction``) or an inline one (``severe=rvef<30``)."""
    if text in RULES:
        return text, RULES[text]
    match = re.fullmatch(r"\s*(\w+)\s*=\s*(\w+)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*", text)
    if not match:
        raise CohortError(f"unknown label {text!r}; use one of {', '.join(RULES)} or NAME=COLUMN<=VALUE")
    name, column, op, value = match.groups()
    return name, (column, op, float(value))


def derive_labels(table: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Add one boolean column per label; NaN where the measurement is missing."""
    out = table.copy()
    for text in labels:
        name, (column, op, value) = parse_rule(text)
        if column not in out.columns:
            raise CohortError(f"label {name} needs column {column!r}, which the table lacks")
        measured = pd.to_numeric(out[column], errors="coerce")
        out[name] = np.where(measured.isna(), np.nan, _OPS[op](measured, value).astype(float))
    return out
