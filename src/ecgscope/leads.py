"""Lead names, the canonical 12-lead order, and lead algebra (Einthoven, Goldberger, Dower).

This is the only module that knows lead positions; everything else asks it by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ecgscope.errors import LeadMismatchError

STANDARD_LEADS: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
)
#: The eight independent leads a 12-lead ECG is built from (the others are sums of I and II).
INDEPENDENT_LEADS: tuple[str, ...] = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
LIMB_DERIVED_LEADS: tuple[str, ...] = ("III", "aVR", "aVL", "aVF")
#: Frank orthogonal leads, as some databases (PTB) store them beside the 12.
FRANK_LEADS: tuple[str, ...] = ("vx", "vy", "vz")

_CANONICAL = {name.upper(): name for name in STANDARD_LEADS + FRANK_LEADS}
_ALIASES = {
    "D1": "I", "D2": "II", "D3": "III", "LEAD_I": "I", "LEAD_II": "II", "LEAD_III": "III",
    "AVR": "aVR", "AVL": "aVL", "AVF": "aVF", "X": "vx", "Y": "vy", "Z": "vz",
}

# Dower transform: lead = DOWER @ [X, Y, Z] for the rows I, II, V1..V6 (REFERENCE.md section 4).
DOWER = np.array(
    [
        [0.632, -0.235, 0.059],
        [0.235, 1.066, -0.132],
        [-0.515, 0.157, -0.917],
        [0.044, 0.164, -1.387],
        [0.882, 0.098, -1.277],
        [1.213, 0.127, -0.601],
        [1.125, 0.127, -0.086],
        [0.831, 0.076, 0.230],
    ],
    dtype=np.float64,
)
# Inverse Dower: [X, Y, Z] = INVERSE_DOWER @ leads, columns V1..V6, I, II.
_INVERSE_DOWER_V_FIRST = np.array(
    [
        [-0.172, -0.074, 0.122, 0.231, 0.239, 0.194, 0.156, -0.010],
        [0.057, -0.019, -0.106, -0.022, 0.041, 0.048, -0.227, 0.887],
        [-0.229, -0.310, -0.246, -0.063, 0.055, 0.108, 0.022, 0.102],
    ],
    dtype=np.float64,
)
#: The same matrix with its columns in INDEPENDENT_LEADS order (I, II, V1..V6).
INVERSE_DOWER = np.concatenate([_INVERSE_DOWER_V_FIRST[:, 6:], _INVERSE_DOWER_V_FIRST[:, :6]], axis=1)


def normalize_lead_name(name: str) -> str:
    """Return the canonical spelling of a lead name (``'avf'``, ``'AVF'`` and ``'aVF'`` give ``'aVF'``)."""
    key = str(name).strip().upper().replace(" ", "").replace("-", "_")
    if key.startswith("LEAD") and not key.startswith("LEAD_"):
        key = "LEAD_" + key[4:]
    if key in _ALIASES:
        return _ALIASES[key]
    if key in _CANONICAL:
        return _CANONICAL[key]
    raise LeadMismatchError(
        f"unknown lead name {name!r}; expected one of {', '.join(STANDARD_LEADS)} "
        "(any capitalisation) or a Frank lead vx/vy/vz"
    )


def normalize_lead_names(names: Iterable[str]) -> list[str]:
    """Normalise a list of lead names and reject duplicates (``['i', 'I']`` is one lead twice)."""
    out = [normalize_lead_name(n) for n in names]
    seen: set[str] = set()
    dupes = sorted({n for n in out if n in seen or seen.add(n)})
    if dupes:
        raise LeadMismatchError(f"lead(s) {', '.join(dupes)} appear more than once")
    return out


def lead_index(leads: Sequence[str], name: str) -> int:
    """Position of lead ``name`` (any spelling) in ``leads``."""
    target = normalize_lead_name(name)
    for i, lead in enumerate(leads):
        if normalize_lead_name(lead) == target:
            return i
    raise LeadMismatchError(f"lead {target} is not among {list(leads)}")


def derive_limb_leads(lead_i: np.ndarray, lead_ii: np.ndarray) -> dict[str, np.ndarray]:
    """Derive III, aVR, aVL and aVF from I and II (Einthoven's and Goldberger's relations, exact)."""
    return {
        "III": lead_ii - lead_i,
        "aVR": -(lead_i + lead_ii) / 2,
        "aVL": lead_i - lead_ii / 2,
        "aVF": lead_ii - lead_i / 2,
    }


def twelve_from_eight(eight: np.ndarray) -> np.ndarray:
    """Expand (..., 8, samples) in I, II, V1..V6 order to (..., 12, samples) in the standard order."""
    eight = np.asarray(eight)
    if eight.shape[-2] != 8:
        raise LeadMismatchError(f"expected 8 independent leads on axis -2, got shape {eight.shape}")
    lead_i, lead_ii = eight[..., 0, :], eight[..., 1, :]
    limb = derive_limb_leads(lead_i, lead_ii)
    rows = [lead_i, lead_ii, limb["III"], limb["aVR"], limb["aVL"], limb["aVF"]]
    rows += [eight[..., k, :] for k in range(2, 8)]
    return np.stack(rows, axis=-2)


def eight_from_twelve(twelve: np.ndarray) -> np.ndarray:
    """Select the eight independent leads (I, II, V1..V6) from a standard-order 12-lead array."""
    twelve = np.asarray(twelve)
    if twelve.shape[-2] != 12:
        raise LeadMismatchError(f"expected 12 leads on axis -2, got shape {twelve.shape}")
    idx = [STANDARD_LEADS.index(n) for n in INDEPENDENT_LEADS]
    return twelve[..., idx, :]


def dower(vcg: np.ndarray) -> np.ndarray:
    """Project a vectorcardiogram (..., 3, samples; X, Y, Z in mV) to the 12 standard leads."""
    vcg = np.asarray(vcg)
    if vcg.shape[-2] != 3:
        raise LeadMismatchError(f"a vectorcardiogram has 3 axes on axis -2, got shape {vcg.shape}")
    eight = np.einsum("lk,...ks->...ls", DOWER.astype(vcg.dtype, copy=False), vcg)
    return twelve_from_eight(eight)


def inverse_dower(twelve: np.ndarray) -> np.ndarray:
    """Estimate the vectorcardiogram (..., 3, samples) from standard-order 12-lead signals."""
    eight = eight_from_twelve(twelve)
    return np.einsum("kl,...ls->...ks", INVERSE_DOWER.astype(eight.dtype, copy=False), eight)
