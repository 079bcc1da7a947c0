"""Compare the architectures on a simulated ukb cohort: accuracy beside the oracle, and speed.

    python benchmarks/models_benchmark.py [--n 20000] [--epochs 15] [--models compact_cnn,inception1d,...]

For each model: RV dysfunction and dilation AUROC, RVEF and RVEDVi MAE and R² on held-out patients, next to
the oracle's; training ECGs/s, and inference ECGs/s in PyTorch and in onnxruntime, on this machine.
Target (issue 4): the default model reaches >= 95 % of the oracle's AUROC and R² and trains fastest among
the models within 1 % of the best. A full run (20,000 ECGs, every model) takes hours on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd

from ecgscope.cohort import derive_labels, link_imaging, patient_split
from ecgscope.evaluate import auroc, mae, r2
from ecgscope.signal import Pipeline
from ecgscope.simulate import simulate_cohort
from ecgscope.simulate.export import write_cohort
from ecgscope.store import Store, ingest
from ecgscope.studies.oracle import fit_oracle, phenotype_score, predict_oracle
from ecgscope.train import TaskSpec, export_onnx, fit_multitask, predict_multitask, save_model, seeded_model

REGRESSION, PHENOTYPES = ["rvef", "rvedvi"], ["rv_dysfunction", "rv_dilation"]
DEFAULT_MODELS = "compact_cnn,net1d_small,inception1d,xresnet1d18,resnet1d_code,xresnet1d50,xresnet1d101"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--models", default=DEFAULT_MODELS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sim = write_cohort(simulate_cohort("ukb", n=args.n, seed=11), tmp / "sim", formats=("wfdb",), progress=False)
        ingest([sim / "wfdb"], tmp / "store", fs=100, rate=100, progress=False)
        store = Store(tmp / "store")
        pairs = derive_labels(link_imaging(store.manifest, sim / "measurements" / "mri.parquet"), PHENOTYPES)
        split = patient_split(pairs, (0.7, 0.1, 0.2), stratify="rv_dysfunction", seed=0).to_numpy()
        pipeline = Pipeline(100.0, 1000, [{"name": "remove_mean"}, {"name": "clip", "limit_mv": 5.0}])
        x = pipeline(np.stack([store.read(int(r)) for r in pairs["ecg_row"]]), 100.0)
        tr, va, te = (split == s for s in ("train", "val", "test"))
        targets = {k: pairs[k].to_numpy(dtype=float) for k in REGRESSION + PHENOTYPES}
        spec = TaskSpec.from_targets({k: v[tr] for k, v in targets.items()}, REGRESSION, PHENOTYPES)
        y = spec.encode(targets)

        oracle = pd.read_parquet(sim / "truth" / "oracle.parquet")
        oracle = oracle.set_index(oracle.ecg_id.astype(str))
        ids = pairs.ecg_id.astype(str)
        models = fit_oracle(oracle.loc[ids[tr]], pairs.loc[tr, REGRESSION])
        ref = predict_oracle(models, oracle.loc[ids[te]])
        ref["rv_dysfunction"] = phenotype_score(ref.rvef, "<=")
        ref["rv_dilation"] = phenotype_score(ref.rvedvi, ">")
        rows = [("oracle", *_scores(pairs, te, ref), np.nan, np.nan, np.nan)]
        for name in args.models.split(","):
            model = seeded_model(name, 0, num_outputs=spec.n_outputs)
            start = time.perf_counter()
            module = fit_multitask(model, spec, x[tr], y[tr], x[va], y[va], max_epochs=args.epochs, progress=False)
            train_rate = tr.sum() * args.epochs / (time.perf_counter() - start)
            start = time.perf_counter()
            pred = predict_multitask(module, x[te])
            torch_rate = te.sum() / (time.perf_counter() - start)
            path = save_model(tmp / name, module.model, name, spec, pipeline)
            onnx = export_onnx(path)
            session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
            start = time.perf_counter()
            for i in range(0, te.sum(), 256):
                session.run(None, {"ecg": x[te][i:i + 256]})
            ort_rate = te.sum() / (time.perf_counter() - start)
            rows.append((name, *_scores(pairs, te, pred), train_rate, torch_rate, ort_rate))
            print(f"done {name}", flush=True)
    table = pd.DataFrame(rows, columns=["model", "dysfunction_auroc", "dilation_auroc", "rvef_mae", "rvef_r2",
                                        "rvedvi_mae", "rvedvi_r2", "train_ecg_s", "infer_torch_ecg_s",
                                        "infer_onnx_ecg_s"])
    pd.set_option("display.width", 200)
    print(f"\nukb n={args.n}, {args.epochs} epochs, 100 Hz x 10 s input, test patients {int(te.sum())}")
    print(table.round(3).to_string(index=False))


def _scores(pairs: pd.DataFrame, te: np.ndarray, pred) -> tuple[float, ...]:
    t = pairs[te]
    p = {k: np.asarray(pred[k]) for k in REGRESSION + PHENOTYPES}
    return (auroc(t.rv_dysfunction, p["rv_dysfunction"]), auroc(t.rv_dilation, p["rv_dilation"]),
            mae(t.rvef, p["rvef"]), r2(t.rvef, p["rvef"]), mae(t.rvedvi, p["rvedvi"]), r2(t.rvedvi, p["rvedvi"]))


if __name__ == "__main__":
    main()
