"""Blocks shared by model families: the head API mixin, SAME padding, squeeze-excitation, Swish."""

from ecgscope.models.layers.common import HeadMixin, SamePadConv1d, SamePadMaxPool1d, SqueezeExcite1d, Swish

__all__ = ["HeadMixin", "SamePadConv1d", "SamePadMaxPool1d", "SqueezeExcite1d", "Swish"]
