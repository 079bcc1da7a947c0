"""Lead order and electrode placement at ingest: swapped labels, reversed electrodes, name-less arrays."""

import shutil

import numpy as np
import pytest

from ecgscope import io
from ecgscope.leads import STANDARD_LEADS
from ecgscope.signal.leadcheck import (
    REVERSALS,
    limb_identity_problem,
    limb_reversal,
    reverse_limb_electrodes,
)
from ecgscope.simulate import simulate_cohort
from ecgscope.store import Store, ingest
from tests.conftest import SHARED_DATA

PTBXL = [f"HR0600{k}" for k in range(5)]
MIMIC_ORDER = ("I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6")


def _real(name):
    return io.load(next(io.discover(SHARED_DATA / "cinc2021" / f"{name}.hea"))).to_standard()


@pytest.mark.parametrize("kind", REVERSALS)
def test_a_reversal_keeps_the_limb_identities_and_undoes_itself(kind):
    x = _real("HR06000").signal
    reversed_ = reverse_limb_electrodes(x, kind)
    assert limb_identity_problem(reversed_, STANDARD_LEADS) is None  # the machine derived them: they still hold
    np.testing.assert_allclose(reverse_limb_electrodes(reversed_, kind), x, atol=1e-6)
    np.testing.assert_array_equal(reversed_[6:], x[6:])  # chest leads untouched


def test_an_la_ra_reversal_of_real_ecgs_is_caught_and_the_originals_are_not_flagged():
    records = [_real(name) for name in PTBXL]
    assert [limb_reversal(r.signal, r.fs) for r in records] == [None] * len(records)
    caught = [limb_reversal(reverse_limb_electrodes(r.signal, "LA/RA"), r.fs) for r in records]
    assert caught.count("LA/RA") >= 4, caught


def test_reversals_in_a_simulated_cohort_are_flagged_at_ingest_against_the_truth(tmp_path):
    from ecgscope.simulate.export import write_cohort

    cohort = simulate_cohort("ukb", n=60, seed=5, electrode_reversal=0.5)
    files = write_cohort(cohort, tmp_path / "sim", formats=("wfdb",), progress=False, workers=1)
    ingest([files / "wfdb"], tmp_path / "store", fs=100, rate=100, workers=1, identifiers="keep", progress=False)
    table = Store(tmp_path / "store").manifest.merge(
        cohort.ecgs[["ecg_id", "electrode_reversal"]].astype({"ecg_id": str}), on="ecg_id")
    flagged = table["lead_warning"].str.extract(r"possible (\S+) limb", expand=False).fillna("none")
    placed = table["electrode_reversal"] == "none"
    assert (flagged[placed] != "none").mean() <= 0.1
    easy = table["electrode_reversal"].isin(["LA/RA", "RA/LL"])
    assert easy.sum() >= 15 and (flagged[easy] == table["electrode_reversal"][easy]).mean() >= 0.6


def test_swapped_avl_and_avf_labels_in_a_wfdb_header_are_quarantined_naming_the_pair(tmp_path):
    for name in ("HR06001", "HR06002"):
        for suffix in (".hea", ".mat"):
            shutil.copy(SHARED_DATA / "cinc2021" / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    header = tmp_path / "HR06001.hea"
    text = header.read_text().replace(" aVL", " _X_").replace(" aVF", " aVL").replace(" _X_", " aVF")
    header.write_text(text)
    report = ingest([tmp_path / "HR06001.hea", tmp_path / "HR06002.hea"], tmp_path / "store", workers=1,
                    progress=False)
    store = Store(tmp_path / "store")
    assert report.added == 1 and report.rejected == 1
    reason = store.quarantine["reason"].iloc[0]
    assert "HR06001" in store.quarantine["source"].iloc[0] and "swapping aVL and aVF" in reason
    assert "--input-leads" in reason


def test_a_name_less_array_in_mimic_order_is_caught_and_mapped_when_its_order_is_declared(tmp_path):
    ecg = _real("HR06003")
    np.save(tmp_path / "mimic.npy", ecg.signal[[STANDARD_LEADS.index(n) for n in MIMIC_ORDER]])
    assumed = ingest([tmp_path / "mimic.npy"], tmp_path / "assumed", workers=1, progress=False, input_fs=500,
                     input_units="mV")
    assert assumed.added == 0
    assert "swapping aVL and aVF" in Store(tmp_path / "assumed").quarantine["reason"].iloc[0]
    declared = ingest([tmp_path / "mimic.npy"], tmp_path / "declared", workers=1, progress=False, input_fs=500,
                      input_units="mV", input_leads=MIMIC_ORDER)
    assert declared.added == 1
    stored = Store(tmp_path / "declared").read(0)
    for lead in ("aVL", "aVF"):
        k = STANDARD_LEADS.index(lead)
        np.testing.assert_allclose(stored[k], ecg.signal[k], atol=2e-3)  # float16 storage


def test_cli_takes_the_input_lead_order_and_names_the_options_arrays_need(tmp_path):
    from typer.testing import CliRunner

    from ecgscope.cli import app

    ecg = _real("HR06003")
    np.save(tmp_path / "mimic.npy", ecg.signal[[STANDARD_LEADS.index(n) for n in MIMIC_ORDER]])
    plain = CliRunner().invoke(app, ["ingest", str(tmp_path / "mimic.npy"), "--store", str(tmp_path / "a")])
    assert plain.exit_code != 0
    reason = Store(tmp_path / "a").quarantine["reason"].iloc[0]
    assert "--input-fs" in reason and "--input-units" in reason and "--input-leads" in reason
    declared = CliRunner().invoke(app, ["ingest", str(tmp_path / "mimic.npy"), "--store", str(tmp_path / "b"),
                                        "--input-fs", "500", "--input-units", "mV", "--input-leads",
                                        ",".join(MIMIC_ORDER)])
    assert declared.exit_code == 0, declared.output
    assert len(Store(tmp_path / "b")) == 1


def test_a_lone_mat_file_says_it_needs_its_header(tmp_path):
    shutil.copy(SHARED_DATA / "cinc2021" / "E07500.mat", tmp_path / "E07500.mat")
    ingest([tmp_path / "E07500.mat"], tmp_path / "store", workers=1, progress=False)
    reason = Store(tmp_path / "store").quarantine["reason"].iloc[0]
    assert "E07500.mat" in reason and "E07500.hea" in reason


def test_real_records_keep_the_identities_except_ludbs_which_no_swap_explains():
    paths = sorted((SHARED_DATA / "cinc2021").glob("*.hea")) + [SHARED_DATA / "ptbdb" / "s0010_re.hea"]
    for path in paths:
        ecg = io.load(next(io.discover(path)))
        assert limb_identity_problem(ecg.signal, ecg.leads) is None, path.name  # nothing real is quarantined
    ludb = io.load(next(io.discover(SHARED_DATA / "ludb" / "1.hea")))
    problem = limb_identity_problem(ludb.signal, ludb.leads)
    assert problem is not None and problem.swapped is None  # stored with a warning, not quarantined
