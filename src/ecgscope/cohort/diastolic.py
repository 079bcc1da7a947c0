"""Diastolic function from echo measurements: the ASE 2016 and ASE 2025 algorithms (REFERENCE.md section 5).

Input columns (any may be missing or NaN; a missing measurement is "not available", never "normal"):
``lvef`` (%), ``septal_e_prime`` and ``lateral_e_prime`` (cm/s), ``e_wave`` (cm/s), ``e_over_a``,
``e_over_e_prime`` (average E/e'), ``tr_velocity`` (m/s), ``lavi`` (mL/m²), and for 2025 ``la_strain``
(LA reservoir strain, %) and ``pasp`` (mmHg).

Both return one row per echo: ``diastolic_function`` ("normal", "indeterminate", "dysfunction"),
``diastolic_grade`` (0 normal, 1-3, NaN where the algorithm cannot decide) and
``diastolic_dysfunction`` (1.0 / 0.0, NaN where indeterminate) to use as a binary label.

Simplifications, stated: the special-population algorithms (atrial fibrillation, valve disease, ...) are
not applied, and of the 2025 supplementary markers only LA reservoir strain and LAVI are used (pulmonary
vein S/D and IVRT are rarely in registry exports).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: ASE/EACVI 2016 cut-offs.
ASE2016 = {"e_over_e_prime": 14.0, "septal_e_prime": 7.0, "lateral_e_prime": 10.0, "tr_velocity": 2.8,
           "lavi": 34.0}
#: ASE 2025 cut-offs: reduced e' is tighter; LA reservoir strain joins the supplementary markers.
ASE2025 = {"e_over_e_prime": 14.0, "septal_e_prime": 6.0, "lateral_e_prime": 7.0, "average_e_prime": 6.5,
           "tr_velocity": 2.8, "pasp": 35.0, "lavi": 34.0, "la_strain": 18.0}
FUNCTIONS = ("normal", "indeterminate", "dysfunction")


def _col(echo: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(echo[name], errors="coerce").to_numpy(float) if name in echo else np.full(len(echo), np.nan)


def _flag(echo: pd.DataFrame, name: str, op: str, cut: float) -> np.ndarray:
    """1.0 where ``echo[name] op cut``, 0.0 where not, NaN where not measured."""
    values = _col(echo, name)
    met = {">": values > cut, "<": values < cut, "<=": values <= cut}[op]
    return np.where(np.isnan(values), np.nan, met.astype(float))


def _any(*criteria: np.ndarray) -> np.ndarray:
    """Positive if any measured criterion is, negative if all measured ones are not, NaN if none measured."""
    stacked = np.stack(criteria)
    return np.where(np.isnan(stacked).all(0), np.nan, np.nanmax(np.nan_to_num(stacked, nan=-1), 0))


def _result(function: np.ndarray, grade: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "diastolic_function": pd.Categorical(function, categories=FUNCTIONS),
        "diastolic_grade": grade,
        "diastolic_dysfunction": np.select([function == "dysfunction", function == "normal"], [1.0, 0.0], np.nan),
    })


def ase2016(echo: pd.DataFrame) -> pd.DataFrame:
    """Diastolic function and grade by the ASE/EACVI 2016 recommendations (Nagueh et al. 2016)."""
    lvef = _col(echo, "lvef")
    e_over_e = _flag(echo, "e_over_e_prime", ">", ASE2016["e_over_e_prime"])
    low_e = _any(_flag(echo, "septal_e_prime", "<", ASE2016["septal_e_prime"]),
                 _flag(echo, "lateral_e_prime", "<", ASE2016["lateral_e_prime"]))
    tr = _flag(echo, "tr_velocity", ">", ASE2016["tr_velocity"])
    la = _flag(echo, "lavi", ">", ASE2016["lavi"])

    # Algorithm 1 (normal LVEF): more than half of the available criteria positive = dysfunction, fewer than
    # half = normal, exactly half = indeterminate.
    criteria = np.stack([e_over_e, low_e, tr, la])
    available, positive = (~np.isnan(criteria)).sum(0), np.nansum(criteria, 0)
    function = np.select([available == 0, 2 * positive > available, 2 * positive < available],
                         ["indeterminate", "dysfunction", "normal"], "indeterminate").astype(object)
    # Reduced LVEF is myocardial disease: diastolic function is abnormal and only the grade is in question.
    reduced = lvef < 50
    function[reduced] = "dysfunction"

    # Algorithm 2 (grade, for dysfunction): E/A and E first, then the three LAP criteria.
    e_over_a, e_wave = _col(echo, "e_over_a"), _col(echo, "e_wave")
    lap = np.stack([e_over_e, tr, la])
    lap_available, lap_positive = (~np.isnan(lap)).sum(0), np.nansum(lap, 0)
    lap_negative = lap_available - lap_positive
    middle = np.select([lap_positive >= 2, lap_negative >= 2], [2.0, 1.0], np.nan)
    middle = np.where((lap_available == 2) & (lap_positive == 1), np.nan, middle)
    grade = np.select([(e_over_a <= 0.8) & (e_wave <= 50), e_over_a >= 2], [1.0, 3.0], middle)
    grade = np.where(np.isnan(e_over_a), middle, grade)
    grade = np.select([function == "normal", function == "dysfunction"], [0.0, grade], np.nan)
    return _result(function, grade)


def ase2025(echo: pd.DataFrame) -> pd.DataFrame:
    """Diastolic function and grade by the ASE 2025 update (Nagueh et al. 2025): primary markers (reduced e',
    E/e' > 14, TR velocity > 2.8 m/s or PASP > 35 mmHg) decide when they agree; LA reservoir strain <= 18 %
    and LAVI > 34 mL/m² decide left atrial pressure when they do not."""
    average = pd.DataFrame({"average_e_prime": (_col(echo, "septal_e_prime") + _col(echo, "lateral_e_prime")) / 2})
    low_e = _any(_flag(echo, "septal_e_prime", "<=", ASE2025["septal_e_prime"]),
                 _flag(echo, "lateral_e_prime", "<=", ASE2025["lateral_e_prime"]),
                 _flag(average, "average_e_prime", "<=", ASE2025["average_e_prime"]))
    e_over_e = _flag(echo, "e_over_e_prime", ">", ASE2025["e_over_e_prime"])
    tr = _any(_flag(echo, "tr_velocity", ">", ASE2025["tr_velocity"]), _flag(echo, "pasp", ">", ASE2025["pasp"]))
    supplementary = _any(_flag(echo, "la_strain", "<=", ASE2025["la_strain"]),
                         _flag(echo, "lavi", ">", ASE2025["lavi"]))

    pressure = np.stack([e_over_e, tr])
    n_pressure, pressure_pos = (~np.isnan(pressure)).sum(0), np.nansum(pressure, 0)
    all_high = (n_pressure > 0) & (pressure_pos == n_pressure)
    all_normal = (n_pressure > 0) & (pressure_pos == 0)
    # Left atrial pressure: the primary markers when they agree with each other and with e', else the
    # supplementary ones (NaN where those are not measured either).
    lap_high = np.select([all_high, all_normal & (low_e == 0)], [1.0, 0.0], supplementary)

    dysfunction, normal = (lap_high == 1) | (low_e == 1), (lap_high == 0) & (low_e == 0)
    function = np.select([dysfunction, normal], ["dysfunction", "normal"], "indeterminate").astype(object)
    e_over_a = _col(echo, "e_over_a")
    grade = np.select([normal, ~dysfunction | np.isnan(lap_high), lap_high == 0, e_over_a >= 2],
                      [0.0, np.nan, 1.0, 3.0], 2.0)
    return _result(function, grade)


def add_diastolic_labels(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the columns of both algorithms added, suffixed ``_ase2016`` and ``_ase2025``."""
    parts = [fn(table).add_suffix(f"_{name}").set_axis(table.index) for name, fn in (("ase2016", ase2016),
                                                                                      ("ase2025", ase2025))]
    return pd.concat([table, *parts], axis=1)
