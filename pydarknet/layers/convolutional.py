"""[convolutional]: Darknet's conv + optional batch norm + activation.

src/parser.c:parse_convolutional and src/convolutional_layer.c.  `pad=1`
means padding = size/2 (so a 1x1 conv with pad=1 has no padding) and
overrides `padding`.  With batch_normalize the conv has no bias: Darknet's
`biases` are the batch norm's shift.  Weights file order:
biases, [scales, rolling_mean, rolling_variance], weights.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from pydarknet.cfg.section import Section
from pydarknet.layers.activations import read_activation
from pydarknet.layers.base import Layer, Shape
from pydarknet.layers.batchnorm import BatchNorm


class Convolutional(Layer):
    kind = "convolutional"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        c = shapes[index - 1][0]
        self.filters = section.get_int("filters", 1)
        self.size = section.get_int("size", 1)
        self.stride = section.get_int("stride", 1)
        pad = section.get_int("pad", 0)
        padding = section.get_int("padding", 0)
        self.groups = section.get_int("groups", 1)
        self.padding = self.size // 2 if pad else padding
        self.activation = read_activation(section, "logistic")
        self.batch_normalize = section.get_int("batch_normalize", 0)
        self.flipped = section.get_int("flipped", 0)
        section.get_int("dot", 0)
        for unsupported in ("binary", "xnor"):
            if section.get_int(unsupported, 0):
                raise section.error(f"{unsupported}=1 (XNOR nets) is not supported", unsupported)
        for key, value in (("filters", self.filters), ("size", self.size), ("stride", self.stride), ("groups", self.groups)):
            if value < 1:
                raise section.error(f"{key}={value} must be at least 1", key)
        if self.padding < 0:
            raise section.error(f"padding={self.padding} must not be negative", "padding")
        if c % self.groups or self.filters % self.groups:
            raise section.error(
                f"groups={self.groups} must divide the input channels ({c}) and filters ({self.filters})", "groups"
            )
        self.conv = nn.Conv2d(
            c, self.filters, self.size, self.stride, self.padding,
            groups=self.groups, bias=not self.batch_normalize, device="meta",
        ).to_empty(device=torch.get_default_device())
        self.bn = BatchNorm(self.filters) if self.batch_normalize else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Darknet's init: weights ~ N(0, 2/fan_in), biases 0 (make_convolutional_layer)."""
        fan_in = self.conv.in_channels // self.groups * self.size * self.size
        with torch.no_grad():
            self.conv.weight.normal_(0.0, math.sqrt(2.0 / fan_in))
            if self.conv.bias is not None:
                self.conv.bias.zero_()

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        _, h, w = in_shapes[0]
        out_h = (h + 2 * self.padding - self.size) // self.stride + 1
        out_w = (w + 2 * self.padding - self.size) // self.stride + 1
        return (self.filters, out_h, out_w)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        if self.bn is not None:
            y = self.bn(y)
        return self.activation(y)

    def biases(self) -> Tensor:
        return self.bn.bias if self.bn is not None else self.conv.bias  # type: ignore[return-value]

    def darknet_tensors(self, transpose: bool = False, loading: bool = False) -> list[Tensor]:
        n = self.numload if (loading and self.numload) else self.filters
        weight = self.conv.weight[:n]
        if self.flipped:  # stored as a (c*size*size) x n matrix
            weight = weight.reshape(n, -1).t()
        tensors = [self.biases()[:n]]
        if self.bn is not None and not (loading and self.dontloadscales):
            tensors += [self.bn.weight[:n], self.bn.running_mean[:n], self.bn.running_var[:n]]
        return tensors + [weight]

    def bflops(self) -> float:
        c, h, w = self.out_shape
        return 2.0 * self.filters * self.size * self.size * self.conv.in_channels / self.groups * h * w / 1e9

    def describe(self) -> str:
        return f"{self.filters:5d} {self.size:2d} x{self.size:2d} /{self.stride:2d}"
