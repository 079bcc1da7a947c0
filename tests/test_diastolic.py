"""ASE 2016 / 2025 diastolic function algorithms and data-driven phenogroups."""

import numpy as np
import pandas as pd
import pytest

from ecgscope.cohort import CohortError
from ecgscope.cohort.diastolic import ase2016, ase2025
from ecgscope.cohort.phenogroups import Phenogroups

HEALTHY = dict(lvef=60, septal_e_prime=9, lateral_e_prime=12, e_wave=80, e_over_a=1.2, e_over_e_prime=8,
               tr_velocity=2.3, lavi=25, la_strain=38, pasp=25)


def _echo(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame([{**HEALTHY, **row} for row in rows])


def _calls(result: pd.DataFrame) -> list[tuple[str, float]]:
    return list(zip(result["diastolic_function"].astype(str), result["diastolic_grade"], strict=True))


def test_ase2016_counts_positive_criteria_and_grades_by_e_over_a_and_pressure():
    echo = _echo(
        {},                                                                     # normal
        dict(e_over_e_prime=16, septal_e_prime=5, lateral_e_prime=7, tr_velocity=3.1, lavi=40),  # 4/4: grade II
        dict(e_over_e_prime=16, lavi=40),                                       # 2/4: indeterminate
        dict(e_over_e_prime=16, septal_e_prime=5, tr_velocity=np.nan),          # 2/3 positive, LAP 1 of 2: no grade
        dict(lvef=35, e_over_a=2.5),                                            # reduced LVEF, E/A >= 2: grade III
        dict(lvef=35, e_over_a=0.7, e_wave=45),                                 # reduced LVEF, E/A <= 0.8, E <= 50: I
        {k: np.nan for k in HEALTHY},                                           # nothing measured
    )
    calls = _calls(ase2016(echo))
    assert calls[:3] == [("normal", 0.0), ("dysfunction", 2.0), ("indeterminate", calls[2][1])]
    assert np.isnan(calls[2][1]) and calls[3][0] == "dysfunction" and np.isnan(calls[3][1])
    assert calls[4] == ("dysfunction", 3.0) and calls[5] == ("dysfunction", 1.0)
    assert calls[6][0] == "indeterminate"
    assert ase2016(echo)["diastolic_dysfunction"].tolist()[:2] == [0.0, 1.0]


def test_ase2025_uses_supplementary_markers_when_primary_ones_disagree():
    echo = _echo(
        {},                                                                     # normal
        dict(septal_e_prime=5),                                                 # low e', LAP normal by LARS: grade 1
        dict(septal_e_prime=5, la_strain=15),                                   # low e', LARS <= 18: grade 2
        dict(e_over_e_prime=16, tr_velocity=3.1),                               # both pressure markers up: grade 2
        dict(e_over_e_prime=16, tr_velocity=3.1, e_over_a=2.4),                 # ... with E/A >= 2: grade 3
        dict(e_over_e_prime=16),                                                # discordant, supplementary normal
        dict(e_over_e_prime=16, la_strain=np.nan, lavi=np.nan),                 # discordant, nothing to decide
        dict(septal_e_prime=6.5, lateral_e_prime=8),                            # low e' in 2016, not in 2025
    )
    calls = _calls(ase2025(echo))
    assert calls[:6] == [("normal", 0.0), ("dysfunction", 1.0), ("dysfunction", 2.0), ("dysfunction", 2.0),
                         ("dysfunction", 3.0), ("normal", 0.0)]
    assert calls[6][0] == "indeterminate" and np.isnan(calls[6][1])
    assert calls[7] == ("normal", 0.0)
    assert ase2016(echo.iloc[[7]])["diastolic_function"].astype(str).tolist() == ["normal"]  # 1 of 4 positive
    assert ase2025(echo.iloc[[2]].assign(pasp=40, tr_velocity=np.nan))["diastolic_grade"].tolist() == [2.0]


def test_phenogroups_rank_groups_by_outcome_and_travel_as_plain_numbers():
    rng = np.random.default_rng(0)
    n = 400
    sick = rng.random(n) < 0.3
    echo = pd.DataFrame({
        "lvef": rng.normal(60, 5, n), "septal_e_prime": np.where(sick, 5, 9) + rng.normal(0, 1, n),
        "lateral_e_prime": np.where(sick, 7, 12) + rng.normal(0, 1, n),
        "e_over_a": np.where(rng.random(n) < 0.05, np.nan, rng.normal(1.1, 0.2, n)),
        "e_over_e_prime": np.where(sick, 16, 8) + rng.normal(0, 2, n),
        "lavi": np.where(sick, 40, 26) + rng.normal(0, 4, n),
        "tr_velocity": rng.normal(2.4, 0.2, n), "lv_wall_thickness_mm": rng.normal(10, 1, n),
        "s_prime": rng.normal(9, 1, n)})
    time = np.full(n, 4.0)
    event = rng.random(n) < np.where(sick, 0.3, 0.05)
    groups = Phenogroups.fit(echo, time, event, k=2, seed=0)
    labels = groups.label(echo)
    assert groups.rates[1] > groups.rates[0]  # numbered by risk, lowest first
    assert (labels["diastolic_risk_phenogroup"] == sick).mean() > 0.95
    again = Phenogroups.from_dict(groups.to_dict())
    np.testing.assert_array_equal(again.assign(echo), groups.assign(echo))
    # reversed outcomes name the other cluster high-risk; no outcomes: the worse echo profile is high-risk
    reversed_event = rng.random(n) < np.where(sick, 0.05, 0.3)
    reversed_groups = Phenogroups.fit(echo, time, reversed_event, k=2).label(echo)
    assert (reversed_groups["diastolic_risk_phenogroup"] != labels["diastolic_risk_phenogroup"]).mean() > 0.95
    assert (Phenogroups.fit(echo, k=2).label(echo)["diastolic_risk_phenogroup"] == sick).mean() > 0.95
    with pytest.raises(CohortError, match="lavi"):
        Phenogroups.fit(echo.drop(columns="lavi"))


def test_cli_fits_phenogroups_and_cohort_build_adds_diastolic_labels(tmp_path, echo_dir):
    import json

    from typer.testing import CliRunner

    from ecgscope.cli import app
    from ecgscope.store import ingest

    echo, outcomes = echo_dir / "measurements" / "echo.parquet", echo_dir / "outcomes.parquet"
    groups_json = tmp_path / "groups.json"
    result = CliRunner().invoke(app, ["cohort", "phenogroups", "--imaging", str(echo), "--outcomes", str(outcomes),
                                      "--out", str(groups_json)])
    assert result.exit_code == 0, result.output
    assert "high risk" in result.output and "HF deaths per 100 person-years" in result.output
    assert json.loads(groups_json.read_text())["ranked_by"].startswith("crude event rate")

    ingest([echo_dir / "echonext"], tmp_path / "store", fs=250, units="z-score", workers=1, progress=False)
    out = tmp_path / "cohort.parquet"
    result = CliRunner().invoke(app, ["cohort", "build", "--store", str(tmp_path / "store"), "--imaging", str(echo),
                                      "--days-before", "365", "--days-after", "0", "--diastolic",
                                      "--phenogroups", str(groups_json), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    assert {"diastolic_function_ase2016", "diastolic_grade_ase2025", "diastolic_dysfunction_ase2016",
            "phenogroup", "diastolic_risk_phenogroup"} <= set(table.columns)
    assert table["diastolic_risk_phenogroup"].isin([0.0, 1.0]).all()
    pd.testing.assert_series_equal(table["diastolic_grade_ase2016"], ase2016(table)["diastolic_grade"],
                                   check_names=False)

    bad = CliRunner().invoke(app, ["cohort", "phenogroups", "--imaging", str(outcomes), "--out", str(groups_json),
                                   "--overwrite"])
    assert bad.exit_code != 0 and "lvef" in bad.output
