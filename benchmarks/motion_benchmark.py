"""Does the generated motion carry information? Generated against true tissue Doppler on held-out patients.

    python benchmarks/motion_benchmark.py [--study runs/demo/echo] [--epochs 30] [--seeds 0,1]

Reads the cohorts and the foundation encoder a study B run left in ``--study`` (``make demo`` writes one),
trains the motion GAN on echo-dev's ECG-echo pairs twice per seed, with the ECG encoder started at random and
from the foundation encoder, and compares generated with true cycles on echo-external's patients: curve RMSE
and correlation, and the Pearson r of generated against true e' and s' with patient-bootstrap 95 % CIs.
Prints the table, writes ``benchmarks/results/motion_agreement.csv`` and the figure
``benchmarks/results/motion_agreement.png`` (the foundation-started generator of the first seed).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from ecgscope.evaluate import bootstrap_ci
from ecgscope.evaluate.regression import pearson_r
from ecgscope.motion import (
    generate_batches,
    load_generator,
    motion_agreement,
    motion_features,
    paired_curves,
    train_motion,
)
from ecgscope.report.evidence import motion_figure
from ecgscope.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", type=Path, default=Path("runs/demo/echo"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--workdir", type=Path, default=Path("runs/motion_benchmark"))
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    study = args.study
    needed = [study / "echo-dev_cohort.parquet", study / "echo-external_cohort.parquet", study / "foundation" / "model"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise SystemExit(f"{study} lacks {missing}: run `ecgscope demo --study b --out {study.parent}` first")
    dev, ext = (pd.read_parquet(study / f"{name}_cohort.parquet") for name in ("echo-dev", "echo-external"))
    dev_motion = pd.read_parquet(study / "echo-dev_files" / "truth" / "motion.parquet")
    ext_motion = pd.read_parquet(study / "echo-external_files" / "truth" / "motion.parquet")
    true_v, true_d, true_rr = paired_curves(ext, ext_motion)
    true_f = motion_features(true_v, true_d, true_rr)
    patients = ext["patient_id"].to_numpy()

    rows, figure = [], None
    for seed in (int(s) for s in args.seeds.split(",")):
        for start, init in (("random", None), ("foundation", study / "foundation" / "model")):
            run = args.workdir / f"{start}_seed{seed}"
            started = time.perf_counter()
            if not (run / "model").exists():
                train_motion(study / "echo-dev_store", dev, dev_motion, run, init_encoder=init, epochs=args.epochs,
                             seed=seed, progress=False)
            generator = load_generator(run / "model")
            gen_v, gen_d, gen_rr = generate_batches(generator, Store(study / "echo-external_store"),
                                                    ext["ecg_row"].to_numpy(), progress=False)
            gen_f = motion_features(gen_v, gen_d, gen_rr)
            agreement = motion_agreement(true_v, true_d, true_rr, gen_v, gen_d, gen_rr)
            row = {"encoder_start": start, "seed": seed, "velocity_rmse_cm_s": agreement["velocity_rmse_cm_s"],
                   "velocity_correlation": agreement["velocity_correlation"], "seconds": time.perf_counter() - started}
            for name in ("e_prime", "s_prime"):
                ok = (true_f[name].notna() & gen_f[name].notna()).to_numpy()
                est, lo, hi = bootstrap_ci(pearson_r, true_f[name].to_numpy()[ok], gen_f[name].to_numpy()[ok],
                                           patients[ok], seed=seed)
                row |= {f"{name}_r": est, f"{name}_lo": lo, f"{name}_hi": hi}
            rows.append(row)
            print(pd.DataFrame([row]).round(3).to_string(index=False, header=len(rows) == 1), flush=True)
            if figure is None and start == "foundation":
                points = pd.concat([true_f.add_prefix("true_"), gen_f.add_prefix("generated_")], axis=1)
                examples = pd.DataFrame({"true_velocity": list(true_v[:4]), "generated_velocity": list(gen_v[:4])})
                figure = motion_figure(points, examples, {"e_prime": row["e_prime_r"], "s_prime": row["s_prime_r"]})
    args.results.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.results / "motion_agreement.csv", index=False)
    if figure is not None:
        (args.results / "motion_agreement.png").write_bytes(figure)


if __name__ == "__main__":
    main()
