"""Training: a Lightning module for masked multi-task learning (regression + binary) and a fit helper."""

from ecgscope.train.module import MultiTaskModule, TaskSpec, fit_multitask, predict_multitask, select_device

__all__ = ["MultiTaskModule", "TaskSpec", "fit_multitask", "predict_multitask", "select_device"]
