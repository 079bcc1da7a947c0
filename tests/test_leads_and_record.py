import numpy as np
import pytest

from ecgscope import ECG, STANDARD_LEADS, check_ecg
from ecgscope.errors import InvalidSignalError, LeadMismatchError
from ecgscope.leads import (
    DOWER,
    INVERSE_DOWER,
    derive_limb_leads,
    dower,
    eight_from_twelve,
    inverse_dower,
    normalize_lead_name,
    normalize_lead_names,
    twelve_from_eight,
)


@pytest.mark.parametrize("raw", ["aVF", "avf", "AVF", " aVf "])
def test_avf_spellings_are_one_lead(raw):
    assert normalize_lead_name(raw) == "aVF"


@pytest.mark.parametrize(("raw", "canonical"), [("i", "I"), ("ii", "II"), ("III", "III"), ("v1", "V1"),
                                                ("V6", "V6"), ("avr", "aVR"), ("AVL", "aVL"), ("vx", "vx")])
def test_lead_names_normalise(raw, canonical):
    assert normalize_lead_name(raw) == canonical


def test_unknown_and_duplicate_leads_are_rejected():
    with pytest.raises(LeadMismatchError, match="unknown lead name 'V7'"):
        normalize_lead_name("V7")
    with pytest.raises(LeadMismatchError, match="more than once"):
        normalize_lead_names(["I", "i", "II"])


def test_limb_leads_follow_einthoven_and_goldberger():
    rng = np.random.default_rng(0)
    lead_i, lead_ii = rng.normal(size=100), rng.normal(size=100)
    d = derive_limb_leads(lead_i, lead_ii)
    np.testing.assert_allclose(lead_i + d["III"], lead_ii)  # Einthoven: I + III = II
    np.testing.assert_allclose(d["aVR"] + d["aVL"] + d["aVF"], 0, atol=1e-12)  # Goldberger
    np.testing.assert_allclose(d["aVF"], (lead_ii + d["III"]) / 2)


def test_twelve_from_eight_roundtrip_and_order():
    eight = np.random.default_rng(1).normal(size=(3, 8, 50))
    twelve = twelve_from_eight(eight)
    assert twelve.shape == (3, 12, 50)
    np.testing.assert_array_equal(eight_from_twelve(twelve), eight)
    np.testing.assert_allclose(twelve[:, STANDARD_LEADS.index("III")], eight[:, 1] - eight[:, 0])


def test_dower_and_inverse_dower_are_near_inverses():
    # The published inverse Dower is a regression estimate, not an exact inverse: close to identity.
    np.testing.assert_allclose(INVERSE_DOWER @ DOWER, np.eye(3), atol=0.12)
    vcg = np.random.default_rng(2).normal(size=(3, 200))
    twelve = dower(vcg)
    assert twelve.shape == (12, 200)
    np.testing.assert_allclose(twelve[STANDARD_LEADS.index("V1")], DOWER[2] @ vcg)
    back = inverse_dower(twelve)
    for axis in range(3):
        assert np.corrcoef(back[axis], vcg[axis])[0, 1] > 0.97


def test_ecg_record_coerces_and_validates():
    ecg = ECG(np.ones((2, 10), dtype=np.float64), 500, ["i", "avf"], ecg_id="x")
    assert ecg.signal.dtype == np.float32 and ecg.leads == ("I", "aVF")
    assert ecg.duration_s == pytest.approx(0.02)
    bad = np.ones((2, 10))
    bad[1, 3] = np.nan
    with pytest.raises(InvalidSignalError, match="non-finite samples.*aVF"):
        ECG(bad, 500, ["I", "aVF"], ecg_id="rec7")
    with pytest.raises(InvalidSignalError, match="sampling rate 5 Hz"):
        check_ecg(np.ones((1, 10)), 5, ["I"])
    with pytest.raises(LeadMismatchError, match="transposed"):
        check_ecg(np.ones((10, 2)), 500, ["I", "II"])


def test_to_standard_derives_missing_limb_leads():
    rng = np.random.default_rng(3)
    eight = rng.normal(size=(8, 100)).astype(np.float32)
    ecg = ECG(eight, 500, ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]).to_standard()
    assert ecg.leads == STANDARD_LEADS
    np.testing.assert_allclose(ecg.lead("aVR"), -(eight[0] + eight[1]) / 2, rtol=1e-6)
    with pytest.raises(LeadMismatchError, match="missing"):
        ECG(eight[:3], 500, ["I", "II", "V1"]).to_standard()
