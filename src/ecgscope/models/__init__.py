"""ECG model architectures in a registry: ``create_model(name, **kwargs)``, ``list_models()``."""

from ecgscope.models import compact  # noqa: F401  (registers its models)
from ecgscope.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
