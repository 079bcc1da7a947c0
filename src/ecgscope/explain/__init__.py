"""Why a model said what it said about one ECG: integrated gradients (Captum) and lead / time-segment occlusion
for regression, binary and Cox heads, per-lead and time-resolved importance, and the model-randomisation
sanity check of Adebayo et al. (2018)."""

from ecgscope.explain.attribution import (
    METHODS,
    Attribution,
    ExplainError,
    attribute,
    head_column,
    integrated_gradients,
    occlusion,
    randomisation_check,
)

__all__ = ["METHODS", "Attribution", "ExplainError", "attribute", "explain_file", "head_column",
           "integrated_gradients", "occlusion", "randomisation_check"]


def explain_file(model_dir, ecg_path, target: str, out, method: str = "integrated_gradients",
                 window_s: float = 0.25):
    """Explain ``target`` for the ECG file at ``ecg_path`` with the model at ``model_dir``; write into ``out``
    ``attribution.npz`` (model input and attributions, leads x samples), ``lead_importance.csv``,
    ``segment_importance.csv`` (0.5 s windows), ``explanation.json`` and ``explanation.png``; return ``out``."""
    import json
    from pathlib import Path

    import numpy as np

    from ecgscope import io
    from ecgscope.contract import ecg_input
    from ecgscope.explain.figure import plot_attribution
    from ecgscope.io.atomic import atomic_dir
    from ecgscope.train import load_model

    loaded = load_model(model_dir)
    found = io.discover_inputs([ecg_path])
    if found.rejected or not found.sources:
        reason = found.rejected[0][1] if found.rejected else "no ECG record in it"
        raise ExplainError(f"{ecg_path}: {reason}")
    ecg = io.load(found.sources[0])
    x = ecg_input(loaded.pipeline, ecg, model=str(model_dir))
    result = attribute(loaded.model, loaded.spec, x, target, loaded.pipeline.leads, loaded.pipeline.fs, method,
                       window_s=window_s)
    with atomic_dir(out, overwrite=True) as tmp:
        np.savez(tmp / "attribution.npz", model_input=x, attribution=result.values,
                 leads=np.array(result.leads), fs=result.fs)
        result.lead_importance().rename("share").to_csv(tmp / "lead_importance.csv", index_label="lead")
        result.segment_importance(0.5).to_csv(tmp / "segment_importance.csv", index_label="lead")
        (tmp / "explanation.json").write_text(json.dumps({
            "target": target, "method": method, "head_output": result.output,
            "head_output_means": "standardised mean" if target in loaded.spec.regression else
            "logit" if target in loaded.spec.binary else "log-risk",
            "completeness_delta": None if np.isnan(result.delta) else result.delta,
            "baseline": "zeros (a flat, isoelectric ECG after the model's preprocessing)",
            "model": str(model_dir), "weights_sha256": loaded.info.get("weights_sha256"),
            "lead_importance": result.lead_importance().round(4).to_dict()}, indent=2) + "\n")
        plot_attribution(x, result, tmp / "explanation.png")
    return Path(out)
