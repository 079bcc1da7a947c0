"""Run configurations: pydantic models loaded from YAML, validated once, copied into each run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ecgscope.errors import EcgscopeError


class ConfigError(EcgscopeError, ValueError):
    """A run configuration is missing a field or has a value outside what is allowed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    """Where the ECGs and their labels are: a store and a cohort table from ``ecgscope cohort build``."""

    store: str = Field(description="a store folder, or its URL in an object store (s3://bucket/stores/ptbxl)")
    cohort: Path
    regression: list[str] = Field(default_factory=list)
    binary: list[str] = Field(default_factory=list)
    order: Literal["auto", "random", "part_blocks"] = Field(
        "auto", description="training order: random (any ECG next), part_blocks (waveform parts in a random "
                            "order, ECGs shuffled within each block of parts: sequential reads, for object "
                            "stores), or auto (random on a disk, part_blocks in an object store)")


class AugmentConfig(_Strict):
    """ECG augmentations applied to training batches only; 0 turns one off."""

    amplitude_scale_sd: float = Field(0.1, ge=0)
    baseline_wander_mv: float = Field(0.1, ge=0)
    noise_mv: float = Field(0.02, ge=0)
    lead_dropout_p: float = Field(0.05, ge=0, le=1)
    random_shift_s: float = Field(0.5, ge=0)


#: The architecture used when none is named: fast on a CPU, within reach of the big models' accuracy
#: (benchmarks/models_benchmark.py measures both).
DEFAULT_MODEL = "net1d_small"
#: The learning rates a study's training run chooses from on validation loss (``train.lr_grid``).
LR_GRID = (1e-3, 3e-3)
#: The second, smaller hospital training set of study A's transfer step (``demo --full``): where training from
#: scratch is still data-limited in the simulation (benchmarks/transfer_benchmark.py --n-train draws the curve).
SMALL_HOSPITAL_TRAIN = 300


class ModelConfig(_Strict):
    """An architecture from the registry and its keyword arguments."""

    name: str = DEFAULT_MODEL
    kwargs: dict = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from ecgscope.models import list_models

        if name not in list_models():
            raise ValueError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
        return name


class FinetuneConfig(_Strict):
    """How a pretrained model adapts (used with ``ecgscope finetune --from MODEL``)."""

    mode: Literal["full", "linear_probe", "gradual", "discriminative"] = "full"
    lr_decay: float = Field(0.5, gt=0, le=1, description="per layer group, for discriminative learning rates")
    unfreeze_every: int = Field(1, ge=1, description="epochs between unfreezing steps, for gradual")


class TrainConfig(_Strict):
    """Optimisation, early stopping and reproducibility."""

    max_epochs: int = Field(15, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(3e-3, gt=0)
    lr_grid: list[float] | None = Field(None, description="learning rates to choose from by the lowest validation "
                                        "loss, one run each under OUT/lr_VALUE; null trains once at lr")
    weight_decay: float = Field(0.05, ge=0)
    seed: int = 0
    patience: int | None = Field(None, ge=1, description="epochs without improvement of `monitor` before stopping")
    monitor: str = Field("val/loss", description="val/loss, val/mae_TARGET or val/auroc_TARGET: early stopping "
                                                 "and the restored best epoch follow it")
    num_workers: int | None = Field(None, ge=0, description="DataLoader worker processes; null: up to 8 on a GPU "
                                    "machine, none on a CPU-only one")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    conformal_alpha: float = Field(0.1, gt=0, lt=1)
    calibration_fraction: float = Field(0.15, gt=0, lt=1, description="share of training patients set aside "
                                        "(untrained on) to calibrate conformal intervals, when the cohort has no "
                                        "'calibration' split")
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)


class TrainerConfig(_Strict):
    """Where training runs and on how many processes (Lightning's ``Trainer``): one process by default.

    ``devices: 4, strategy: ddp`` trains on four GPUs of one machine (or four CPU processes with
    ``accelerator: cpu``); ``num_nodes`` spreads that over machines launched by ``torchrun`` or SLURM. Every rank
    reads its own shard of the cohort each epoch, validation metrics are computed on all ranks' predictions
    gathered, and rank 0 alone writes checkpoints and the model.
    """

    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    devices: int | Literal["auto"] = Field(1, description="processes per machine (GPUs, or CPU processes)")
    num_nodes: int = Field(1, ge=1)
    strategy: str = Field("auto", description="auto (one process), ddp, or another Lightning strategy name")

    @field_validator("devices")
    @classmethod
    def _positive(cls, devices):
        if devices != "auto" and devices < 1:
            raise ValueError("devices must be at least 1 (or auto)")
        return devices


class RunConfig(_Strict):
    """A whole training run (``ecgscope train CONFIG.yaml``)."""

    out: Path
    data: DataConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    task: Literal["multitask"] = "multitask"

    @model_validator(mode="after")
    def _monitor_names_a_target(self) -> RunConfig:
        allowed = ["val/loss", *(f"val/mae_{k}" for k in self.data.regression),
                   *(f"val/auroc_{k}" for k in self.data.binary)]
        if self.train.monitor not in allowed:
            raise ValueError(f"train.monitor {self.train.monitor!r} is not one of: {', '.join(allowed)}")
        return self


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML run configuration; errors list every offending field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read YAML ({exc})") from exc
    return parse_config(data, str(path))


def parse_config(data: dict | None, where: str = "the configuration") -> RunConfig:
    """Validate a run configuration given as a dict; errors list every offending field."""
    try:
        return RunConfig.model_validate(data or {})
    except ValidationError as exc:
        lines = [f"  - {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"{where} is not a valid run configuration:\n" + "\n".join(lines)) from exc
