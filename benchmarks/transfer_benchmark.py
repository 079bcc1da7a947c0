"""Does a bigger pretraining cohort make fine-tuning pay off? Study A's transfer step with any pretrained model.

    python benchmarks/transfer_benchmark.py [--pretrained DIR] [--n-hospital 1500] [--out runs/transfer_benchmark]

The demo pretrains on 6,000 ukb subjects (3,600 training patients) to stay quick; the published model saw
42,938. This runs the demo's transfer step (the same hospital and prospective cohorts, seeds and
learning-rate choice on validation) from another pretrained model directory, by default the ``net1d_small``
that ``models_benchmark.py`` trained on its 20,000-subject ukb cohort (14,000 training patients), and prints
the metrics and the paired differences (fine-tuned minus each other model) with their 95 % CIs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ecgscope.studies.transfer import run_transfer

DEFAULT_PRETRAINED = Path("runs/models_benchmark/ukb_20000/models/net1d_small")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained", type=Path, default=DEFAULT_PRETRAINED)
    parser.add_argument("--n-hospital", type=int, default=1500)
    parser.add_argument("--out", type=Path, default=Path("runs/transfer_benchmark"))
    args = parser.parse_args()
    if not (args.pretrained / "model.json").exists():
        raise SystemExit(f"{args.pretrained} is not a model directory; run benchmarks/models_benchmark.py "
                         "--models net1d_small first, or pass --pretrained")
    metrics, differences = run_transfer(args.pretrained, args.out, n_hospital=args.n_hospital, progress=True)
    pd.set_option("display.width", 200)
    print(f"\npretrained: {args.pretrained}; learning rates chosen: {(args.out / 'learning_rates.json').read_text()}")
    print(metrics.round(3).to_string(index=False))
    print("\nfine-tuned minus the others, paired bootstrap (MAE: negative is better)")
    print(differences.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
