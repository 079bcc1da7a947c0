"""Training: a Lightning module for masked multi-task learning (regression + binary); ``train.run.train_model``
is the one way a supervised model is trained.

Loading and using a fitted model (``load_model``, ``TaskSpec``) does not import Lightning; the training parts
(``MultiTaskModule``, ``StoreDataset``, ...) import it when first used, so prediction starts faster."""

from ecgscope._lazy import import_on_first_use
from ecgscope.train.artifact import ArtifactError, LoadedModel, export_onnx, load_model, save_model
from ecgscope.train.inference import TaskSpec

# the training parts import Lightning: loaded on first use
__getattr__ = import_on_first_use(__name__, {"MultiTaskModule": "module", "predict_multitask": "module",
                                             "seeded_model": "module", "select_device": "module",
                                             "StoreDataset": "datamodule"})

__all__ = ["ArtifactError", "LoadedModel", "MultiTaskModule", "TaskSpec", "export_onnx", "load_model",
           "StoreDataset", "predict_multitask", "save_model", "seeded_model", "select_device"]

from ecgscope._callable import make_callable  # noqa: E402

make_callable(__name__)  # es.train(...) is ecgscope.api.train
