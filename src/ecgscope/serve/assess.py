"""One ECG in front of a model, as a clinic sees it: a result, or "cannot assess" and why.

:class:`Assessor` holds a model loaded once and answers for ECG records, in three steps that the service
spreads over threads and batches (``prepare`` per record, ``infer`` on a batch, ``answer`` per record) and
that ``predict --input`` runs in turn. The checks, each a reason to answer ``cannot_assess``:

- **contract**: the record must fit the model's input contract (rate is resampled; leads, units and a length
  of at least 95 % of the model's input are required, ``ecgscope.contract``);
- **flat or missing lead**: a lead whose peak-to-peak stays within 0.1 uV;
- **too noisy**: the median lead's beat-to-beat signal-to-noise ratio (:func:`ecgscope.signal.beat_snr_db`,
  the MIT-BIH rule) below :data:`MIN_SNR_DB`, or fewer than three beats found;
- **lead reversal**: a limb-electrode reversal suggested by the median beat, or limb leads that break
  Einthoven's and Goldberger's identities (``ecgscope.signal.leadcheck``);
- **paced**: :data:`MIN_PACING_SPIKES` or more pacemaker spikes (checked at 250 Hz and above);
- **clipped**: more than :data:`MAX_SATURATED_FRACTION` of samples at the amplifier's limit;
- **far from the training data**: the model's out-of-distribution percentile (``ecgscope.train.ood``)
  above its stored limit.

The thresholds are measured, not assumed: ``benchmarks/ood_benchmark.py`` prints how often each check
refuses held-out simulated ECGs, real recordings, and ECGs made noisy with known SNR.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ecgscope.contract import ecg_input
from ecgscope.ecg import ECG
from ecgscope.errors import ContractError, EcgscopeError
from ecgscope.signal import flat_leads
from ecgscope.signal.leadcheck import beat_centres, limb_identity_problem, limb_reversal
from ecgscope.signal.quality import beat_snr_db, pacing_spikes, saturated_fraction
from ecgscope.train.artifact import LoadedModel, load_model
from ecgscope.train.inference import inference_device
from ecgscope.train.ood import FAR_PERCENTILE

#: Median-lead beat SNR (dB) below which an ECG is too noisy to assess; real 12-lead recordings in
#: ``../shared/data`` sit at 9-31 dB, simulated ones at 20-38 dB, and ECGs with noise at -6 dB by the
#: MIT-BIH rule at about 3 dB (``benchmarks/ood_benchmark.py``).
MIN_SNR_DB = 6.0
MIN_PACING_SPIKES = 3
MAX_SATURATED_FRACTION = 0.05
RESULT, CANNOT_ASSESS = "result", "cannot_assess"


@dataclass
class Prepared:
    """One record after its checks: the model input (None when it cannot be made) and what was found."""

    x: np.ndarray | None
    checks: dict
    reasons: list[str]
    ecg: dict
    display: ECG | None = None
    started: float = field(default_factory=time.perf_counter)


class _WithFeatures(nn.Module):
    """The model's pooled embedding and its outputs from one forward pass (what the OOD score needs)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        features = self.model.forward_features(x)
        return features, self.model.forward_head(features)


class _TorchRuntime:
    name = "torch"

    def __init__(self, model: nn.Module):
        self.module = _WithFeatures(model).eval()
        self.device = next(model.parameters()).device

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            features, outputs = self.module(torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(self.device))
        return features.float().cpu().numpy(), outputs.float().cpu().numpy()


class _OnnxRuntime:
    name = "onnxruntime"

    def __init__(self, model: nn.Module, example: np.ndarray):
        import io

        import onnxruntime as ort

        buffer = io.BytesIO()  # exported in memory: serving writes nothing beside the model
        with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice says nothing to a user
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(_WithFeatures(model).eval(), (torch.from_numpy(example),), buffer, input_names=["ecg"],
                              output_names=["features", "outputs"], dynamo=False,
                              dynamic_axes={"ecg": {0: "batch"}, "features": {0: "batch"}, "outputs": {0: "batch"}})
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features, outputs = self.session.run(None, {"ecg": np.ascontiguousarray(x, np.float32)})
        return features, outputs


def _median_ms(run, x: np.ndarray, repeats: int = 15) -> float:
    run(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def choose_runtime(model: nn.Module, example: np.ndarray, runtime: str = "auto"):
    """PyTorch, onnxruntime, or (``auto``) whichever runs one ECG faster here, checked to agree within 1e-3; a
    GPU keeps PyTorch. Returns the runtime and the timings that chose it."""
    if runtime not in ("auto", "torch", "onnxruntime"):
        raise ValueError(f"runtime must be auto, torch or onnxruntime, not {runtime!r}")
    if runtime == "torch" or (runtime == "auto" and torch.cuda.is_available()):
        return _TorchRuntime(model.to(inference_device())), {}
    model = model.cpu()
    torch_runtime = _TorchRuntime(model)
    try:
        onnx_runtime = _OnnxRuntime(model, example)
    except ImportError as exc:
        if runtime == "onnxruntime":
            raise EcgscopeError("onnxruntime is not installed: pip install 'ecgscope[serve]'") from exc
        return torch_runtime, {}
    worst = float(np.abs(onnx_runtime(example)[1] - torch_runtime(example)[1]).max())
    if worst > 1e-3:
        return torch_runtime, {"onnx_disagreement": worst}
    timings = {"torch_ms": _median_ms(torch_runtime, example), "onnxruntime_ms": _median_ms(onnx_runtime, example)}
    faster = onnx_runtime if timings["onnxruntime_ms"] < timings["torch_ms"] else torch_runtime
    return (onnx_runtime if runtime == "onnxruntime" else faster), timings


def quality_checks(ecg: ECG) -> tuple[dict, list[str], ECG | None]:
    """The signal checks of one record (see the module's list): what was measured, the reasons to refuse,
    and the record in the 12 standard leads (None when it cannot be put in them). Limb leads that break the
    identities with no swap to explain them are a warning in ``checks["warnings"]``, as at ingest (a device
    that records the limb leads separately), not a refusal."""
    checks: dict = {"warnings": []}
    reasons: list[str] = []
    identity = limb_identity_problem(ecg.signal, ecg.leads)
    checks["lead_labels"] = None if identity is None else identity.reason
    if identity is not None and identity.swapped is not None:
        reasons.append(f"mislabelled leads: {identity.reason}")
    elif identity is not None:
        checks["warnings"].append(identity.reason)
    try:
        standard = ecg.to_standard()
    except EcgscopeError as exc:
        checks["missing_leads"] = str(exc)
        reasons.append(f"missing lead: {exc}")
        return checks, reasons, None
    signal, fs, leads = standard.signal, standard.fs, standard.leads
    checks["flat_leads"] = flat_leads(signal, leads)
    if checks["flat_leads"]:
        reasons.append(f"flat lead(s) {', '.join(checks['flat_leads'])}: electrode off or lead missing")
    beats = beat_centres(np.asarray(signal, dtype=np.float64), fs)  # found once, read by two checks
    snr = beat_snr_db(signal, fs, beats)
    if snr is None:
        checks["snr_db"] = None
        reasons.append("too noisy: fewer than three beats could be found")
    else:
        median = float(np.median(snr))
        checks["snr_db"] = {"median": round(median, 1), **{lead: round(float(v), 1) for lead, v in zip(leads, snr,
                                                                                                     strict=True)}}
        checks["noisy_leads"] = [lead for lead, v in zip(leads, snr, strict=True) if v < 0]
        if median < MIN_SNR_DB:
            reasons.append(f"too noisy: signal-to-noise {median:.1f} dB in the median lead, below {MIN_SNR_DB:g} dB")
    normalized = bool(ecg.meta.get("normalized"))
    reversal = None if normalized else limb_reversal(signal, fs, beats)
    checks["limb_reversal"] = reversal if not normalized else "not checked (z-scored input)"
    if reversal:
        reasons.append(f"lead reversal: the median beat suggests a {reversal} limb-electrode reversal; check the "
                       "electrode placement and record again")
    spikes = pacing_spikes(signal, fs)
    checks["pacing_spikes"] = spikes if spikes is not None else f"not checked below 250 Hz ({fs:g} Hz)"
    if spikes is not None and spikes >= MIN_PACING_SPIKES:
        reasons.append(f"paced: {spikes} pacemaker spikes; the model was not made for paced rhythms")
    clipped = saturated_fraction(signal)
    checks["saturated_fraction"] = round(clipped, 4)
    if clipped > MAX_SATURATED_FRACTION:
        reasons.append(f"clipped: {clipped:.0%} of samples sit at the amplifier's limit")
    return checks, reasons, standard


class Assessor:
    """A model directory loaded once, answering for ECG records (see the module's checks)."""

    def __init__(self, model_dir: str | Path, runtime: str = "auto"):
        self.path = Path(model_dir)
        self.loaded: LoadedModel = load_model(model_dir)
        self.name = self.path.resolve().name
        info = self.loaded.info
        pipeline = self.loaded.pipeline
        example = np.random.default_rng(0).normal(0, 0.3, (1, len(pipeline.leads), pipeline.n_samples))
        self.runtime, self.runtime_timings = choose_runtime(self.loaded.model, example.astype(np.float32), runtime)
        self.identity = {"name": self.name, "version": f"{info.get('ecgscope_version')}+{info['weights_sha256'][:12]}",
                         "architecture": info["architecture"], "weights_sha256": info["weights_sha256"]}

    def describe(self) -> dict:
        """What ``GET /v1/models`` says of the model: identity, contract, outputs, thresholds, card."""
        spec, info = self.loaded.spec, self.loaded.info
        return {**self.identity, "runtime": self.runtime.name, "input_contract": self.loaded.pipeline.to_dict(),
                "contract": self.loaded.pipeline.describe(),
                "targets": {"regression": spec.regression, "binary": spec.binary, "survival": spec.survival},
                "interval_coverage": {k: 1 - c.alpha for k, c in self.loaded.conformal.items()},
                "thresholds": info.get("thresholds", {}), "ood": info.get("ood") is not None,
                "model_card": self.loaded.card,
                "model_card_markdown": (self.path / "model_card.md").read_text()
                if (self.path / "model_card.md").exists() else ""}

    def prepare(self, ecg: ECG) -> Prepared:
        """Run the checks and build the model input (cheap enough for a request thread)."""
        started = time.perf_counter()
        summary = {"fs": ecg.fs, "n_samples": ecg.n_samples, "duration_s": round(ecg.duration_s, 3),
                   "leads": list(ecg.leads)}
        checks, reasons, standard = quality_checks(ecg)
        x = None
        try:
            x = ecg_input(self.loaded.pipeline, standard if standard is not None else ecg, model=self.name)
            checks["contract"] = "fits"
        except (ContractError, EcgscopeError) as exc:
            checks["contract"] = str(exc)
            reasons.append(f"outside the input contract: {exc}")
        return Prepared(x, checks, reasons, summary, standard, started)

    def infer(self, xs: np.ndarray) -> list[dict]:
        """Decoded outputs and OOD percentile for a batch of model inputs (n, leads, samples)."""
        features, outputs = self.runtime(xs)
        decoded = self.loaded.spec.decode(outputs)
        ood = self.loaded.ood.percentile(features) if self.loaded.ood is not None else np.full(len(xs), np.nan)
        return [{**{k: float(v[i]) for k, v in decoded.items()}, "_ood": float(ood[i])} for i in range(len(xs))]

    def answer(self, prepared: Prepared, inferred: dict | None) -> dict:
        """The response for one record: status, reasons, checks, and (for a result) the predictions."""
        reasons, checks = list(prepared.reasons), dict(prepared.checks)
        if inferred is not None and self.loaded.ood is not None:
            percentile = inferred["_ood"]
            checks["ood"] = {"percentile": round(percentile, 2), "far_percentile": FAR_PERCENTILE,
                             "far": percentile > FAR_PERCENTILE}
            if percentile > FAR_PERCENTILE:
                reasons.append(f"far from the data the model was trained on: farther than {percentile:.1f} % of "
                               f"held-out training-like ECGs (limit {FAR_PERCENTILE:g} %)")
        elif inferred is not None:
            checks["ood"] = "not available: the model directory has no out-of-distribution reference"
        out = {"status": CANNOT_ASSESS if reasons else RESULT, "reasons": reasons, "checks": checks,
               "ecg": prepared.ecg, "model": self.identity, "targets": {}, "phenotypes": {}, "risks": {}}
        if reasons or inferred is None:
            return out
        spec, thresholds = self.loaded.spec, self.loaded.info.get("thresholds", {})
        for k in spec.regression:
            entry = {"value": inferred[k]}
            if f"{k}_std" in inferred:
                entry["std"] = inferred[f"{k}_std"]
            if k in self.loaded.conformal:
                conf = self.loaded.conformal[k]
                lo, hi = conf.interval(np.array([inferred[k]]),
                                       np.array([inferred[f"{k}_std"]]) if conf.normalised_ else None)
                entry |= {"lower": float(lo[0]), "upper": float(hi[0]), "coverage": 1 - conf.alpha}
            out["targets"][k] = entry
        for k in spec.binary:
            entry = {"probability": inferred[k]}
            if k in thresholds:
                entry |= {"threshold": thresholds[k]["value"], "flag": bool(inferred[k] >= thresholds[k]["value"]),
                          "threshold_rule": thresholds[k].get("rule")}
            out["phenotypes"][k] = entry
        for k in spec.survival:
            out["risks"][k] = {"log_risk": inferred[f"{k}_log_risk"]}
        return out

    def assess(self, ecgs: list[ECG]) -> list[dict]:
        """Answer for several records at once (one batch through the model)."""
        prepared = [self.prepare(ecg) for ecg in ecgs]
        ready = [i for i, p in enumerate(prepared) if p.x is not None]
        inferred: list[dict | None] = [None] * len(prepared)
        if ready:
            for i, result in zip(ready, self.infer(np.stack([prepared[i].x for i in ready])), strict=True):
                inferred[i] = result
        answers = [self.answer(p, r) for p, r in zip(prepared, inferred, strict=True)]
        for p, a in zip(prepared, answers, strict=True):
            a["elapsed_ms"] = round(1000 * (time.perf_counter() - p.started), 2)
        return answers
