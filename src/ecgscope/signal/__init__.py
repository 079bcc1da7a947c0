"""Signal processing on arrays: resampling, quality metrics, and the serialisable preprocessing Pipeline.

Nothing here touches disk.
"""

from ecgscope.signal.pipeline import DEFAULT_STEPS, ECGFOUNDER_PIPELINE, Pipeline, default_pipeline
from ecgscope.signal.quality import flat_leads, quality_metrics
from ecgscope.signal.resample import resample

__all__ = ["DEFAULT_STEPS", "ECGFOUNDER_PIPELINE", "Pipeline", "default_pipeline", "flat_leads", "quality_metrics",
           "resample"]
