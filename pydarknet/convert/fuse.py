"""Batch-norm folding for deployment: conv + Darknet's batch norm -> one conv with a bias.

At inference Darknet's CPU batch norm is `(x - mean) / (sqrt(var) + 1e-6) *
scales + biases` (`normalize_cpu`, `scale_bias`, `add_bias`), a per-channel
affine map that `BatchNorm.folded()` gives as (scale, shift); folding it
into the convolution gives `conv(x, W * scale) + shift`.  (pjreddie's own
`denormalize_convolutional_layer` folds with `sqrt(var + .00001)`, the GPU
formula; the CPU one is kept here because it is what the goldens hold.)
In AlexeyAB's dialect the batch norm is `sqrt(var + .00001)` and the fold is
its `fuse_conv_batchnorm` (src/network.c), which `test_detector` runs before
predicting: in double, `weights *= scales / sqrt(var + .00001)` rounded to
float, `biases -= scales * mean / sqrt(var + .00001)` (`BatchNorm.folded`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from pydarknet.layers.convolutional import Convolutional
from pydarknet.layers.shortcut import Shortcut
from pydarknet.network import Darknet


def fold_convolutional(layer: Convolutional) -> None:
    """Fold `layer.bn` into `layer.conv` in place; afterwards `bn is None` and the conv has a bias."""
    if layer.bn is None:
        return
    old = layer.conv
    scale, shift = layer.bn.folded()
    conv = nn.Conv2d(  # on the meta device: no random init of the weights set below
        old.in_channels, old.out_channels, old.kernel_size, old.stride, old.padding, old.dilation,
        groups=old.groups, bias=True, device="meta",
    )
    with torch.no_grad():
        # float64 scale (AlexeyAB): the product in double, rounded to the weights' type
        conv.weight = nn.Parameter((old.weight * scale.view(-1, 1, 1, 1)).to(old.weight.dtype))
        conv.bias = nn.Parameter(shift.to(old.weight.dtype))
    layer.conv = conv
    layer.bn = None
    layer.batch_normalize = 0


def fuse_batchnorm(net: Darknet, in_place: bool = False) -> Darknet:
    """A deep copy of `net` (`net` itself if `in_place`) in eval mode with every convolutional batch norm folded in.

    The result gives the same outputs at inference (within float32 rounding);
    it is for inference only (there are no batch statistics left to train).
    AlexeyAB's fuse_conv_batchnorm also normalises the weights of a
    `[shortcut]` once (`Shortcut.fuse_normalization`).
    """
    fused = (net if in_place else copy.deepcopy(net)).eval()
    for layer in fused.layers:
        if isinstance(layer, Convolutional):
            fold_convolutional(layer)
        elif isinstance(layer, Shortcut):
            layer.fuse_normalization()
    return fused
