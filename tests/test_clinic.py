"""Batch clinic mode: `ecgscope predict MODEL --input FOLDER` gives every file a row with the service's status."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from ecgscope import io
from ecgscope.cli import app
from ecgscope.serve import Assessor

from .serving import muse_file, simulated_leads_uv
from .writers import write_hl7aecg


def test_a_folder_of_exports_gets_one_row_per_file_and_a_page_per_ecg(small_model, tmp_path):
    exports = tmp_path / "exports"
    exports.mkdir()
    leads = simulated_leads_uv()
    muse_file(exports / "good_muse.xml", leads)
    write_hl7aecg(exports / "good_aecg.xml", simulated_leads_uv(seed=5))
    rng = np.random.default_rng(0)
    write_hl7aecg(exports / "noisy.xml", {k: v + rng.normal(0, 600, v.size) for k, v in leads.items()})
    (exports / "broken.xml").write_bytes(b"<RestingECG><Waveform>")
    (exports / "notes.txt").write_text("not an ECG")
    out, pages = tmp_path / "results.csv", tmp_path / "pages"
    result = CliRunner().invoke(app, ["predict", str(small_model), "--input", str(exports), "--out", str(out),
                                      "--pages", str(pages)])
    assert result.exit_code == 0, result.output
    assert "2 result, 1 cannot_assess, 2 unreadable" in result.output
    table = pd.read_csv(out).set_index(pd.read_csv(out)["file"].map(lambda p: p.rsplit("/", 1)[-1]))
    assert table.loc["broken.xml", "status"] == "unreadable" and "not well-formed" in table.loc["broken.xml", "reasons"]
    assert table.loc["noisy.xml", "status"] == "cannot_assess" and "too noisy" in table.loc["noisy.xml", "reasons"]
    assert np.isnan(table.loc["noisy.xml", "rvef"])
    assert table.loc["notes.txt", "status"] == "unreadable" and "not an ECG file" in table.loc["notes.txt", "reasons"]
    good = table.loc["good_muse.xml"]
    assert good["status"] == "result" and good["rvef_lower"] < good["rvef"] < good["rvef_upper"]
    # the same numbers as the service's assessor gives for the same file
    answer = Assessor(small_model).assess([next(io.read(exports / "good_muse.xml"))])[0]
    assert good["rvef"] == answer["targets"]["rvef"]["value"]
    assert good["rv_dysfunction_flag"] == answer["phenotypes"]["rv_dysfunction"]["flag"]
    written = sorted(p.name for p in pages.iterdir())
    assert len(written) == 3  # one per readable ECG
    page = next(p for p in pages.iterdir() if "good_muse" in p.name).read_text()
    assert "data:image/png;base64," in page and "size: A4 landscape" in page and "rvef" in page


def test_predict_takes_a_store_or_files_not_both(small_model, tmp_path):
    runner = CliRunner()
    both = runner.invoke(app, ["predict", str(small_model), "--store", str(tmp_path), "--input", str(tmp_path)])
    assert both.exit_code == 2 and "either --store or --input" in both.output
    neither = runner.invoke(app, ["predict", str(small_model)])
    assert neither.exit_code == 2
    wrong = runner.invoke(app, ["predict", str(small_model), "--input", str(tmp_path),
                                "--out", str(tmp_path / "x.txt")])
    assert wrong.exit_code == 2 and ".csv" in wrong.output
