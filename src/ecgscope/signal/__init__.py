"""Signal processing on arrays: resampling, quality metrics, and the serialisable preprocessing Pipeline.

Nothing here touches disk.
"""

from ecgscope.signal.pipeline import ECGFOUNDER_PIPELINE, Pipeline
from ecgscope.signal.quality import flat_leads, quality_metrics
from ecgscope.signal.resample import resample

__all__ = ["ECGFOUNDER_PIPELINE", "Pipeline", "flat_leads", "quality_metrics", "resample"]
