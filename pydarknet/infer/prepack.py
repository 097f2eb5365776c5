"""Prepacked convolutions for the CPU inference model: one oneDNN call per convolution, its weights reordered once
and its activation fused (what ONNX Runtime's fused Conv does).

In eager PyTorch every CPU convolution reorders its weights into oneDNN's blocked layout at each call (yolov2's
1280x1024x3x3 layer: 47 MB copied per image), and the activation is a second pass over the output.
`torch.ops.mkldnn._convolution_pointwise` on weights from `_reorder_convolution_weight` (the ops inductor's
freezing pass emits) does neither: the same convolution kernel, so the same numbers, with the activation as a
oneDNN post-op.  Only the activations whose post-op computes Darknet's formula exactly are fused: linear,
relu, leaky and revleaky (both `x > 0 ? x : .1*x` in the forward, src/activations.h); the other layers keep
their PyTorch convolution.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# Darknet activation -> (oneDNN post-op, its scalars)
FUSED_ACTIVATIONS: dict[str, tuple[str, list[float]]] = {
    "linear": ("none", []), "relu": ("relu", []), "leaky": ("leaky_relu", [0.1]), "revleaky": ("leaky_relu", [0.1]),
}


def available() -> bool:
    """Whether this PyTorch has oneDNN's fused convolution (CPU builds with mkldnn)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


def suits(conv: nn.Module, activation: str) -> bool:
    """A float32 CPU nn.Conv2d with zero padding and an activation oneDNN computes exactly."""
    return (type(conv) is nn.Conv2d and activation in FUSED_ACTIVATIONS and conv.padding_mode == "zeros"
            and conv.weight.device.type == "cpu" and conv.weight.dtype == torch.float32)


class PrepackedConv(nn.Module):
    """`activation(conv(x))` in one oneDNN call, the weights reordered for inputs of `input_size` (N, C, H, W)
    (other sizes still run, oneDNN reordering as it needs)."""

    def __init__(self, conv: nn.Conv2d, activation: str, input_size: list[int]) -> None:
        super().__init__()
        self.padding, self.stride, self.dilation = list(conv.padding), list(conv.stride), list(conv.dilation)
        self.groups = conv.groups
        self.attr, self.scalars = FUSED_ACTIVATIONS[activation]
        with torch.no_grad():
            self.weight = torch.ops.mkldnn._reorder_convolution_weight(
                conv.weight.contiguous(), self.padding, self.stride, self.dilation, self.groups, input_size)
        self.bias = None if conv.bias is None else conv.bias.detach()

    def forward(self, x: Tensor) -> Tensor:
        return torch.ops.mkldnn._convolution_pointwise(x, self.weight, self.bias, self.padding, self.stride, self.dilation,
                                                      self.groups, self.attr, self.scalars, "")
