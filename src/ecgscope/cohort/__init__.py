"""Cohorts: link ECGs to imaging and outcomes (DuckDB SQL), derive labels (thresholds, ASE diastolic
algorithms, phenogroups), split by patient; :func:`build_cohort` runs the whole chain."""

from ecgscope.cohort.build import Cohort, build_cohort
from ecgscope.cohort.diastolic import add_diastolic_labels, ase2016, ase2025
from ecgscope.cohort.labels import RULES, derive_labels, parse_rule
from ecgscope.cohort.link import (
    CohortError,
    covariate_values,
    link_imaging,
    load_table,
    nearest_ecgs,
    time_to_event,
)
from ecgscope.cohort.phenogroups import ECHO_FEATURES, Phenogroups
from ecgscope.cohort.split import carve_calibration, check_no_leakage, patient_kfold, patient_split

__all__ = ["ECHO_FEATURES", "RULES", "Cohort", "CohortError", "Phenogroups", "add_diastolic_labels", "ase2016",
           "ase2025", "build_cohort", "carve_calibration", "check_no_leakage", "covariate_values", "derive_labels",
           "link_imaging", "load_table", "nearest_ecgs", "parse_rule", "patient_kfold", "patient_split",
           "time_to_event"]
