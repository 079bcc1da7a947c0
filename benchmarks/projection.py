"""Project wall time, storage, memory and cost for 1 and 10 million ECGs on 1, 8 and 64 GPUs, from the rates
measured on this machine and stated assumptions.

    python benchmarks/projection.py [--cores-per-gpu 8] [--usd-per-gpu-hour 3.0] [--epochs 20] ...

Measured inputs (read from ``benchmarks/results/``): ingest ECGs/s per core and the ingesting and training
processes' peak memory at two cohort sizes (``scale_benchmark.csv``, the latest local-engine rows), the
loader's ECGs/s per core for the default model's contract (``loader_throughput.csv``), and the bytes per ECG
streamed from an object store (``remote_store.csv``). Computed here: the default model's floating-point work
per ECG (forward and backward, counted by PyTorch) and the store's bytes per ECG from its layout.

The model of the run (its assumptions are the options, printed with the table):
- ingest is CPU work spread over every core of the machines holding the GPUs (``--cores-per-gpu``);
- training is bound by data loading (reading, resampling, augmenting) on those cores, not by the GPU: the
  default model needs well under a GFLOP per ECG, so even a small fraction of one GPU's peak outpaces the
  loaders (the script prints how small); a streamed part also must arrive fast enough (``--mb-per-s`` per
  loader stream);
- distributed data parallel keeps ``--efficiency-8`` / ``--efficiency-64`` of linear scaling;
- memory grows linearly with the cohort: from the largest measured peak, at the growth per ECG the benchmark
  fitted within that run's steady part (``main_steady_growth_kib_per_ecg``; the peaks of two sizes differ by
  one-off costs as much as by growth), or, for rows without it, at the slope between the two largest peaks.
No GPU rate enters: where a GPU is lent, ``benchmarks/gpu_check.sh`` measures the real one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).parent / "results"


def _latest(table: pd.DataFrame, stage: str) -> pd.DataFrame:
    rows = table[table["stage"] == stage]
    return rows.groupby("ecgs").tail(1).sort_values("ecgs")


def _growth(rows: pd.DataFrame, column: str) -> tuple[float, float]:
    """Intercept (MiB) and slope (MiB per ECG) between the two largest measured cohorts (a fall counts as
    flat)."""
    small, big = rows.iloc[-2], rows.iloc[-1]
    slope = (big[column] - small[column]) / (big["ecgs"] - small["ecgs"])
    if slope <= 0:  # no growth beyond run-to-run variation: flat at the larger of the two peaks
        return max(small[column], big[column]), 0.0
    return small[column] - slope * small["ecgs"], slope


def _hours(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores-per-gpu", type=int, default=8)
    parser.add_argument("--usd-per-gpu-hour", type=float, default=3.0, help="on-demand price of one GPU-hour")
    parser.add_argument("--usd-per-gb-month", type=float, default=0.023, help="object storage price")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--mb-per-s", type=float, default=100.0, help="bandwidth of one loader's stream")
    parser.add_argument("--efficiency-8", type=float, default=0.9)
    parser.add_argument("--efficiency-64", type=float, default=0.8)
    parser.add_argument("--store-fs", type=float, default=100.0, help="the store's rate (the default contract)")
    args = parser.parse_args()

    scale = pd.read_csv(RESULTS / "scale_benchmark.csv")
    ingest_rows = _latest(scale, "ingest (local)")
    train_rows = _latest(scale, "train 1 epoch + evaluate")
    ingest_per_core = float((ingest_rows["ecgs_per_s"] / ingest_rows["workers"]).iloc[-1])
    loader = pd.read_csv(RESULTS / "loader_throughput.csv")
    two = loader[(loader["model"] == "net1d_small") & loader["stage"].str.startswith("loader")
                 & (loader["workers"].astype(str) == "2")]
    loader_per_core = float(two["ecgs_per_s"].iloc[0]) / 2
    bytes_per_ecg = 12 * args.store_fs * 10 * 2  # float16 samples; HDF5 adds < 1 %

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ecgscope.models import create_model

    model = create_model("net1d_small", num_outputs=1)
    with FlopCounterMode(display=False) as flops:
        model(torch.randn(4, 12, int(args.store_fs * 10))).sum().backward()
    gflop_per_ecg = flops.get_total_flops() / 4 / 1e9
    per_gpu_loading = loader_per_core * args.cores_per_gpu
    per_stream = args.mb_per_s * 1e6 / bytes_per_ecg
    per_gpu = min(per_gpu_loading, per_stream * args.cores_per_gpu)
    print(f"measured: ingest {ingest_per_core:.0f} ECG/s per core; loader {loader_per_core:.0f} ECG/s per core "
          f"(net1d_small, {args.store_fs:g} Hz, augmented); {bytes_per_ecg / 1e3:.0f} kB per ECG in the store")
    print(f"computed: net1d_small {gflop_per_ecg:.3f} GFLOP per ECG (forward + backward): {per_gpu:,.0f} ECG/s per "
          f"GPU needs {per_gpu * gflop_per_ecg / 1e3:.2f} TFLOP/s, under 1 % of a current data-centre GPU's bf16 "
          "peak, so the loaders bound the rate")
    ingest_base, ingest_slope = _growth(ingest_rows, "peak_main_mib")
    train_base, train_slope = _growth(train_rows, "peak_main_mib")
    print(f"memory growth measured between {int(ingest_rows['ecgs'].iloc[-2]):,} and "
          f"{int(ingest_rows['ecgs'].iloc[-1]):,} ECGs: ingesting process {ingest_slope * 1024:.2f} KiB per ECG, "
          f"training process {train_slope * 1024:.2f} KiB per ECG (peaks)")
    steady = ingest_rows.get("main_steady_growth_kib_per_ecg", pd.Series(dtype=float)).iloc[-1:].dropna()
    if len(steady):  # the largest run's own growth, from its largest peak
        big = ingest_rows.iloc[-1]
        ingest_slope = float(steady.iloc[0]) / 1024
        ingest_base = big["peak_main_mib"] - ingest_slope * big["ecgs"]
        print(f"ingesting process within the {int(big['ecgs']):,}-ECG run: {float(steady.iloc[0]):.2f} KiB per ECG in "
              f"its steady part (peak {big['peak_main_mib']:.0f} MiB); the projection uses this")

    first = {stage: scale[scale["stage"] == stage].groupby("ecgs").head(1).sort_values("ecgs")
             for stage in ("ingest (local)", "train 1 epoch + evaluate")}
    print(f"as first measured (the earliest rows at each size): ingesting process "
          f"{_growth(first['ingest (local)'], 'peak_main_mib')[1] * 1024:.2f} KiB per ECG, training process "
          f"{_growth(first['train 1 epoch + evaluate'], 'peak_main_mib')[1] * 1024:.2f} KiB per ECG")

    rows = []
    for n in (1_000_000, 10_000_000):
        for gpus in (1, 8, 64):
            efficiency = 1.0 if gpus == 1 else args.efficiency_8 if gpus <= 8 else args.efficiency_64
            cores = gpus * args.cores_per_gpu
            ingest_s = n / (ingest_per_core * cores)
            epoch_s = n / (per_gpu * gpus * efficiency)
            gpu_hours = gpus * (ingest_s + args.epochs * epoch_s) / 3600
            gb = n * bytes_per_ecg / 1e9
            rows.append({
                "ecgs": f"{n / 1e6:g} M", "gpus": gpus, "ingest": _hours(ingest_s), "one epoch": _hours(epoch_s),
                f"{args.epochs} epochs": _hours(args.epochs * epoch_s), "store_gb": round(gb),
                "usd_gpus": round(gpu_hours * args.usd_per_gpu_hour),
                "usd_store_per_month": round(gb * args.usd_per_gb_month, 1),
                "ingest_main_gib": round((ingest_base + ingest_slope * n) / 1024, 1),
                "train_main_gib": round((train_base + train_slope * n) / 1024, 1)})
    table = pd.DataFrame(rows)
    print(f"\nassumptions: {args.cores_per_gpu} CPU cores per GPU; ${args.usd_per_gpu_hour:g} per GPU-hour (ingest "
          f"and training); ${args.usd_per_gb_month:g} per GB-month stored; {args.epochs} epochs; DDP at "
          f"{args.efficiency_8:.0%} (8 GPUs) and {args.efficiency_64:.0%} (64) of linear; {args.mb_per_s:g} MB/s per "
          "loader stream; memory linear in the cohort as measured")
    print("| " + " | ".join(table.columns) + " |\n|" + " --- |" * len(table.columns))
    for _, row in table.iterrows():
        print("| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in row) + " |")
    table.to_csv(RESULTS / "projection.csv", index=False)
    print(f"wrote {RESULTS / 'projection.csv'}")


if __name__ == "__main__":
    main()
