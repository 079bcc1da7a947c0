"""Signal processing on arrays: resampling (anti-aliased), and later filters, normalisation, quality."""

from ecgscope.signal.resample import resample

__all__ = ["resample"]
