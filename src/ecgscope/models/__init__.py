"""ECG model architectures in a registry: ``create_model(name, **kwargs)``, ``list_models(pattern)``.

Families (one module each, registered explicitly below): ``compact`` (a plain residual baseline),
``resnet1d`` (CODE style), ``xresnet1d`` and ``inception1d`` (the PTB-XL benchmark's best), ``net1d``
(ECGFounder's architecture, with an adapter for its published checkpoint, and ``net1d_small``, the CPU
default). Every model has ``forward_features``,
``forward_head``, ``reset_head(n)``, ``num_features`` and a ``pretrained_cfg`` input contract.
"""

import warnings

from ecgscope.models import compact, inception1d, net1d, resnet1d, xresnet1d  # noqa: F401  (register models)
from ecgscope.models.config import ModelCfg
from ecgscope.models.registry import create_model, list_models, register_model

# an encoder without targets has a zero-width head (num_outputs=0); initialising it is a harmless no-op
warnings.filterwarnings("ignore", message="Initializing zero-element tensors is a no-op")

__all__ = ["ModelCfg", "create_model", "list_models", "register_model"]
