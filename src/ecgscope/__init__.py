"""ecgscope: cardiac structure, function and risk from the 12-lead ECG.

``import ecgscope as es`` gives the Python API (:mod:`ecgscope.api`): ``es.read``, ``es.ingest``, ``es.Store``,
``es.build_cohort``, ``es.train``, ``es.load_model``, ``es.predict``, ``es.evaluate``, ``es.survival``,
``es.report``. They are imported on first use, so ``import ecgscope`` (and the CLI) starts fast.
"""

from ecgscope.ecg import ECG, check_ecg
from ecgscope.leads import STANDARD_LEADS

__version__ = "0.2.0"
_API = ("Cohort", "IngestReport", "LoadedModel", "Store", "build_cohort", "evaluate", "ingest", "load_model",
        "predict", "read", "report", "survival", "train")
__all__ = ["ECG", "STANDARD_LEADS", "__version__", "check_ecg", *_API]


def __getattr__(name: str):
    if name in ("train", "evaluate", "survival", "report"):  # subpackages, callable as the API (_callable.py)
        import importlib

        return importlib.import_module(f"ecgscope.{name}")
    if name in _API:
        from ecgscope import api

        return getattr(api, name)
    raise AttributeError(f"module 'ecgscope' has no attribute {name!r}")
