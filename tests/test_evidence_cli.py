"""ecgscope evaluate / survival / report from files, as a user with their own predictions would run them."""

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from ecgscope.cli import app

runner = CliRunner()


def _files(tmp_path, n=400, seed=0):
    rng = np.random.default_rng(seed)
    rvef = rng.normal(50, 10, n)
    predictions = pd.DataFrame({
        "ecg_id": np.arange(n), "patient_id": np.arange(n) // 2 * 2,  # two ECGs per patient
        "acquired_at": pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(n) % 2 * 30, unit="D"),
        "age": rng.uniform(30, 90, n), "sex": rng.choice(["F", "M"], n), "rvef": rvef + rng.normal(0, 5, n)})
    predictions["rv_dysfunction"] = 1 / (1 + np.exp((predictions.rvef - 40) / 4))
    labels = pd.DataFrame({"ecg_id": np.arange(n), "rvef": rvef, "rv_dysfunction": (rvef <= 40).astype(int)})
    hazard = 0.1 * np.exp(0.05 * (50 - rvef[::2]))
    t_event, t_censor = rng.exponential(1 / hazard), rng.uniform(1, 6, n // 2)
    outcomes = pd.DataFrame({"patient_id": np.arange(0, n, 2), "index_date": pd.Timestamp("2020-01-01"),
                             "followup_years": np.minimum(t_event, t_censor),
                             "event": np.where(t_event < t_censor, rng.integers(1, 3, n // 2), 0)})
    for name, table in (("preds", predictions), ("labels", labels), ("outcomes", outcomes)):
        table.to_parquet(tmp_path / f"{name}.parquet")
    predictions.assign(rvef=predictions.rvef + rng.normal(0, 8, n),
                       rv_dysfunction=rng.uniform(size=n)).to_parquet(tmp_path / "baseline.parquet")
    return tmp_path


def test_evaluate_survival_and_report_commands(tmp_path):
    d = _files(tmp_path)
    result = runner.invoke(app, ["evaluate", str(d / "preds.parquet"), "--labels", str(d / "labels.parquet"),
                                 "--out", str(d / "run" / "eval"), "--subgroup", "sex", "--n-boot", "50",
                                 "--baseline", str(d / "baseline.parquet"), "--title", "Test cohort"])
    assert result.exit_code == 0, result.output
    metrics = pd.read_csv(d / "run" / "eval" / "metrics.csv")
    assert set(metrics.target) == {"rvef", "rv_dysfunction"}
    assert {"all", "sex", "age_band"} == set(metrics.subgroup)
    comparison = pd.read_csv(d / "run" / "eval" / "comparison.csv").set_index("measure")
    assert comparison.loc["AUROC difference (DeLong)", "estimate"] > 0.1  # the model beats noise
    assert comparison.loc["AUROC difference (DeLong)", "p"] < 0.05

    result = runner.invoke(app, ["survival", str(d / "preds.parquet"), "--outcomes", str(d / "outcomes.parquet"),
                                 "--predictor", "rvef", "--per", "-10", "--lower-is-riskier", "--threshold", "40",
                                 "--covariate", "age", "--horizon", "2", "--out", str(d / "run" / "surv")])
    assert result.exit_code == 0, result.output
    summary = json.loads((d / "run" / "surv" / "summary.json").read_text())
    assert summary["n"] == 200  # one row per patient: the earliest ECG
    assert summary["cox_any_unadjusted"]["hr"] > 1  # lower RVEF, higher hazard
    assert summary["harrell_c_any"] > 0.5 and "fine_gray" in summary and "cox_any_adjusted" in summary
    result = runner.invoke(app, ["survival", str(d / "preds.parquet"), "--outcomes", str(d / "outcomes.parquet"),
                                 "--predictor", "rvef", "--lower-is-riskier", "--quantile", "0.5", "--quantile", "0.9",
                                 "--out", str(d / "quantiles")])
    assert result.exit_code == 0, result.output
    groups = pd.read_csv(d / "quantiles" / "risk_groups.csv").set_index("group")
    assert list(groups.n) == [100, 80, 20]  # halves, then the top tenth of risk

    result = runner.invoke(app, ["report", str(d / "run")])
    assert result.exit_code == 0, result.output
    page = (d / "run" / "report.html").read_text()
    assert "Test cohort" in page and "Kaplan-Meier" in page and page.count("data:image/png;base64,") >= 6


def test_evidence_commands_fail_clearly(tmp_path):
    d = _files(tmp_path)
    result = runner.invoke(app, ["evaluate", str(d / "missing.parquet"), "--out", str(d / "x")])
    assert result.exit_code == 2 and "missing.parquet" in result.output
    result = runner.invoke(app, ["evaluate", str(d / "preds.parquet"), "--labels", str(d / "labels.parquet"),
                                 "--out", str(d / "x"), "--target", "lvef"])
    assert result.exit_code == 2 and "lvef" in result.output and "shared columns" in result.output
    result = runner.invoke(app, ["evaluate", str(d / "preds.parquet"), "--labels", str(d / "labels.parquet"),
                                 "--out", str(d / "x"), "--subgroup", "ward"])
    assert result.exit_code == 2 and "ward" in result.output
    result = runner.invoke(app, ["report", str(d / "nowhere")])
    assert result.exit_code == 2 and "no such run directory" in result.output


def test_evaluate_scores_the_test_split_at_thresholds_chosen_elsewhere(tmp_path):
    d = _files(tmp_path)
    labels = pd.read_parquet(d / "labels.parquet")
    labels["split"] = np.select([labels.ecg_id < 240, labels.ecg_id < 320], ["train", "val"], "test")
    labels.to_parquet(d / "split_labels.parquet")
    args = ["evaluate", str(d / "preds.parquet"), "--labels", str(d / "split_labels.parquet"), "--n-boot", "20"]
    result = runner.invoke(app, [*args, "--out", str(d / "test")])
    assert result.exit_code == 0, result.output
    assert "scoring 80 of 400 rows (split test" in result.output and "validation rows" in result.output
    metrics = pd.read_csv(d / "test" / "metrics.csv")
    assert (metrics.n[metrics.subgroup == "all"] == 80).all()
    info = json.loads((d / "test" / "evaluation.json").read_text())
    assert "given" in info["thresholds"]["rv_dysfunction"]["source"]

    result = runner.invoke(app, [*args, "--out", str(d / "all"), "--split", "all"])
    assert result.exit_code == 0 and "scoring 400 of 400 rows (every split" in result.output
    model = d / "model"
    model.mkdir()
    (model / "model.json").write_text(json.dumps({"thresholds": {"rv_dysfunction": {"value": 0.3}}}))
    result = runner.invoke(app, [*args, "--out", str(d / "m"), "--model", str(model)])
    assert result.exit_code == 0 and "the model's thresholds" in result.output
    info = json.loads((d / "m" / "evaluation.json").read_text())
    assert info["thresholds"]["rv_dysfunction"]["value"] == 0.3
    result = runner.invoke(app, [*args, "--out", str(d / "x"), "--split", "holdout"])
    assert result.exit_code == 2 and "holdout" in result.output and "'test'" in result.output


def test_survival_finds_covariates_by_name_or_refuses_with_the_columns_there(tmp_path):
    d = _files(tmp_path)
    args = ["survival", str(d / "preds.parquet"), "--outcomes", str(d / "outcomes.parquet"), "--predictor", "rvef",
            "--per", "-10", "--lower-is-riskier"]
    result = runner.invoke(app, [*args, "--covariate", "age", "--covariate", "male", "--out", str(d / "adj")],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    # the adjusted HR is printed beside the unadjusted one, each with the kind of its interval
    assert "adjusted for age, male" in result.output and "Wald, patient-clustered sandwich" in result.output
    summary = json.loads((d / "adj" / "summary.json").read_text())
    assert summary["cox_any_adjusted"]["covariates"] == ["age", "male"]  # male derived from sex (F/M)
    refused = runner.invoke(app, [*args, "--covariate", "bmi", "--out", str(d / "no")], terminal_width=200)
    assert refused.exit_code == 2 and "'bmi'" in refused.output and "acquired_at" in refused.output


def test_report_prints_counts_as_counts_and_no_interval_beside_a_missing_estimate(tmp_path):
    from ecgscope.evaluate.evaluation import run_evaluation
    from ecgscope.report.html import LIMITATIONS, build_report

    rng = np.random.default_rng(3)
    n = 200
    y = (rng.uniform(size=n) < 0.3).astype(float)
    frame = pd.DataFrame({"ecg_id": np.arange(n), "patient_id": np.arange(n), "dys_true": y,
                          "dys_pred": np.clip(0.5 * y + 0.5 * rng.uniform(size=n), 0, 1),
                          "ef_true": rng.normal(50, 8, n), "ef_pred": rng.normal(50, 8, n),
                          "ward": np.where(np.arange(n) < 15, "A", "B")})
    frame.loc[frame.ward == "A", "dys_true"] = 0.0
    frame.loc[frame.dys_pred > 0.5, "dys_true"] = 1.0  # the score separates the outcome: the slope diverges
    metrics = run_evaluation(frame, tmp_path / "run" / "eval", subgroups=["ward"], n_boot=30)
    slope = metrics[(metrics.metric == "calibration slope") & (metrics.subgroup == "all")].iloc[0]
    assert np.isnan(slope.estimate) and "diverged" in slope.note
    page = build_report(tmp_path / "run").read_text()
    positives = int(frame.dys_true.sum())
    assert f">{positives}<" in page and f">{positives}.00<" not in page  # a count, not "56.00"
    row = page[page.index(">calibration slope<"):].split("</tr>")[0]
    assert ">-<" in row and "[" not in row  # no CI printed beside a missing estimate
    assert "forest plots above" in LIMITATIONS and "below" not in LIMITATIONS
