"""A real ``ecgscope serve`` on loopback for the service and viewer tests, and ECG files to send it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from .conftest import ludb_leads_uv
from .writers import MUSE_LEADS, write_muse

KEY = "test-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``ecgscope serve MODEL`` in a subprocess with its own temporary folder and log file."""

    def __init__(self, model: Path, root: Path, *args: str, keys: str | None = KEY):
        self.port, self.root = free_port(), root
        self.tmp, self.log = root / "tmp", root / "server.log"
        self.tmp.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TMPDIR": str(self.tmp)}
        env.pop("ECGSCOPE_API_KEYS", None)
        if keys is not None:
            env["ECGSCOPE_API_KEYS"] = keys
        command = [str(Path(sys.executable).parent / "ecgscope"), "serve", str(model), "--port", str(self.port), *args]
        self.process = subprocess.Popen(command, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"the server did not start: {self.log.read_text()[-2000:]}")
        self.started_with = sorted(p.name for p in self.tmp.iterdir())

    def client(self, key: str | None = KEY, **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)

    def stop(self) -> str:
        self.process.terminate()
        self.process.wait(timeout=30)
        return self.log.read_text()


def simulated_leads_uv(seed: int = 21) -> dict[str, np.ndarray]:
    """One simulated hospital ECG at 500 Hz as {lead: uV}, the 12 standard leads."""
    from ecgscope.simulate import simulate_cohort

    ecg = next(simulate_cohort("hospital", n=1, seed=seed).records())
    return {lead: ecg.signal[k] * 1000 for k, lead in enumerate(ecg.leads)}


def muse_file(path: Path, leads_uv: dict[str, np.ndarray] | None = None, name=("Doe", "Jane")) -> Path:
    """A MUSE XML export (8 recorded leads) of ``leads_uv`` (default: LUDB record 1) with a patient name."""
    leads_uv = leads_uv or ludb_leads_uv()
    return write_muse(path, {lead: leads_uv[lead] for lead in MUSE_LEADS}, patient="MRN-553311", patient_name=name)
