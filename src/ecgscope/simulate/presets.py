"""Cohort presets that mirror the two reference studies (REFERENCE.md section 1).

Each preset fixes the population (age, sex, disease strata, comorbidities), the paired imaging, the
recording (rate, length, noise, mains frequency), the follow-up, and which file formats to write.
Stratum prevalences were tuned (``benchmarks/simulator_calibration.py``) so that the *measured*
phenotype prevalences land near the published ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ecgscope.errors import UnknownPresetError

STRATA = ("normal", "rv_pressure", "rv_volume", "lv_systolic", "hfpef_lvh")


@dataclass(frozen=True)
class Preset:
    """Everything that distinguishes one simulated cohort from another."""

    name: str
    description: str
    n: int
    age_mean: float = 60.0
    age_sd: float = 12.0
    age_range: tuple[float, float] = (18.0, 95.0)
    female_fraction: float = 0.5
    #: Prevalence of each disease stratum; the remainder is "normal".
    strata: dict[str, float] = field(default_factory=dict)
    hypertension_rate: float = 0.3
    ckd_rate: float = 0.05
    #: "mri", "echo" or None (no imaging table).
    imaging: str | None = "mri"
    #: How the ECG date relates to the imaging date: ("around", days) = within +-days;
    #: ("before", days) = 0..days before the imaging study (the EchoNext rule).
    imaging_gap: tuple[str, int] = ("around", 30)
    followup_years: tuple[float, float] = (2.0, 6.0)
    yearly_loss_to_followup: float = 0.02
    #: Multipliers on the baseline cause-specific hazards (per year).
    hf_hazard: float = 0.004
    other_hazard: float = 0.008
    #: Noise tiers (SNR in dB) and their probabilities.
    snr_tiers: dict[float, float] = field(default_factory=lambda: {24.0: 0.6, 18.0: 0.3, 12.0: 0.1})
    mains_hz: float = 50.0
    #: Relative weights of the noise kinds: baseline wander, powerline, EMG, electrode motion.
    noise_mix: tuple[float, float, float, float] = (1.0, 0.3, 0.6, 0.3)
    fs: float = 500.0
    duration_s: float = 10.0
    #: Mean number of extra ECGs per patient (Poisson), taken on other dates.
    extra_ecgs: float = 0.0
    formats: tuple[str, ...] = ("wfdb",)
    start_year: int = 2012


_PRESETS: dict[str, Preset] = {}


def _add(preset: Preset) -> None:
    _PRESETS[preset.name] = preset


_add(Preset(
    name="ukb",
    description="Population cohort with cardiac MRI (UK Biobank-like): RV dysfunction ~1 %, dilation ~1.6 %.",
    n=42_938, age_mean=63.0, age_sd=7.5, age_range=(45.0, 82.0), female_fraction=0.52,
    strata={"rv_pressure": 0.006, "rv_volume": 0.021, "lv_systolic": 0.012, "hfpef_lvh": 0.04},
    hypertension_rate=0.25, ckd_rate=0.03, imaging="mri", imaging_gap=("around", 14),
    followup_years=(3.0, 8.0), hf_hazard=0.0015, other_hazard=0.006,
    snr_tiers={24.0: 0.7, 18.0: 0.3}, mains_hz=50.0, start_year=2014,
))
_add(Preset(
    name="hospital",
    description="Hospital system with clinical cardiac MRI: RV dysfunction ~18 %, dilation ~11 %.",
    n=3_019, age_mean=55.0, age_sd=16.0, age_range=(18.0, 92.0), female_fraction=0.42,
    strata={"rv_pressure": 0.155, "rv_volume": 0.087, "lv_systolic": 0.17, "hfpef_lvh": 0.10},
    hypertension_rate=0.40, ckd_rate=0.10, imaging="mri", imaging_gap=("around", 90),
    followup_years=(0.5, 4.5), hf_hazard=0.012, other_hazard=0.02,
    snr_tiers={24.0: 0.5, 18.0: 0.35, 12.0: 0.15}, mains_hz=60.0, start_year=2015,
))
_add(Preset(
    name="prospective",
    description="Prospective 4-month validation at the hospital: RV dysfunction ~16 %, dilation ~4 %.",
    n=115, age_mean=57.0, age_sd=15.0, age_range=(18.0, 92.0), female_fraction=0.42,
    strata={"rv_pressure": 0.122, "rv_volume": 0.005, "lv_systolic": 0.19, "hfpef_lvh": 0.10},
    hypertension_rate=0.40, ckd_rate=0.10, imaging="mri", imaging_gap=("around", 30),
    followup_years=(0.3, 1.0), hf_hazard=0.012, other_hazard=0.02,
    snr_tiers={24.0: 0.5, 18.0: 0.35, 12.0: 0.15}, mains_hz=60.0, start_year=2023,
))
_add(Preset(
    name="echo-dev",
    description="Echo development cohort for diastolic phenotypes (~1,000 with echo).",
    n=1_012, age_mean=62.0, age_sd=13.0, female_fraction=0.48,
    strata={"rv_pressure": 0.04, "rv_volume": 0.02, "lv_systolic": 0.08, "hfpef_lvh": 0.18},
    hypertension_rate=0.45, ckd_rate=0.10, imaging="echo", imaging_gap=("before", 365),
    followup_years=(1.0, 6.0), hf_hazard=0.006, other_hazard=0.015,
    snr_tiers={24.0: 0.6, 18.0: 0.3, 12.0: 0.1}, mains_hz=60.0, start_year=2016,
))
_add(Preset(
    name="echo-external",
    description="External echo test cohort from another site: different device noise and case mix (~950).",
    n=956, age_mean=58.0, age_sd=14.0, female_fraction=0.55,
    strata={"rv_pressure": 0.05, "rv_volume": 0.03, "lv_systolic": 0.06, "hfpef_lvh": 0.22},
    hypertension_rate=0.50, ckd_rate=0.12, imaging="echo", imaging_gap=("before", 365),
    followup_years=(1.0, 6.0), hf_hazard=0.006, other_hazard=0.015,
    snr_tiers={24.0: 0.4, 18.0: 0.4, 12.0: 0.2}, mains_hz=50.0, noise_mix=(1.5, 0.6, 1.0, 0.6),
    start_year=2017,
))
_add(Preset(
    name="echonext",
    description="EchoNext-like: 250 Hz ECGs within a year before an echo, structural heart disease flags.",
    n=2_000, age_mean=60.0, age_sd=16.0, female_fraction=0.45,
    strata={"rv_pressure": 0.08, "rv_volume": 0.05, "lv_systolic": 0.14, "hfpef_lvh": 0.15},
    hypertension_rate=0.45, ckd_rate=0.12, imaging="echo", imaging_gap=("before", 365),
    followup_years=(1.0, 5.0), hf_hazard=0.008, other_hazard=0.018, fs=250.0, extra_ecgs=1.5,
    formats=("echonext",), mains_hz=60.0, start_year=2008,
))
_add(Preset(
    name="code15",
    description="CODE-15%-like: 400 Hz ECGs with death and follow-up only (no imaging).",
    n=5_000, age_mean=52.0, age_sd=17.0, age_range=(16.0, 98.0), female_fraction=0.60,
    strata={"rv_pressure": 0.02, "rv_volume": 0.01, "lv_systolic": 0.03, "hfpef_lvh": 0.12},
    hypertension_rate=0.35, ckd_rate=0.06, imaging=None, followup_years=(3.5, 6.5),
    hf_hazard=0.0056, other_hazard=0.010, fs=400.0, extra_ecgs=0.5, formats=("code15",),
    mains_hz=60.0, snr_tiers={24.0: 0.5, 18.0: 0.35, 12.0: 0.15}, start_year=2010,
))


def list_presets() -> list[str]:
    """Names of the available cohort presets."""
    return sorted(_PRESETS)


def get_preset(name: str, **overrides) -> Preset:
    """Return preset ``name``, with any field replaced by ``overrides`` (``n=500``, ``fs=250``)."""
    try:
        preset = _PRESETS[name]
    except KeyError:
        raise UnknownPresetError(
            f"unknown preset {name!r}; choose one of: {', '.join(list_presets())}"
        ) from None
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return replace(preset, **overrides) if overrides else preset
