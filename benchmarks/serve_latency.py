"""Latency and throughput of the prediction service on loopback: one GE MUSE XML export per request.

Trains the default architecture (net1d_small, 100 Hz contract) briefly on a simulated cohort (latency does not
depend on how well it learnt), starts `ecgscope serve` with a key for each runtime (PyTorch, onnxruntime and
auto), and sends the same 10 s, 500 Hz MUSE XML file (LUDB record 1) from 1 and from 16 concurrent clients.
Bounded: at most --requests per phase and --seconds per phase. Prints p50 / p99 latency (ms, at the client),
throughput (requests/s), errors, and the batches the server formed.

    python benchmarks/serve_latency.py [--requests 400] [--seconds 60]

Writes benchmarks/results/serve_latency.csv.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.service_model import train_small_model  # noqa: E402
from tests.serving import KEY, Server, muse_file  # noqa: E402


def phase(server: Server, body: bytes, clients: int, requests: int, seconds: float) -> dict:
    """Send up to ``requests`` requests from ``clients`` threads for at most ``seconds``."""
    latencies, errors, lock = [], [0], threading.Lock()
    deadline = time.perf_counter() + seconds
    counter = iter(range(requests))

    def client() -> None:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as http:
            while time.perf_counter() < deadline:
                with lock:
                    if next(counter, None) is None:
                        return
                start = time.perf_counter()
                response = http.post("/v1/predict", content=body)
                elapsed = time.perf_counter() - start
                with lock:
                    if response.status_code == 200 and response.json()["status"] == "result":
                        latencies.append(elapsed)
                    else:
                        errors[0] += 1

    before = httpx.get(server.url + "/health").json()["batches"]["model"]
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for _ in range(clients):
            pool.submit(client)
    wall = time.perf_counter() - started
    after = httpx.get(server.url + "/health").json()["batches"]["model"]
    ms = 1000 * np.asarray(latencies)
    batches = after["batches"] - before["batches"]
    return {"clients": clients, "requests": len(latencies) + errors[0], "errors": errors[0],
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "throughput_per_s": len(latencies) / wall,
            "mean_batch": (after["ecgs"] - before["ecgs"]) / batches if batches else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("training net1d_small briefly on 300 simulated ECGs (the latency does not depend on its fit) ...")
        model = train_small_model(root / "model", n=300, architecture="net1d_small", epochs=1)
        body = muse_file(root / "ecg.xml").read_bytes()
        for runtime in ("torch", "onnxruntime", "auto"):
            server = Server(model, root / runtime, "--runtime", runtime)
            try:
                for _ in range(20):  # warm up
                    httpx.post(server.url + "/v1/predict", content=body, headers={"Authorization": f"Bearer {KEY}"})
                for clients in (1, 16):
                    row = {"runtime": runtime, **phase(server, body, clients, args.requests, args.seconds)}
                    rows.append(row)
                    print(f"{runtime:12s} {clients:2d} client(s): p50 {row['p50_ms']:6.1f} ms  p99 {row['p99_ms']:6.1f}"
                          f" ms  {row['throughput_per_s']:6.1f} req/s  errors {row['errors']}/{row['requests']}  "
                          f"mean batch {row['mean_batch']:.2f}", flush=True)
            finally:
                log = server.stop()
            chosen = [line for line in log.splitlines() if line.startswith("model ")]
            print("  " + (chosen[0] if chosen else "(no runtime line in the log)"))
    out = ROOT / "benchmarks" / "results" / "serve_latency.csv"
    pd.DataFrame(rows).to_csv(out, index=False, float_format="%.4g")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
