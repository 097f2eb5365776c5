"""Batch-norm folding for deployment: conv + Darknet's batch norm -> one conv with a bias.

At inference Darknet's CPU batch norm is `(x - mean) / (sqrt(var) + 1e-6) *
scales + biases` (`normalize_cpu`, `scale_bias`, `add_bias`), a per-channel
affine map that `BatchNorm.folded()` gives as (scale, shift); folding it
into the convolution gives `conv(x, W * scale) + shift`.  (Darknet's own
`denormalize_convolutional_layer` folds with `sqrt(var + .00001)`, the GPU
formula; the CPU one is kept here because it is what the goldens hold.)
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from pydarknet.layers.convolutional import Convolutional
from pydarknet.network import Darknet


def fold_convolutional(layer: Convolutional) -> None:
    """Fold `layer.bn` into `layer.conv` in place; afterwards `bn is None` and the conv has a bias."""
    if layer.bn is None:
        return
    old = layer.conv
    scale, shift = layer.bn.folded()
    conv = nn.Conv2d(
        old.in_channels, old.out_channels, old.kernel_size, old.stride, old.padding,
        groups=old.groups, bias=True, device=old.weight.device, dtype=old.weight.dtype,
    )
    with torch.no_grad():
        conv.weight.copy_(old.weight * scale.view(-1, 1, 1, 1))
        conv.bias.copy_(shift)
    layer.conv = conv
    layer.bn = None
    layer.batch_normalize = 0


def fuse_batchnorm(net: Darknet) -> Darknet:
    """A deep copy of `net` in eval mode with every convolutional batch norm folded in.

    The copy gives the same outputs at inference (within float32 rounding);
    it is for inference only (there are no batch statistics left to train).
    """
    fused = copy.deepcopy(net).eval()
    for layer in fused.layers:
        if isinstance(layer, Convolutional):
            fold_convolutional(layer)
    return fused
