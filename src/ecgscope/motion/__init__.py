"""Synthetic echo motion: a conditional GAN from the 12-lead ECG to one cycle of mitral annular tissue Doppler
velocity and displacement, and the features of any such cycle (s', e', a', e'/a', displacement, timing)."""

from ecgscope.motion.features import FEATURES, curve_errors, motion_features
from ecgscope.motion.gan import MotionGAN, MotionGenerator
from ecgscope.motion.train import (
    MotionError,
    generate_batches,
    generate_motion,
    load_generator,
    motion_agreement,
    paired_curves,
    train_motion,
)

__all__ = ["FEATURES", "MotionError", "MotionGAN", "MotionGenerator", "curve_errors", "generate_batches",
           "generate_motion", "load_generator", "motion_agreement", "motion_features", "paired_curves",
           "train_motion"]
