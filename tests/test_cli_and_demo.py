import base64
import importlib.util
import json
import os
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb
from rich.console import Console
from typer.testing import CliRunner

from ecgscope.cli import app, headline_table
from ecgscope.report.html import format_number
from ecgscope.studies.demo import run_demo
from ecgscope.studies.transfer import keep_training_patients

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


def test_simulate_command_writes_a_cohort(tmp_path):
    out = tmp_path / "sim"
    result = runner.invoke(app, ["simulate", "--preset", "prospective", "--n", "6", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "6 subjects" in result.output
    db = pd.read_csv(out / "wfdb" / "ptbxl_database.csv")
    assert len(db) == 6
    assert wfdb.rdrecord(str(out / "wfdb" / db.filename_hr[0])).n_sig == 12


def test_simulate_command_reports_bad_input_without_a_traceback(tmp_path):
    result = runner.invoke(app, ["simulate", "--preset", "nope", "--n", "3", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "unknown preset 'nope'" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["simulate", "--preset", "code15", "--n", "3", "--format", "dicom",
                                 "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and "unknown format" in result.output
    assert not (tmp_path / "y").exists()


def test_presets_command_lists_every_preset():
    result = runner.invoke(app, ["presets"])
    assert result.exit_code == 0
    for name in ("ukb", "hospital", "prospective", "echo-dev", "echo-external", "echonext", "code15"):
        assert name in result.output


@pytest.mark.long
def test_demo_runs_end_to_end_on_a_tiny_cohort(tmp_path):
    result = run_demo(out=tmp_path / "demo", n=400, epochs=1, model_name="compact_cnn_tiny", progress=False,
                      n_hospital=150, n_prospective=40, n_survival=300, n_boot=20, small_hospital_train=30,
                      lr_grid=True)  # the --full path; the wheel test runs the default
    m = result.metrics
    t = result.transfer
    assert set(t.cohort) == {"hospital test", "prospective"} and len(set(t.model)) == 3
    full, small = (pd.read_parquet(tmp_path / "demo" / d / "hospital_cohort.parquet")
                   for d in ("transfer", "transfer_small"))
    n_full = full[full.split == "train"].patient_id.nunique()
    assert n_full > 30 and set(t.hospital_training_patients) == {30, n_full}  # the small hospital, then all
    assert t[t.metric == "MAE"].estimate.gt(0).all()
    d = result.transfer_differences.set_index(["hospital_training_patients", "cohort", "comparison", "target"])
    est = t.set_index(["hospital_training_patients", "cohort", "model", "target"]).estimate
    for cohort, target in [("hospital test", "rvef"), ("prospective", "rvedvi")]:  # paired rows agree with the table
        expected = (est[(30, cohort, "fine-tuned (ukb -> hospital)", target)]
                    - est[(30, cohort, "from scratch (hospital)", target)])
        assert abs(d.difference[(30, cohort, "fine-tuned minus from scratch (hospital)", target)] - expected) < 1e-12
    # both sizes score the unadapted model on the same test and prospective patients
    unadapted = t[t.model == "pretrained only (ukb)"].set_index(["hospital_training_patients", "cohort", "target"])
    np.testing.assert_array_equal(unadapted.loc[30, "estimate"], unadapted.loc[n_full, "estimate"])  # NaN: no cases
    assert small[small.split == "train"].patient_id.nunique() == 30
    assert set(small[small.split == "train"].patient_id) < set(full[full.split == "train"].patient_id)
    assert small[small.split == "test"].patient_id.tolist() == full[full.split == "test"].patient_id.tolist()
    # the same 30 patients transfer_benchmark.py --n-train 30 keeps for seed 0 (it simulates the hospital anew)
    pd.testing.assert_frame_equal(small, keep_training_patients(full, 30, seed=1))
    assert set(m.model) == {"ECG model", "oracle"}
    assert set(m.target) == {"rv_dysfunction", "rv_dilation", "rvef", "rvedvi"}
    mae = m[(m.metric == "MAE")].estimate
    assert mae.notna().all() and (mae > 0).all()
    summary = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert summary["split_sizes"]["test"] > 0
    for rel in ("model/weights.safetensors", "model/model.json", "predictions.parquet",
                "figures/rv_performance.png", "figures/example_ecg.png", "cohort/wfdb/ptbxl_database.csv"):
        assert (tmp_path / "demo" / rel).exists(), rel
    preds = pd.read_parquet(tmp_path / "demo" / "predictions.parquet")
    assert preds.patient_id.is_unique and len(preds) == summary["split_sizes"]["test"]
    # conformal intervals are calibrated on patients carved out of training, and the coverage row is what they do
    cohort = pd.read_parquet(tmp_path / "demo" / "cohort.parquet")
    calibration = cohort[cohort.split == "calibration"]
    assert len(calibration) and not set(calibration.patient_id) & set(cohort[cohort.split != "calibration"].patient_id)
    conformal = json.loads((tmp_path / "demo" / "model" / "model.json").read_text())["conformal"]
    assert conformal["rvef"]["n_calibration"] == calibration.rvef.notna().sum()
    for target in ("rvef", "rvedvi"):
        width = conformal[target]["quantile"] * preds[f"{target}_std_pred"]
        inside = (preds[f"{target}_true"] - preds[f"{target}_pred"]).abs() <= width
        row = m[(m.metric == "90% interval coverage") & (m.target == target)]
        assert row.estimate.iloc[0] == pytest.approx(inside.mean())
    # the saved model predicts a store with conformal intervals, and exports to ONNX
    out = tmp_path / "preds.parquet"
    result = runner.invoke(app, ["predict", str(tmp_path / "demo" / "model"), "--store",
                                 str(tmp_path / "demo" / "store"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    assert len(table) == 400
    assert (table.rvef_lower < table.rvef).all() and (table.rvef < table.rvef_upper).all()
    assert table.rv_dysfunction.between(0, 1).all() and (table.rvedvi_std > 0).all()
    assert runner.invoke(app, ["export", str(tmp_path / "demo" / "model"), "--onnx"]).exit_code == 0
    _check_report(tmp_path / "demo", {30, n_full})
    printed = Console(record=True, width=250)
    printed.print(headline_table(tmp_path / "demo" / "study.json"))
    text = printed.export_text()
    assert "Cox HR per 10 % lower predicted RVEF" in text and "1.40" in text
    _check_docs_tables(tmp_path / "demo", m, t)


def _check_docs_tables(run, metrics, transfer):
    """benchmarks/demo_tables.py, which prints the tables the docs quote, prints this run's own figures."""
    spec = importlib.util.spec_from_file_location("demo_tables", REPO / "benchmarks" / "demo_tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    row = metrics.set_index(["target", "metric", "model"]).loc[("rvef", "MAE", "ECG model")]
    assert f"| RVEF | MAE (%) | {row.estimate:.2f} [{row.ci_low:.2f}, {row.ci_high:.2f}] |" in \
        tables.study_a_headline(run)
    text = tables.transfer_tables(run)
    fine = transfer.set_index(["hospital_training_patients", "cohort", "target", "metric", "model"]).loc[
        (30, "hospital test", "rvef", "MAE", "fine-tuned (ukb -> hospital)")]
    assert "| 30 | hospital test | RVEF MAE (%) |" in text and f"{fine.estimate:.2f} [{fine.ci_low:.2f}, " in text
    assert text.count("| 30 | hospital test |") == 4 + 2  # four targets, then two differences rows


class _Images(HTMLParser):
    """Collects every <img> source and every heading of an HTML page."""

    def __init__(self):
        super().__init__()
        self.sources, self.headings, self._in_heading = [], [], False

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs).get("src", ""))
        self._in_heading = tag in ("h1", "h2", "h3")

    def handle_data(self, data):
        if self._in_heading:
            self.headings.append(data)
            self._in_heading = False


def _check_report(run, hospital_training_sizes):
    """The demo's report opens offline: every figure embedded as PNG, every section present, numbers beside."""
    page = (run / "report.html").read_text()
    parser = _Images()
    parser.feed(page)
    assert len(parser.sources) >= 12
    for src in parser.sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    headings = " | ".join(parser.headings)
    for section in ("Headline results", "Table 1", "ukb test", "hospital test", "prospective",
                    "Survival by predicted RVEF", "Survival by true RVEF", "Taking the model to a new hospital",
                    "Model card", "Against the baseline model", "Event rate of cause 1"):
        assert section in headings, section
    assert "does not replace imaging" in page
    assert page.count("alt='fine-tuned minus the other models") == 4  # one per target, both hospital sizes in each
    numbers = json.loads((run / "report.json").read_text())
    measures = {row["measure"]: row for row in numbers["headline"]}
    hr = measures["Cox HR per 10 % lower predicted RVEF (death), unadjusted"]
    assert hr["interval"] == "Wald (model-based)"
    assert measures[next(m for m in measures if m.startswith("Fine-Gray"))]["interval"].endswith("clustered sandwich")
    assert hr["published"] == 1.4 and hr["ci_low"] <= hr["estimate"] <= hr["ci_high"]
    assert f">{format_number(hr['estimate'])} [{format_number(hr['ci_low'])}, {format_number(hr['ci_high'])}]<" in page
    assert len(numbers["evaluations"]) == 3 and len(numbers["survival"]) == 2
    assert {row["hospital_training_patients"] for row in numbers["transfer_differences"]} == hospital_training_sizes


def test_a_second_demo_into_the_same_folder_is_refused_while_the_first_runs(tmp_path):
    from ecgscope.io.atomic import exclusive_run

    with exclusive_run(tmp_path / "demo"):  # stands for a demo still running
        result = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--study", "b", "--overwrite"])
    assert result.exit_code == 2 and "in use by another ecgscope run" in result.output
    assert not (tmp_path / "demo" / "echo").exists()  # nothing was deleted or written
    bad = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--study", "c"])
    assert bad.exit_code == 2 and "--study" in bad.output


def test_progress_outside_a_terminal_is_a_line_per_tenth():
    """Piped or logged, long work reports in plain lines: one per tenth of the total, and a final count."""
    import io

    from ecgscope.progress import LineProgress

    stream = io.StringIO()
    with LineProgress(stream) as bar:
        task = bar.add_task("simulating", total=95)
        for _ in range(19):
            bar.advance(task, 5)
        unknown = bar.add_task("ingesting")
        bar.advance(unknown, 25_000)
        bar.advance(unknown, 1)
    lines = stream.getvalue().splitlines()
    counted = [line for line in lines if line.startswith("simulating")]
    assert len(counted) == 10 and counted[-1].startswith("simulating: 95 of 95")
    assert [line.split(" (")[0] for line in lines if line.startswith("ingesting")] == [
        "ingesting: 25,000", "ingesting: 25,001 done"]


def test_stage_times_of_two_studies_side_by_side_end_with_the_wall_time(tmp_path, capsys):
    from ecgscope.cli import _stage_times
    from ecgscope.studies.timing import StageClock

    laps = []
    a, b = StageClock(on_lap=lambda: laps.append("a")), StageClock()
    a.lap("A: one")
    a.lap("A: two")
    b.lap("B: one")
    assert laps == ["a", "a"]  # the demo hands study A every core back here once study B is done
    assert b.__getstate__()["on_lap"] is None  # study B's clock comes back from its process without a callback
    _stage_times([a, b], tmp_path, wall_s=12.5, cpu_s=20.0)
    table = pd.read_csv(tmp_path / "stage_times.csv")
    assert list(table.stage)[:3] == ["A: one", "A: two", "B: one"]
    assert table.stage.iloc[3].startswith("CPU time, every process")
    assert table.stage.iloc[-1] == "total wall time (A and B side by side)"
    assert table.seconds.iloc[-1] == 12.5 and table.share.iloc[:2].sum() == pytest.approx(1.0, abs=1e-3)
    assert table.share.iloc[3] == pytest.approx(20.0 / (12.5 * (os.cpu_count() or 1)), abs=1e-3)
    capsys.readouterr()
    _stage_times([a], tmp_path, wall_s=251.46)  # kept as 251.5: the screen shows what the file keeps, 252
    total = [line for line in capsys.readouterr().out.splitlines() if "total wall time" in line][0]
    assert "252" in total and pd.read_csv(tmp_path / "stage_times.csv").seconds.iloc[-1] == 251.5
