"""Signal processing on arrays: anti-aliased resampling and quality metrics. Nothing here touches disk."""

from ecgscope.signal.quality import flat_leads, quality_metrics
from ecgscope.signal.resample import resample

__all__ = ["flat_leads", "quality_metrics", "resample"]
