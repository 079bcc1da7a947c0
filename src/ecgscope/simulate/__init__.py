"""Simulated paired ECG / imaging / outcome cohorts with known ground truth.

A data source like the real datasets: the CLI, studies and tests use it; library modules never import it.
"""

from ecgscope.simulate.cohort import SimulatedCohort, WaveformBatch, simulate_cohort
from ecgscope.simulate.presets import STRATA, Preset, get_preset, list_presets

__all__ = ["STRATA", "Preset", "SimulatedCohort", "WaveformBatch", "get_preset", "list_presets", "simulate_cohort"]
