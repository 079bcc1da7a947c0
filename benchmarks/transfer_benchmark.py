"""Does a bigger pretraining cohort make fine-tuning pay off? Study A's transfer step with any pretrained model.

    python benchmarks/transfer_benchmark.py [--pretrained DIR] [--n-hospital 1500] [--seeds 0]
                                            [--out runs/transfer_benchmark]

The demo pretrains on 6,000 ukb subjects (3,600 training patients) to stay quick; the published model saw
42,938. This runs the demo's transfer step (the same hospital and prospective cohorts, seeds and
learning-rate choice on validation) from another pretrained model directory, by default the ``net1d_small``
that ``models_benchmark.py`` trained on its 20,000-subject ukb cohort (14,000 training patients), and prints
the metrics and the paired differences (fine-tuned minus each other model) with their 95 % CIs.

``--seeds 1,2,3`` repeats the step with other seeds (each simulates its own hospital and prospective cohorts and
trains with its own seed; the demo is seed 0) and ends with the differences of every seed side by side, so a
single seed's win or loss can be read against the spread, and a pooled difference (random effects: the
spread between seeds widens its CI; see ``ecgscope.evaluate.metrics.random_effects_pool``).
``--add-run 0=runs/demo/transfer`` puts a finished run (the demo's own transfer step, say) beside them
without training it again. The seeds share one pretrained model, so
the pooled figure is about fine-tuning *this* model, not about pretraining in general.

``--n-train 150,300,600,1800`` draws a learning curve instead: for each size, the step keeps only that many of
the hospital's training patients (validation and test patients unchanged; use ``--n-hospital 3000`` for
1,800 to draw from), runs every seed, and prints the pooled differences per size, so it shows where training
from scratch stops being data-limited. The curve is written to ``OUT/curve.csv``. Its seed-0 point at 300 from
``--pretrained runs/demo/model`` is the demo's own ``transfer_small`` step (the same patients are kept).
Each seed's differences are kept in ``OUT/curve_by_seed.csv``; ``--pool-from`` pools such a table again (or a
``differences_by_seed.csv``) without training.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ecgscope.evaluate.metrics import random_effects_pool
from ecgscope.studies.transfer import run_transfer

DEFAULT_PRETRAINED = Path("runs/models_benchmark/ukb_20000/models/net1d_small")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained", type=Path, default=DEFAULT_PRETRAINED)
    parser.add_argument("--n-hospital", type=int, default=1500)
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, one transfer step each ('' for none)")
    parser.add_argument("--add-run", action="append", default=[], metavar="SEED=DIR",
                        help="a finished transfer run to include, e.g. 0=runs/demo/transfer")
    parser.add_argument("--n-train", default="", help="comma-separated training-set sizes: a learning curve")
    parser.add_argument("--out", type=Path, default=Path("runs/transfer_benchmark"))
    parser.add_argument("--pool-from", type=Path, metavar="CSV",
                        help="pool a kept by-seed differences table (a seed column; n_train too for a curve) "
                             "and write OUT/pooled.csv, training nothing")
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    if args.pool_from:
        print_pooled(pd.read_csv(args.pool_from), args.out)
        return
    if not (args.pretrained / "model.json").exists():
        raise SystemExit(f"{args.pretrained} is not a model directory; run benchmarks/models_benchmark.py "
                         "--models net1d_small first, or pass --pretrained")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if args.n_train:
        learning_curve(args, [int(n) for n in args.n_train.split(",")], seeds)
        return
    every_seed = []
    for item in args.add_run:
        seed, _, run_dir = item.partition("=")
        every_seed.append(pd.read_csv(Path(run_dir) / "transfer_differences.csv").assign(seed=int(seed)))
    for seed in seeds:
        out = args.out if len(seeds) == 1 and not args.add_run else args.out / f"seed{seed}"
        metrics, differences = run_transfer(args.pretrained, out, n_hospital=args.n_hospital, seed=seed,
                                            progress=True)
        print(f"\npretrained: {args.pretrained}; seed {seed}; learning rates chosen: "
              f"{(out / 'learning_rates.json').read_text()}")
        print(metrics.round(3).to_string(index=False))
        print("\nfine-tuned minus the others, paired bootstrap (MAE: negative is better)")
        print(differences.round(3).to_string(index=False))
        every_seed.append(differences.assign(seed=seed))
    if len(every_seed) > 1:
        table = pd.concat(every_seed).sort_values("seed", kind="stable")
        table["cell"] = table.apply(lambda r: f"{r.difference:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]", axis=1)
        keys = ["cohort", "comparison", "target", "metric"]
        side_by_side = table.pivot_table(index=keys, columns="seed", values="cell", aggfunc="first", sort=False)
        side_by_side["pooled"] = pool_seeds(table).set_index(keys)["cell"]
        print("\nfine-tuned minus the others, every seed and pooled (difference [95 % CI])")
        print(side_by_side.to_string())
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "differences_by_seed.csv").write_text(table.drop(columns="cell").to_csv(index=False))


def learning_curve(args: argparse.Namespace, sizes: list[int], seeds: list[int]) -> None:
    """Fine-tuned minus from-scratch and minus pretrained-only, pooled over seeds, per training-set size."""
    rows = []
    for n in sizes:
        for seed in seeds:
            out = args.out / f"n{n}" / f"seed{seed}"
            if (out / "transfer_differences.csv").exists():  # a finished point is kept; delete it to redo it
                differences = pd.read_csv(out / "transfer_differences.csv")
            else:
                differences = run_transfer(args.pretrained, out, n_hospital=args.n_hospital, seed=seed, n_train=n,
                                           progress=True)[1]
            rows.append(differences.assign(seed=seed, n_train=n))
    table = pd.concat(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "curve_by_seed.csv").write_text(table.to_csv(index=False))  # to pool again without training
    pooled = print_pooled(table, args.out)
    (args.out / "curve.csv").write_text(pooled.drop(columns="cell").to_csv(index=False))


def print_pooled(table: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Pool a by-seed table over seeds (per training-set size when it has ``n_train``), print it as a grid
    and write ``out/pooled.csv``."""
    sizes = table["n_train"] if "n_train" in table.columns else pd.Series("all", index=table.index)
    pooled = pd.concat([pool_seeds(group).assign(n_train=n) for n, group in table.groupby(sizes)])
    out.mkdir(parents=True, exist_ok=True)
    (out / "pooled.csv").write_text(pooled.drop(columns="cell").to_csv(index=False))
    seeds = sorted(table["seed"].unique().tolist())
    for cohort, group in pooled.groupby("cohort", sort=False):
        grid = group.pivot_table(index=["comparison", "target", "metric"], columns="n_train", values="cell",
                                 aggfunc="first", sort=False)
        print(f"\n{cohort}: fine-tuned minus the others, random-effects pooled over seeds {seeds} (MAE: negative "
              "is better), by hospital training patients")
        print(grid.to_string())
    return pooled


def pool_seeds(table: pd.DataFrame) -> pd.DataFrame:
    """Random-effects pooled difference per comparison across seeds (DerSimonian-Laird tau, Hartung-Knapp
    interval on k - 1 degrees of freedom), so the spread between training seeds widens the interval."""
    rows = []
    for key, group in table.groupby(["cohort", "comparison", "target", "metric"], sort=False):
        pooled = random_effects_pool(group["difference"], group["ci_low"], group["ci_high"])
        est, low, high = pooled["estimate"], pooled["ci_low"], pooled["ci_high"]
        rows.append((*key, est, low, high, pooled["tau"], pooled["k"], f"{est:+.3f} [{low:+.3f}, {high:+.3f}]"))
    return pd.DataFrame(rows, columns=["cohort", "comparison", "target", "metric", "difference", "ci_low",
                                       "ci_high", "tau", "seeds", "cell"])


if __name__ == "__main__":
    main()
