"""ecgscope: cardiac structure, function and risk from the 12-lead ECG."""

from ecgscope.ecg import ECG, check_ecg
from ecgscope.leads import STANDARD_LEADS

__version__ = "0.1.0"
__all__ = ["ECG", "STANDARD_LEADS", "__version__", "check_ecg"]
