"""Training: a Lightning module for masked multi-task learning (regression + binary); ``train.run.train_model``
is the one way a supervised model is trained."""

from ecgscope.train.artifact import ArtifactError, LoadedModel, export_onnx, load_model, save_model
from ecgscope.train.datamodule import StoreDataset
from ecgscope.train.module import (
    MultiTaskModule,
    TaskSpec,
    predict_multitask,
    seeded_model,
    select_device,
)

__all__ = ["ArtifactError", "LoadedModel", "MultiTaskModule", "TaskSpec", "export_onnx", "load_model",
           "StoreDataset", "predict_multitask", "save_model", "seeded_model", "select_device"]

from ecgscope._callable import make_callable

make_callable(__name__)  # es.train(...) is ecgscope.api.train
