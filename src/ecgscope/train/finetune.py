"""Transfer learning: start from a saved model and adapt it to a new cohort.

Modes (``train.finetune.mode`` in the run configuration):

- ``full``: every weight trains at the same learning rate;
- ``linear_probe``: only the new head trains, the backbone is frozen;
- ``gradual``: the head first, then one more layer group from the top every ``unfreeze_every`` epochs;
- ``discriminative``: everything trains, each layer group at ``lr * lr_decay ** depth`` (depth 0 = nearest
  the head), so early, generic layers move least.
"""

from __future__ import annotations

import lightning as L
from torch import nn


def layer_groups(model: nn.Module) -> list[nn.Module]:
    """The backbone's modules in forward order, containers expanded one level, the head left out."""
    head = getattr(model, "head_attr", "head")
    groups: list[nn.Module] = []
    for name, child in model.named_children():
        if name == head:
            continue
        if isinstance(child, nn.Sequential | nn.ModuleList):
            groups.extend(child)
        else:
            groups.append(child)
    return [g for g in groups if list(g.parameters())]


def head_module(model: nn.Module) -> nn.Module:
    """The output layer."""
    return getattr(model, getattr(model, "head_attr", "head"))


def set_trainable(module: nn.Module, trainable: bool) -> None:
    """Freeze or unfreeze every parameter of ``module``."""
    for p in module.parameters():
        p.requires_grad_(trainable)


def discriminative_param_groups(model: nn.Module, lr: float, decay: float) -> list[dict]:
    """Optimizer parameter groups: the head at ``lr``, each layer group below at a further ``decay`` factor."""
    groups = layer_groups(model)
    out = [{"params": list(head_module(model).parameters()), "lr": lr}]
    for depth, group in enumerate(reversed(groups), start=1):
        out.append({"params": list(group.parameters()), "lr": lr * decay**depth})
    return out


class FrozenInEval(L.Callback):
    """Keep fully frozen layer groups in eval mode, so their BatchNorm statistics do not drift either.

    Lightning switches the whole model to train mode at each epoch; this runs after it.
    """

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        for group in layer_groups(pl_module.model):
            if not any(p.requires_grad for p in group.parameters()):
                group.eval()


class GradualUnfreezing(L.Callback):
    """Unfreeze one more layer group from the top every ``every`` epochs (the head is always trainable)."""

    def __init__(self, every: int = 1):
        self.every = every

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        groups = layer_groups(pl_module.model)
        n_open = min(trainer.current_epoch // self.every, len(groups))
        for k, group in enumerate(reversed(groups)):
            set_trainable(group, k < n_open)
        set_trainable(head_module(pl_module.model), True)
        FrozenInEval().on_train_epoch_start(trainer, pl_module)
