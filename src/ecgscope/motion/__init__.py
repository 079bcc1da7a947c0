"""Synthetic echo motion: a conditional GAN from the 12-lead ECG to one cycle of mitral annular tissue Doppler
velocity and displacement, and the features of any such cycle (s', e', a', e'/a', displacement, timing)."""

from ecgscope._lazy import import_on_first_use
from ecgscope.motion.features import FEATURES, curve_errors, motion_features
from ecgscope.motion.generate import (
    MotionError,
    generate_batches,
    generate_motion,
    load_generator,
    motion_agreement,
    paired_curves,
)
from ecgscope.motion.generator import MotionGenerator

# the training parts import Lightning: loaded on first use, so generation starts faster
__getattr__ = import_on_first_use(__name__, {"MotionGAN": "gan", "train_motion": "train"})

__all__ = ["FEATURES", "MotionError", "MotionGAN", "MotionGenerator", "curve_errors", "generate_batches",
           "generate_motion", "load_generator", "motion_agreement", "motion_features", "paired_curves",
           "train_motion"]
