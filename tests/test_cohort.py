"""Linking ECGs to imaging and outcomes, labels, patient-level splits."""

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import StratifiedGroupKFold
from typer.testing import CliRunner

from ecgscope.cli import app
from ecgscope.cohort import (
    CohortError,
    check_no_leakage,
    derive_labels,
    link_imaging,
    patient_kfold,
    patient_split,
    time_to_event,
)
from ecgscope.cohort.split import GroupedStratifiedKFold
from ecgscope.store import Store, ingest
from ecgscope.studies.transfer import keep_training_patients


def _manifest(rows):
    return pd.DataFrame(rows, columns=["row", "ecg_id", "patient_id", "acquired_at"]).assign(
        acquired_at=lambda d: pd.to_datetime(d.acquired_at))


def test_nearest_ecg_inside_the_window_wins():
    manifest = _manifest([
        (0, "a", "1", "2020-01-01"), (1, "b", "1", "2020-03-01"), (2, "c", "1", "2020-03-20"),
        (3, "d", "2", "2019-01-01"), (4, "e", "3", "2020-06-10"), (5, "f", "3", "2020-06-20"),
    ])
    studies = pd.DataFrame({"patient_id": [1, 2, 3], "study_date": ["2020-03-15", "2020-03-15", "2020-06-15"],
                            "rvef": [35.0, 50.0, 60.0]})
    pairs = link_imaging(manifest, studies, days_before=30, days_after=30)
    assert list(pairs.ecg_id) == ["c", "e"]  # patient 2 has no ECG in the window; ties go to the earlier ECG
    assert pairs.gap_days.tolist() == pytest.approx([5.0, -5.0])
    before_only = link_imaging(manifest, studies, days_before=365, days_after=0)  # the EchoNext rule
    assert list(before_only.ecg_id) == ["b", "e"]


def test_missing_columns_are_named():
    with pytest.raises(CohortError, match="lacks column.*study_date"):
        link_imaging(_manifest([(0, "a", "1", "2020-01-01")]), pd.DataFrame({"patient_id": [1]}))


def test_time_to_event_from_both_outcome_schemas():
    pairs = pd.DataFrame({"patient_id": ["1", "2"], "ecg_time": pd.to_datetime(["2020-01-01", "2020-07-01"])})
    follow = pd.DataFrame({"patient_id": [1, 2], "index_date": pd.to_datetime(["2020-01-01", "2020-01-01"]),
                           "followup_years": [2.0, 3.0], "event": [1, 0]})
    out = time_to_event(pairs, follow)
    assert out.time_years.tolist() == pytest.approx([2.0, 3.0 - 182 / 365.25], abs=1e-3)
    dates = pd.DataFrame({"patient_id": [1, 2], "event_date": pd.to_datetime(["2021-01-01", None]),
                          "censor_date": pd.to_datetime(["2023-01-01", "2022-07-01"])})
    out = time_to_event(pairs, dates)
    assert out.event.tolist() == [1, 0]
    assert out.time_years.tolist() == pytest.approx([366 / 365.25, 730 / 365.25], abs=1e-3)


def test_labels_from_named_and_inline_thresholds():
    table = pd.DataFrame({"rvef": [38.0, 40.0, 41.0, np.nan], "rvedvi": [130.0, 120.0, 90.0, 121.0]})
    out = derive_labels(table, ["rv_dysfunction", "rv_dilation", "severe=rvef<39"])
    assert out.rv_dysfunction.tolist()[:3] == [1.0, 1.0, 0.0] and np.isnan(out.rv_dysfunction.iloc[3])
    assert out.rv_dilation.tolist() == [1.0, 0.0, 0.0, 1.0]
    assert out.severe.tolist()[:3] == [1.0, 0.0, 0.0]
    with pytest.raises(CohortError, match="unknown label"):
        derive_labels(table, ["nonsense"])


def test_splits_keep_patients_together_and_balance_strata():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"patient_id": rng.integers(0, 600, 2000), "y": rng.random(2000) < 0.15})
    split = patient_split(table, (0.7, 0.1, 0.2), stratify="y", seed=1)
    check_no_leakage(table.assign(split=split))
    shares = split.value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.7, abs=0.05) and shares["test"] == pytest.approx(0.2, abs=0.05)
    assert table.groupby(split).y.mean().between(0.1, 0.2).all()
    folds = patient_kfold(table, 5, "y", seed=1)
    assert set(folds) == set(range(5)) and table.assign(f=folds).groupby("patient_id").f.nunique().eq(1).all()
    leaky = table.assign(split=np.where(np.arange(2000) % 2, "train", "test"))
    with pytest.raises(CohortError, match="more than one split"):
        check_no_leakage(leaky)


def test_a_rare_class_is_split_as_far_as_it_goes_without_a_warning(recwarn):
    # 115 patients, 7 positive, in twentieths: scikit-learn warns that 7 < 20 folds; the split says nothing,
    # since it never promised every fold a positive, and still puts positives in training and in test
    table = pd.DataFrame({"patient_id": np.arange(115), "y": np.arange(115) % 19 == 0})
    split = patient_split(table, (0.6, 0.2, 0.2), stratify="y", seed=0)
    assert not [w for w in recwarn if "least populated" in str(w.message)]
    positives = table.groupby(split).y.sum()
    assert positives.sum() == 7 and positives["train"] >= 3 and positives["test"] >= 1


@pytest.mark.filterwarnings("ignore:The least populated class")
def test_grouped_stratified_folds_are_scikit_learns_exactly():
    # the fold choice is a greedy argmin over floating-point spreads, ties broken by fold size: a sum taken in
    # another order flips near-ties, so this holds the vectorised choice to scikit-learn's, fold for fold
    for case in range(60):
        rng = np.random.default_rng(case)
        n, k, classes = int(rng.integers(30, 200)), int(rng.choice([3, 5, 20])), int(rng.choice([1, 2, 3]))
        groups = rng.integers(0, max(k, int(n / rng.uniform(1, 3))), n)
        y = (rng.random(n) < rng.uniform(0.05, 0.3)).astype(int) if classes == 2 else rng.integers(0, classes, n)
        seed = int(rng.integers(0, 100))
        try:
            expected = [t.tolist() for _, t in
                        StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(y, y, groups)]
        except ValueError:  # more folds than patients, or than members of every class
            continue
        got = [t.tolist() for _, t in GroupedStratifiedKFold(k, shuffle=True, random_state=seed).split(y, y, groups)]
        assert got == expected, f"case {case}: n={n}, k={k}, {classes} classes"


def test_learning_curve_keeps_n_training_patients_and_leaves_val_and_test():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"patient_id": rng.integers(0, 300, 900), "y": rng.random(900) < 0.2})
    table["split"] = patient_split(table, (0.6, 0.2, 0.2), stratify="y", seed=0)
    smaller = keep_training_patients(table, 50, seed=3)
    assert smaller.loc[smaller.split == "train", "patient_id"].nunique() == 50
    assert (smaller.split == "unused").sum() == (table.split == "train").sum() - (smaller.split == "train").sum()
    for name in ("val", "test"):
        assert smaller.index[smaller.split == name].equals(table.index[table.split == name])
    check_no_leakage(smaller)  # a patient's ECGs move together
    assert not keep_training_patients(table, 50, seed=4).equals(smaller)
    with pytest.raises(CohortError, match="asked for 10000 training patients"):
        keep_training_patients(table, 10_000, seed=0)


def test_cohort_build_on_a_simulated_cohort(tmp_path, hospital_dir, hospital_cohort):
    ingest([hospital_dir / "wfdb"], tmp_path / "store", workers=1, identifiers="keep", progress=False)
    out = tmp_path / "cohort.parquet"
    result = CliRunner().invoke(app, [
        "cohort", "build", "--store", str(tmp_path / "store"),
        "--imaging", str(hospital_dir / "measurements" / "mri.parquet"),
        "--outcomes", str(hospital_dir / "outcomes.parquet"), "--days-before", "90", "--days-after", "90",
        "--label", "rv_dysfunction", "--label", "rv_dilation", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    # every MRI study is paired with the simulator's own index ECG of that patient
    truth = hospital_cohort.ecgs[hospital_cohort.ecgs.is_index]
    assert dict(zip(table.patient_id, table.ecg_id, strict=True)) == {
        str(p): str(e) for p, e in zip(truth.patient_id, truth.ecg_id, strict=True)}
    expected = hospital_cohort.outcomes.set_index("patient_id").followup_years
    got = table.set_index(table.patient_id.astype(int)).time_years
    np.testing.assert_allclose(got.loc[expected.index], expected, atol=1 / 365)  # ECG time of day only
    assert set(table.split) <= {"train", "val", "test"}
    assert len(Store(tmp_path / "store")) == len(table)


def test_cohort_build_says_what_it_left_unpaired_and_the_window_that_pairs_it(tmp_path):
    """The default +-30 days leaves most clinical MRI studies out; the command says how many, and the window
    it names pairs every one of them. Overwriting the table needs --overwrite; too few patients to split is
    said plainly."""
    from ecgscope.cohort import build_cohort
    from ecgscope.simulate import simulate_cohort
    from ecgscope.simulate.export import write_cohort

    files = write_cohort(simulate_cohort("hospital", n=150, seed=5), tmp_path / "sim", formats=("wfdb",),
                         progress=False, workers=1)
    ingest([files / "wfdb"], tmp_path / "store", fs=100, workers=1, identifiers="keep", progress=False)
    mri = files / "measurements" / "mri.parquet"
    with pytest.raises(CohortError, match="cannot be split 20 ways by patient; at least 20 are needed"):
        build_cohort(tmp_path / "store", pd.read_parquet(mri).head(12), days_before=365, days_after=365)
    cohort = build_cohort(tmp_path / "store", mri)
    n_studies = len(pd.read_parquet(mri))
    assert 0 < len(cohort.table) < n_studies and len(cohort.table) + len(cohort.unpaired) == n_studies
    gaps = cohort.unpaired.nearest_ecg_days
    assert gaps.notna().all() and (gaps.abs() > 30).all()  # every patient has an ECG, outside the window
    out = tmp_path / "cohort.parquet"
    result = CliRunner().invoke(app, ["cohort", "build", "--store", str(tmp_path / "store"), "--imaging", str(mri),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    words = " ".join(result.output.split())
    assert f"{len(cohort.table):,} of {n_studies:,} imaging studies paired" in words
    assert f"{len(cohort.unpaired):,} left unpaired" in words
    before, after = (int(words.split(f"--days-{side} ")[1].split()[0].rstrip(")")) for side in ("before", "after"))
    assert before == int(np.ceil(max(0, -gaps.min()))) and after == int(np.ceil(max(0, gaps.max())))
    again = CliRunner().invoke(app, ["cohort", "build", "--store", str(tmp_path / "store"), "--imaging", str(mri),
                                     "--out", str(out), "--days-before", str(before), "--days-after", str(after)])
    assert again.exit_code == 2 and "pass --overwrite" in again.output
    again = CliRunner().invoke(app, ["cohort", "build", "--store", str(tmp_path / "store"), "--imaging", str(mri),
                                     "--out", str(out), "--days-before", str(before), "--days-after", str(after),
                                     "--overwrite"])
    assert again.exit_code == 0, again.output
    assert len(pd.read_parquet(out)) == n_studies and "left unpaired" not in again.output
    pd.testing.assert_frame_equal(pd.read_parquet(out), build_cohort(tmp_path / "store", mri, days_before=before,
                                                                     days_after=after).table, check_dtype=False)


def test_covariates_code_sex_as_male_or_refuse_what_they_cannot_code():
    from ecgscope.cohort import CohortError, covariate_values

    table = pd.DataFrame({"age": [50, 60, 70], "sex": ["F", "M", None]})
    values = covariate_values(table, ["age", "male"])
    assert values["male"].tolist()[:2] == [0.0, 1.0] and np.isnan(values["male"].iloc[2])
    assert covariate_values(table.assign(sex=[0, 1, 1]), ["male"])["male"].tolist() == [0.0, 1.0, 1.0]
    with pytest.raises(CohortError, match="'X'"):
        covariate_values(table.assign(sex=["F", "M", "X"]), ["male"])
    with pytest.raises(CohortError, match="columns are"):
        covariate_values(table, ["bmi"])
