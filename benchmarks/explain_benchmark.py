"""Do the explanations point at the signs the simulator put in, and do they depend on the learnt weights?

A model (the default architecture) is trained on a simulated ukb cohort for RVEF, RVEDVi and RV dysfunction.
On held-out test ECGs:

1. Ground truth. The simulator writes RV load into the ECG in known places (REFERENCE.md, simulator physics):
   the QRS (axis past +90 degrees, R/S in V1, widening, R'), T inversion in V1-V3, and P in II. For each
   target, the share of |integrated gradients| that falls in each region (beats found on the model input,
   windows relative to each QRS) is printed beside the share expected by chance (the region's share of the
   samples), with patient-bootstrap 95 % CIs. Reported whether it comes out good or bad.
2. Sanity (Adebayo et al. 2018): cascading randomisation of the weights from the head towards the input;
   Spearman rank correlation of |attribution| with the trained model's, averaged over test ECGs.

    python benchmarks/explain_benchmark.py [--n 2400 --epochs 8 --ecgs 100]
    # writes benchmarks/results/explain_ground_truth.csv and explain_randomisation.csv
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ecgscope.cohort import derive_labels, link_imaging, patient_split
from ecgscope.config import DEFAULT_MODEL, RunConfig
from ecgscope.contract import StoreInput
from ecgscope.evaluate import bootstrap_ci
from ecgscope.explain import attribute, randomisation_check
from ecgscope.leads import STANDARD_LEADS
from ecgscope.signal.leadcheck import beat_centres
from ecgscope.simulate import simulate_cohort
from ecgscope.simulate.export import write_cohort
from ecgscope.store import Store, ingest
from ecgscope.train import load_model
from ecgscope.train.run import train_from_config

RESULTS = Path(__file__).parent / "results"
TARGETS = ("rvef", "rvedvi", "rv_dysfunction")
#: Where the simulator writes RV load: leads and a window in ms relative to each QRS alignment point.
REGIONS = {
    "QRS, all leads (-60 to +100 ms)": (STANDARD_LEADS, -60, 100),
    "QRS, limb leads (axis)": (("I", "II", "III", "aVR", "aVL", "aVF"), -60, 100),
    "QRS, V1 (R/S, R')": (("V1",), -60, 100),
    "T wave, V1-V3 (+150 to +450 ms)": (("V1", "V2", "V3"), 150, 450),
    "P wave, II and V1 (-250 to -80 ms)": (("II", "V1"), -250, -80),
}


def region_mask(x: np.ndarray, fs: float, leads: tuple[str, ...], start_ms: float, stop_ms: float) -> np.ndarray:
    """Boolean (leads, samples) mask of ``leads`` within [start, stop) ms of every QRS found in ``x``."""
    _, centres, _, _ = beat_centres(x, fs)
    mask = np.zeros(x.shape, dtype=bool)
    rows = [STANDARD_LEADS.index(lead) for lead in leads]
    for c in centres:
        lo, hi = max(c + int(start_ms * fs / 1000), 0), min(c + int(stop_ms * fs / 1000), x.shape[1])
        mask[np.ix_(rows, np.arange(lo, hi))] = True
    return mask


def train(root: Path, n: int, epochs: int) -> tuple[Path, Store, pd.DataFrame]:
    sim = write_cohort(simulate_cohort("ukb", n=n, seed=21), root / "sim", formats=("wfdb",), progress=False)
    ingest([sim / "wfdb"], root / "store", fs=100, rate=100, identifiers="keep", progress=False)
    store = Store(root / "store")
    pairs = derive_labels(link_imaging(store.manifest, sim / "measurements" / "mri.parquet", days_before=30,
                                       days_after=30), ["rv_dysfunction"])
    pairs["split"] = patient_split(pairs, (0.7, 0.1, 0.2), stratify="rv_dysfunction", seed=0)
    pairs.to_parquet(root / "cohort.parquet")
    cfg = RunConfig.model_validate({
        "out": str(root / "run"), "data": {"store": str(root / "store"), "cohort": str(root / "cohort.parquet"),
                                           "regression": ["rvef", "rvedvi"], "binary": ["rv_dysfunction"]},
        "model": {"name": DEFAULT_MODEL}, "train": {"max_epochs": epochs, "batch_size": 64}})
    return train_from_config(cfg, progress=False), store, pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2400, help="simulated ukb subjects")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--ecgs", type=int, default=100, help="test ECGs explained")
    parser.add_argument("--randomised-ecgs", type=int, default=10, help="test ECGs for the randomisation check")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ecgscope-explain-") as tmp:
        model_dir, store, pairs = train(Path(tmp), args.n, args.epochs)
        loaded = load_model(model_dir)
        metrics = pd.read_json(model_dir.parent / "test_metrics.json", typ="series")
        print(f"model trained in {time.perf_counter() - started:.0f} s; test: "
              + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k.endswith(("_mae", "_auroc"))))
        source = StoreInput(loaded.pipeline, store)
        test = pairs[pairs["split"] == "test"].head(args.ecgs)
        fs, leads = loaded.pipeline.fs, loaded.pipeline.leads
        shares = []
        for row in test.itertuples():
            x = source.read(int(row.ecg_row))
            masks = {name: region_mask(x, fs, *spec) for name, spec in REGIONS.items()}
            for target in TARGETS:
                found = np.abs(attribute(loaded.model, loaded.spec, x, target, leads, fs).values)
                for name, mask in masks.items():
                    if mask.any():
                        shares.append({"target": target, "region": name, "patient_id": row.patient_id,
                                       "share": found[mask].sum() / found.sum(), "chance": mask.mean()})
        table = pd.DataFrame(shares)
        rows = []
        for (target, region), group in table.groupby(["target", "region"], sort=False):
            est, lo, hi = bootstrap_ci(lambda share, chance: float(np.mean(share) / np.mean(chance)),
                                       group["share"].to_numpy(), group["chance"].to_numpy(),
                                       groups=group["patient_id"].to_numpy(), n_boot=500, seed=0)
            rows.append({"target": target, "region": region, "ecgs": len(group),
                         "attribution_share": group["share"].mean(), "chance_share": group["chance"].mean(),
                         "share_over_chance": est, "ci_low": lo, "ci_high": hi})
        truth = pd.DataFrame(rows)
        randomised = []
        for row in test.head(args.randomised_ecgs).itertuples():
            x = source.read(int(row.ecg_row))
            check = randomisation_check(loaded.model, loaded.spec, x, "rvef", leads, fs)
            randomised.append(check.assign(ecg=row.ecg_id))
        rand = pd.concat(randomised).groupby(["steps_randomised", "block"], sort=True)[
            ["rank_correlation", "lead_rank_correlation"]].agg(["mean", "std"]).reset_index()
        rand.columns = [" ".join(c).strip() for c in rand.columns]
    RESULTS.mkdir(exist_ok=True)
    truth.to_csv(RESULTS / "explain_ground_truth.csv", index=False, float_format="%.4f")
    rand.to_csv(RESULTS / "explain_randomisation.csv", index=False, float_format="%.4f")
    pd.set_option("display.width", 200)
    print("share of |integrated gradients| in each region against chance (ratio: patient-bootstrap 95 % CI)")
    print(truth.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("cascading randomisation (rvef): Spearman correlation with the trained model's attribution")
    print(rand.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
