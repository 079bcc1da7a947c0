"""Does a killed and resumed training run end with the weights of an uninterrupted one, on this device?

    python benchmarks/resume_identity.py [--model net1d_small] [--epochs 3] [--work DIR]

Trains the same configuration twice on a small simulated cohort: once straight through, once killed in the
middle of epoch 1 and resumed from its last checkpoint (model, optimiser, schedule, callbacks and the CPU and
CUDA random states). Prints the largest absolute weight difference and the device; on a GPU, deterministic
algorithms make it 0 (or float round-off), anything larger means some state did not travel.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import lightning as L
import numpy as np
import torch
from safetensors.numpy import load_file

from ecgscope.cohort import derive_labels, link_imaging, patient_split
from ecgscope.config import RunConfig
from ecgscope.simulate import simulate_cohort
from ecgscope.simulate.export import write_cohort
from ecgscope.store import Store, ingest
from ecgscope.train.run import train_from_config


class KilledMidEpoch(L.Callback):
    """Raises in the middle of epoch 1, as a killed process would stop (nothing saved after the epoch-0 end)."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 1:
            raise RuntimeError("killed mid-epoch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="net1d_small")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.work or Path(tmp)
        sim = write_cohort(simulate_cohort("hospital", n=160, seed=4), root / "sim", formats=("wfdb",),
                           progress=False)
        ingest([sim / "wfdb"], root / "store", fs=100, rate=100, identifiers="keep", progress=False)
        pairs = derive_labels(link_imaging(Store(root / "store").manifest, sim / "measurements" / "mri.parquet",
                                           days_before=90, days_after=90), ["rv_dysfunction"])
        pairs["split"] = patient_split(pairs, (0.6, 0.2, 0.2), seed=0)
        pairs.to_parquet(root / "cohort.parquet")

        def config(out: Path) -> RunConfig:
            return RunConfig.model_validate({
                "out": str(out), "data": {"store": str(root / "store"), "cohort": str(root / "cohort.parquet"),
                                          "regression": ["rvef"], "binary": ["rv_dysfunction"]},
                "model": {"name": args.model}, "train": {"max_epochs": args.epochs, "batch_size": 16}})

        clean = train_from_config(config(root / "clean"), progress=False)
        try:
            train_from_config(config(root / "killed"), progress=False, callbacks=[KilledMidEpoch()])
        except RuntimeError as exc:
            if "killed mid-epoch" not in str(exc):
                raise
        resumed = train_from_config(config(root / "killed"), resume=True, progress=False)
        a, b = load_file(str(clean / "weights.safetensors")), load_file(str(resumed / "weights.safetensors"))
        worst = max(float(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)).max()) for k in a)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print(f"resume identity ({args.model}, {args.epochs} epochs, killed mid-epoch 1, on {device}): "
          f"max |weight difference| = {worst:.3g}")


if __name__ == "__main__":
    main()
