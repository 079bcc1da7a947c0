"""The model artifact: a directory anyone can load without unpickling, and export to ONNX.

::

    weights.safetensors   the state dict (safetensors: tensors only, no code)
    model.json            architecture and its arguments, tasks and target scaling, input contract (a copy
                          of preprocess.json's, checked on load), sha256 of the weights, ecgscope version
    preprocess.json       the input contract: rate, length, leads, units and signal steps (ecgscope.signal.Pipeline)
    metrics.json          whatever evaluation the run recorded
    model_card.md         intended use, data, performance, limitations (TRIPOD+AI's items, ecgscope.train.card)
    model_card.json       the same card as data, when the run computed it (GET /v1/models serves it)
    ood.safetensors       the out-of-distribution reference (ecgscope.train.ood), checksum in model.json
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ecgscope import __version__
from ecgscope.errors import EcgscopeError
from ecgscope.evaluate.classification import choose_thresholds
from ecgscope.evaluate.conformal import SplitConformal
from ecgscope.io.atomic import atomic_dir, atomic_file
from ecgscope.models import create_model
from ecgscope.signal import Pipeline
from ecgscope.train.card import card_markdown
from ecgscope.train.inference import TaskSpec
from ecgscope.train.ood import FILE as OOD_FILE
from ecgscope.train.ood import OODReference

#: 2: ``input`` in model.json is the contract of preprocess.json (in 1 it was the architecture's default).
FORMAT_VERSION = 2
CARD_TEMPLATE = """# Model card: {architecture}

- **What it predicts**: {targets}
- **Input**: {n_leads}-lead ECG, {fs:g} Hz, {n_samples} samples, leads {leads}, {units}; steps {steps}
  (`preprocess.json`). Records shorter than that are not zero-padded: they get no prediction.
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
    ood: OODReference | None = None
    card: dict = field(default_factory=dict)
    #: the directory it was loaded from
    path: Path | None = None


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
               ood: OODReference | None = None, card: dict | None = None, overwrite: bool = True) -> Path:
    """Write ``model`` as an artifact directory (atomically) and return its path.

    ``conformal`` holds fitted interval calibrations per regression target; ``predict`` uses them.
    ``thresholds`` holds each binary target's operating point, chosen on patients the model will not be
    reported on (``{target: {"rule", "value", "chosen_on"}}``, see :func:`operating_thresholds`);
    ``ecgscope evaluate --model`` reports at them. ``ood`` is the out-of-distribution reference and ``card``
    the TRIPOD+AI model card (:func:`ecgscope.train.card.model_card`), when the run computed them.
    """
    from safetensors.torch import save_file

    kwargs = {"num_outputs": spec.n_outputs, **(model_kwargs or {})}
    cfg = getattr(model, "pretrained_cfg", None)
    source = {k: v for k, v in (cfg.to_dict() if cfg is not None else {}).items() if k in ("paper", "licence") and v}
    with atomic_dir(path, overwrite=overwrite) as tmp:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "weights.safetensors"))
        if ood is not None:
            ood.save(tmp / OOD_FILE)
        info = {
            "format_version": FORMAT_VERSION, "ecgscope_version": __version__, "architecture": architecture,
            "model_kwargs": kwargs, "tasks": spec.to_dict(), "input": pipeline.to_dict(), "architecture_source": source,
            "weights_sha256": file_sha256(tmp / "weights.safetensors"),
            "conformal": {k: c.to_dict() for k, c in (conformal or {}).items()},
            "thresholds": thresholds or {},
            "ood": None if ood is None else {"sha256": file_sha256(tmp / OOD_FILE), "file": OOD_FILE},
        }
        (tmp / "model.json").write_text(json.dumps(info, indent=2) + "\n")
        (tmp / "preprocess.json").write_text(pipeline.to_json())
        (tmp / "metrics.json").write_text(json.dumps(metrics or {}, indent=2, default=float) + "\n")
        if card:
            (tmp / "model_card.json").write_text(json.dumps(card, indent=2, default=float) + "\n")
            (tmp / "model_card.md").write_text(card_markdown(card))
        else:
            summary = ", ".join(f"{k}: {v:.3f}" for k, v in (metrics or {}).items() if isinstance(v, int | float))
            (tmp / "model_card.md").write_text(CARD_TEMPLATE.format(
                architecture=architecture, targets=", ".join(spec.names) or "-", fs=pipeline.fs,
                n_samples=pipeline.n_samples, n_leads=len(pipeline.leads), leads=", ".join(pipeline.leads),
                units=pipeline.units, steps=", ".join(step["name"] for step in pipeline.steps) or "none",
                data=data, metrics_summary=summary or "none recorded", version=__version__))
    return Path(path)


def read_model_directory(path: str | Path, descriptor: str = "model.json", what: str = "an ecgscope model directory",
                         error: type[Exception] = ArtifactError) -> tuple[dict, dict, Pipeline]:
    """The one reader of a model directory (a trained model, or a motion generator): its descriptor JSON, its
    weights (safetensors, checked against the descriptor's SHA-256; never unpickled) and its input pipeline.
    Raises ``error`` naming the file and what to do when one is missing, unreadable or altered."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    for name in ("weights.safetensors", descriptor, "preprocess.json"):
        if not (path / name).exists():
            raise error(f"{path} is not {what}: {name} is missing")
    try:
        info = json.loads((path / descriptor).read_text())
    except json.JSONDecodeError as exc:
        raise error(f"{path / descriptor} is not valid JSON ({exc})") from exc
    if file_sha256(path / "weights.safetensors") != info.get("weights_sha256"):
        raise error(f"{path / 'weights.safetensors'} does not match the checksum in {descriptor}: the weights were "
                    "changed after the model was saved; save or export the model again")
    try:
        state = load_file(str(path / "weights.safetensors"))
    except (SafetensorError, OSError) as exc:
        raise error(f"{path / 'weights.safetensors'} is not a readable safetensors file ({exc})") from exc
    return info, state, Pipeline.from_json((path / "preprocess.json").read_text())


def load_model(path: str | Path) -> LoadedModel:
    """Load an artifact directory; never unpickles. Raises ``ArtifactError`` if it was altered or mismatched."""
    path = Path(path)
    info, state, pipeline = read_model_directory(path)
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
    if info.get("format_version", 1) >= 2 and Pipeline.from_dict(info["input"]) != pipeline:
        raise ArtifactError(f"{path}: model.json's input contract ({Pipeline.from_dict(info['input']).describe()}) "
                            f"differs from preprocess.json's ({pipeline.describe()}); one of them was edited")
    ood = None
    if info.get("ood"):
        ood_path = path / info["ood"]["file"]
        if not ood_path.exists() or file_sha256(ood_path) != info["ood"]["sha256"]:
            raise ArtifactError(f"{ood_path} is missing or does not match the checksum in model.json")
        ood = OODReference.load(ood_path)
    card = json.loads((path / "model_card.json").read_text()) if (path / "model_card.json").exists() else {}
    return LoadedModel(model, spec, pipeline, info, conformal, ood, card, path)


def onnx_metadata(loaded: LoadedModel) -> dict[str, str]:
    """What a runtime needs beside the graph to use its raw output (all values JSON text).

    ``input_contract``: preprocess.json's contract (apply it before the graph); ``output_columns``: the name
    of each column of ``outputs`` (``NAME`` mean and ``NAME_log_variance`` per regression target, ``NAME_logit``
    per binary target, ``NAME_log_risk`` per survival target); ``target_scaling``: per regression target the
    ``mean`` and ``std`` that turn the standardised output into its units (value = output * std + mean,
    std = exp(0.5 * log_variance) * std); ``probability_correction``: per binary target the log of the
    training positive-class weight to subtract from the logit before the sigmoid; ``conformal`` and
    ``thresholds`` as in model.json.
    """
    spec, columns = loaded.spec, []
    for name, (_, width) in spec.layout.items():
        if name in spec.regression:
            columns += [name, f"{name}_log_variance"][:width]
        else:
            columns.append(f"{name}_logit" if name in spec.binary else f"{name}_log_risk")
    return {
        "ecgscope_version": __version__, "architecture": loaded.info["architecture"],
        "input_contract": json.dumps(loaded.pipeline.to_dict()), "output_columns": json.dumps(columns),
        "target_scaling": json.dumps({k: {"mean": spec.mean[k], "std": spec.std[k]} for k in spec.regression}),
        "probability_correction": json.dumps({k: float(np.log(spec.pos_weight.get(k, 1.0))) for k in spec.binary}),
        "conformal": json.dumps(loaded.info.get("conformal", {})),
        "thresholds": json.dumps(loaded.info.get("thresholds", {})),
    }


def export_onnx(path: str | Path, out: str | Path | None = None, atol: float = 1e-4) -> Path:
    """Export a model directory to ONNX with :func:`onnx_metadata` in the file, and check that onnxruntime
    reproduces PyTorch within ``atol``."""
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as exc:
        raise ArtifactError("ONNX export needs onnx and onnxruntime: pip install 'ecgscope[onnx]'") from exc
    loaded = load_model(path)
    out = Path(out) if out is not None else Path(path) / "model.onnx"
    pipeline = loaded.pipeline
    x = torch.randn(2, len(pipeline.leads), pipeline.n_samples, generator=torch.Generator().manual_seed(0))
    with atomic_file(out) as tmp:
        torch.onnx.export(loaded.model, (x,), str(tmp), input_names=["ecg"], output_names=["outputs"],
                          dynamic_axes={"ecg": {0: "batch"}, "outputs": {0: "batch"}}, dynamo=False)
        graph = onnx.load(str(tmp))
        onnx.helper.set_model_props(graph, onnx_metadata(loaded))
        onnx.save(graph, str(tmp))
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = session.run(None, {"ecg": x.numpy()})[0]
        with torch.no_grad():
            want = loaded.model(x).numpy()
        worst = float(np.abs(got - want).max())
        if worst > atol:
            raise ArtifactError(f"ONNX outputs differ from PyTorch by {worst:.2e} (> {atol:g}); export refused")
    return out
