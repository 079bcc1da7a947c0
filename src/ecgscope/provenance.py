"""Where a run's numbers came from: the library versions and the CPU kernels that computed them.

A seeded run prints the same figures on the same kind of machine. Another CPU instruction set (AVX2 against
AVX-512), BLAS build or library version changes floating-point results in their last bits, and training
carries that into the figures' last digits (docs/benchmarks/transfer.md shows how far). ``environment.json``,
written beside a training run's and the demo's results, says which of them a run used.
"""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path

#: Libraries whose version can move a figure.
LIBRARIES = ("ecgscope", "torch", "lightning", "numpy", "scipy", "scikit-learn", "pandas", "lifelines")
#: Variables that pin the kernels a library dispatches to (torch's ATen, oneDNN, MKL, OpenBLAS).
KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR",
                    "OPENBLAS_CORETYPE", "CUBLAS_WORKSPACE_CONFIG")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict:
    """The versions, the CPU instruction set torch dispatches to, the native thread pools loaded (BLAS builds
    and the CPU architecture each chose) and the GPU, as a JSON-ready dict."""
    import torch
    from threadpoolctl import threadpool_info

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "versions": {name: _version(name) for name in LIBRARIES},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "thread_pools": [{k: pool.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                         for pool in threadpool_info()],
        "kernel_variables": {k: os.environ[k] for k in KERNEL_VARIABLES if k in os.environ},
    }


def write_environment(folder: str | Path, env: dict | None = None) -> Path:
    """Write ``env`` (by default :func:`environment`) to ``folder/environment.json`` atomically; return its path."""
    from ecgscope.io import write_text

    return write_text(Path(folder) / "environment.json", json.dumps(env or environment(), indent=2) + "\n")
