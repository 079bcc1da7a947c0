"""Training: a Lightning module for masked multi-task learning (regression + binary) and a fit helper."""

from ecgscope.train.artifact import ArtifactError, LoadedModel, export_onnx, load_model, save_model
from ecgscope.train.module import (
    MultiTaskModule,
    TaskSpec,
    fit_multitask,
    predict_multitask,
    seeded_model,
    select_device,
)

__all__ = ["ArtifactError", "LoadedModel", "MultiTaskModule", "TaskSpec", "export_onnx", "fit_multitask",
           "load_model", "predict_multitask", "save_model", "seeded_model", "select_device"]
