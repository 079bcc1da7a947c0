"""The model artifact: a directory anyone can load without unpickling, and export to ONNX.

::

    weights.safetensors   the state dict (safetensors: tensors only, no code)
    model.json            architecture and its arguments, tasks and target scaling, input contract,
                          sha256 of the weights, ecgscope version
    preprocess.json       the exact signal pipeline (ecgscope.signal.Pipeline)
    metrics.json          whatever evaluation the run recorded
    model_card.md         intended use, data, performance, limitations
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ecgscope import __version__
from ecgscope.errors import EcgscopeError
from ecgscope.evaluate.classification import choose_thresholds
from ecgscope.evaluate.conformal import SplitConformal
from ecgscope.io.atomic import atomic_dir
from ecgscope.models import create_model
from ecgscope.signal import Pipeline
from ecgscope.train.module import TaskSpec

FORMAT_VERSION = 1
CARD_TEMPLATE = """# Model card: {architecture}

- **What it predicts**: {targets}
- **Input**: 12-lead ECG, {fs:g} Hz, {n_samples} samples, leads {leads}, {units}; preprocessing in
  `preprocess.json`.
- **Intended use**: research on ECG-based estimation of cardiac structure and function, as a screening
  aid that points to imaging. An ECG model does not replace echocardiography or cardiac MRI.
- **Training data**: {data}
- **Performance**: see `metrics.json` ({metrics_summary}).
- **Limitations**: performance depends on the population, devices and label definitions it was trained
  on; check calibration and subgroups before use on another cohort. Intervals assume the test data
  resemble the calibration data.
- **Software**: ecgscope {version}.
"""


class ArtifactError(EcgscopeError, ValueError):
    """A model directory is incomplete, tampered with, or does not match its declared architecture."""


@dataclass
class LoadedModel:
    """A model restored from its directory, with everything needed to use it."""

    model: nn.Module
    spec: TaskSpec
    pipeline: Pipeline
    info: dict
    conformal: dict[str, SplitConformal]


def operating_thresholds(y: dict[str, np.ndarray], pred: dict[str, np.ndarray], targets: list[str],
                         chosen_on: str, rule: str = "youden") -> dict[str, dict]:
    """Each binary target's threshold by ``rule``, chosen on the given patients (``chosen_on`` names them)."""
    return {target: {"rule": rule, "value": value, "chosen_on": chosen_on}
            for target, value in choose_thresholds(y, pred, targets, rule).items()}


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (the checksum model directories record)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(path: str | Path, model: nn.Module, architecture: str, spec: TaskSpec, pipeline: Pipeline, *,
               model_kwargs: dict | None = None, metrics: dict | None = None, data: str = "not recorded",
               conformal: dict[str, SplitConformal] | None = None, thresholds: dict[str, dict] | None = None,
               overwrite: bool = True) -> Path:
    """Write ``model`` as an artifact directory (atomically) and return its path.

    ``conformal`` holds fitted interval calibrations per regression target; ``predict`` uses them.
    ``thresholds`` holds each binary target's operating point, chosen on patients the model will not be
    reported on (``{target: {"rule", "value", "chosen_on"}}``, see :func:`operating_thresholds`);
    ``ecgscope evaluate --model`` reports at them.
    """
    from safetensors.torch import save_file

    kwargs = {"num_outputs": spec.n_outputs, **(model_kwargs or {})}
    cfg = getattr(model, "pretrained_cfg", None)
    with atomic_dir(path, overwrite=overwrite) as tmp:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "weights.safetensors"))
        info = {
            "format_version": FORMAT_VERSION, "ecgscope_version": __version__, "architecture": architecture,
            "model_kwargs": kwargs, "tasks": spec.to_dict(), "input": cfg.to_dict() if cfg is not None else None,
            "weights_sha256": file_sha256(tmp / "weights.safetensors"),
            "conformal": {k: c.to_dict() for k, c in (conformal or {}).items()},
            "thresholds": thresholds or {},
        }
        (tmp / "model.json").write_text(json.dumps(info, indent=2) + "\n")
        (tmp / "preprocess.json").write_text(pipeline.to_json())
        (tmp / "metrics.json").write_text(json.dumps(metrics or {}, indent=2, default=float) + "\n")
        summary = ", ".join(f"{k}: {v:.3f}" for k, v in (metrics or {}).items() if isinstance(v, int | float))
        (tmp / "model_card.md").write_text(CARD_TEMPLATE.format(
            architecture=architecture, targets=", ".join(spec.names) or "-", fs=pipeline.fs,
            n_samples=pipeline.n_samples, leads="I, II, III, aVR, aVL, aVF, V1-V6", units="mV",
            data=data, metrics_summary=summary or "none recorded", version=__version__))
    return Path(path)


def load_model(path: str | Path) -> LoadedModel:
    """Load an artifact directory; never unpickles. Raises ``ArtifactError`` if it was altered or mismatched."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    for name in ("weights.safetensors", "model.json", "preprocess.json"):
        if not (path / name).exists():
            raise ArtifactError(f"{path} is not an ecgscope model directory: {name} is missing")
    try:
        info = json.loads((path / "model.json").read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path / 'model.json'} is not valid JSON ({exc})") from exc
    if file_sha256(path / "weights.safetensors") != info.get("weights_sha256"):
        raise ArtifactError(f"{path / 'weights.safetensors'} does not match the checksum in model.json: the "
                            "weights were changed after the model was saved; re-export the model")
    try:
        state = load_file(str(path / "weights.safetensors"))
    except (SafetensorError, OSError) as exc:
        raise ArtifactError(f"{path / 'weights.safetensors'} is not a readable safetensors file ({exc})") from exc
    try:
        model = create_model(info["architecture"], **info.get("model_kwargs", {}))
    except (KeyError, TypeError) as exc:
        raise ArtifactError(f"{path}: cannot build architecture {info.get('architecture')!r} ({exc})") from exc
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        raise ArtifactError(f"{path}: the weights do not fit {info['architecture']} ({len(missing)} missing, "
                            f"{len(unexpected)} unexpected, {len(wrong)} of another shape, e.g. "
                            f"{(missing + unexpected + wrong)[:2]}); was model.json edited or the wrong file copied?")
    model.load_state_dict(state)
    model.eval()
    spec = TaskSpec(**info["tasks"])
    conformal = {k: SplitConformal.from_dict(v) for k, v in info.get("conformal", {}).items()}
    return LoadedModel(model, spec, Pipeline.from_json((path / "preprocess.json").read_text()), info, conformal)


def export_onnx(path: str | Path, out: str | Path | None = None, atol: float = 1e-4) -> Path:
    """Export a model directory to ONNX and check that onnxruntime reproduces PyTorch within ``atol``."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ArtifactError("ONNX export needs onnxruntime: pip install 'ecgscope[onnx]'") from exc
    loaded = load_model(path)
    out = Path(out) if out is not None else Path(path) / "model.onnx"
    x = torch.randn(2, 12, loaded.pipeline.n_samples, generator=torch.Generator().manual_seed(0))
    torch.onnx.export(loaded.model, (x,), str(out), input_names=["ecg"], output_names=["outputs"],
                      dynamic_axes={"ecg": {0: "batch"}, "outputs": {0: "batch"}}, dynamo=False)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"ecg": x.numpy()})[0]
    with torch.no_grad():
        want = loaded.model(x).numpy()
    worst = float(np.abs(got - want).max())
    if worst > atol:
        out.unlink(missing_ok=True)
        raise ArtifactError(f"ONNX outputs differ from PyTorch by {worst:.2e} (> {atol:g}); export refused")
    return out
