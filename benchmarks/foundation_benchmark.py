"""Which self-supervised pretraining? Linear probes on frozen encoders, against a randomly initialised one.

    python benchmarks/foundation_benchmark.py [--n-pretrain 5000] [--epochs 10] [--workdir runs/foundation_benchmark]

Pretraining corpus: the unlabeled ECGs of a simulated CODE-15%-like cohort. Probes: an L2 logistic (ridge for
e') fitted on the echo-dev cohort and tested on echo-external, for the high-risk diastolic phenogroup (study B's
label), ASE 2016 diastolic dysfunction, LVEF <= 45 % and e' (Pearson r). Encoders, all net1d_small:

- ``segments+leads`` (the default): contrast two different 5-s windows of each ECG, leads dropped, noise
  added, each lead's amplitude scaled;
- ``augment only``: the same contrast with both views the whole 10 s, so only the augmentations differ;
- ``segments+leads, amplitude kept``: the first without amplitude scaling;
- ``random init``: the same architecture, untrained.

Each AUROC carries a patient-bootstrap 95 % CI on the external cohort, and each pretrained encoder's edge over
the random one a paired-bootstrap CI. Rows go to ``benchmarks/results/foundation_probe.csv``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ecgscope.cohort import Phenogroups
from ecgscope.cohort.phenogroups import hf_death_followup
from ecgscope.evaluate import auroc, bootstrap_ci, paired_difference_ci
from ecgscope.evaluate.regression import pearson_r
from ecgscope.foundation import embed_store, linear_probe, load_encoder, pretrain_encoder, read_embeddings
from ecgscope.foundation.contrastive import VIEW_AUGMENT
from ecgscope.foundation.embed import Encoder
from ecgscope.signal import default_pipeline
from ecgscope.store import Store
from ecgscope.studies.echo_cohorts import build_code15_cohort, build_echo_cohort
from ecgscope.train.module import seeded_model

LABELS = {"diastolic_risk_phenogroup": "binary", "diastolic_dysfunction_ase2016": "binary",
          "lvef_lte_45_flag": "binary", "e_prime": "regression"}


def _cohorts(work: Path, n_pretrain: int, seed: int):
    if not (work / "code15_cohort.parquet").exists():
        build_code15_cohort(n_pretrain, seed, work)
    tables = {}
    for preset, n, s in (("echo-dev", 1012, seed + 10), ("echo-external", 956, seed + 11)):
        path = work / f"{preset}_cohort.parquet"
        tables[preset] = pd.read_parquet(path) if path.exists() else build_echo_cohort(preset, n, s, work).table
    dev, ext = tables["echo-dev"], tables["echo-external"]
    time_, event = hf_death_followup(dev, dev)
    groups = Phenogroups.fit(dev, time_, event, seed=seed)
    for table in (dev, ext):
        table[["phenogroup", "diastolic_risk_phenogroup"]] = groups.label(table)
        table["e_prime"] = (table["septal_e_prime"] + table["lateral_e_prime"]) / 2
    return dev, ext


def _embeddings(encoder: Encoder, work: Path, name: str, table: pd.DataFrame, preset: str) -> np.ndarray:
    path = work / "embeddings" / f"{name}_{preset}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        embed_store(encoder, work / f"{preset}_store", path, rows=table["ecg_row"].to_numpy(), progress=False)
    return read_embeddings(path)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-pretrain", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("runs/foundation_benchmark"))
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "foundation_probe.csv")
    args = parser.parse_args()
    work = args.workdir
    dev, ext = _cohorts(work, args.n_pretrain, args.seed)
    code15 = Store(work / "code15_store")

    encoders: dict[str, Encoder] = {}
    kept = VIEW_AUGMENT.model_copy(update={"amplitude_scale_sd": 0.0})
    variants = (("segments+leads", 5.0, VIEW_AUGMENT), ("augment only", 10.0, VIEW_AUGMENT),
                ("segments+leads, amplitude kept", 5.0, kept))
    for name, view_s, augment in variants:
        run = work / f"pretrain_{name.replace(' ', '_').replace('+', '_').replace(',', '')}"
        if not (run / "model").exists():
            started = time.perf_counter()
            pretrain_encoder(code15.root, run, epochs=args.epochs, view_s=view_s, seed=args.seed, augment=augment,
                             progress=False)
            print(f"pretrained {name} on {len(code15):,} ECGs in {time.perf_counter() - started:.0f} s", flush=True)
        encoders[name] = load_encoder(run / "model")
    pipeline = default_pipeline(code15.config.fs, code15.config.n_samples)
    encoders["random init"] = Encoder(seeded_model("net1d_small", args.seed, num_outputs=0).eval(), pipeline,
                                      "random net1d_small")

    predictions = {}
    for name, encoder in encoders.items():
        x_dev, x_ext = (_embeddings(encoder, work, name.replace(" ", "_").replace("+", "_").replace(",", ""), t, p)
                        for t, p in ((dev, "echo-dev"), (ext, "echo-external")))
        for label, kind in LABELS.items():
            predictions[(name, label)] = linear_probe(x_dev, dev[label].to_numpy(float), x_ext, kind, seed=args.seed)

    rows = []
    for (name, label), p in predictions.items():
        y = ext[label].to_numpy(float)
        seen = ~np.isnan(y)
        binary = LABELS[label] == "binary"
        metric, patients = (auroc if binary else pearson_r), ext["patient_id"].to_numpy()[seen]
        est, lo, hi = bootstrap_ci(metric, y[seen], p[seen], patients, seed=args.seed)
        row = {"encoder": name, "label": label, "metric": "AUROC" if binary else "Pearson r", "estimate": est,
               "ci_low": lo, "ci_high": hi, "n": int(seen.sum()), "positives": int(y[seen].sum()) if binary else None}
        if name != "random init":
            d = paired_difference_ci(metric, y[seen], p[seen], predictions[("random init", label)][seen], patients,
                                     seed=args.seed)
            row |= {"minus_random": d[0], "minus_random_lo": d[1], "minus_random_hi": d[2]}
        rows.append(row)
    table = pd.DataFrame(rows)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.results, index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
