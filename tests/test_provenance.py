"""environment.json: the versions and CPU kernels behind a run's figures, read from what actually ran."""

import json
import os
import subprocess
import sys

import torch

import ecgscope
from ecgscope.provenance import environment, write_environment


def test_the_environment_names_the_kernels_torch_dispatches_to_and_the_variables_that_pin_them(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    found = json.loads(write_environment(tmp_path).read_text())
    assert found == json.loads(json.dumps(environment()))  # the file is the dict, JSON-clean
    assert found["versions"]["ecgscope"] == ecgscope.__version__ and found["versions"]["torch"] == torch.__version__
    assert found["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert found["kernel_variables"]["OPENBLAS_CORETYPE"] == "Haswell"  # and only what is set, as it is set
    assert all(os.environ.get(name) == value for name, value in found["kernel_variables"].items())
    assert any(pool["internal_api"] == "openblas" for pool in found["thread_pools"])  # NumPy's BLAS is loaded

    # a process told to use torch's portable kernels reports those, not what the CPU could do
    script = "import json; from ecgscope.provenance import environment; print(json.dumps(environment()))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          env={**os.environ, "ATEN_CPU_CAPABILITY": "default"})
    pinned = json.loads(done.stdout)
    assert pinned["torch_cpu_capability"] == "DEFAULT"
    assert pinned["kernel_variables"]["ATEN_CPU_CAPABILITY"] == "default"
