"""[connected]: Darknet's fully connected layer (src/connected_layer.c).

Input is the previous output flattened (c*h*w); output is (outputs, 1, 1).
Weights file order differs from conv: biases, weights, then (with
batch_normalize) scales, rolling_mean, rolling_variance.  Files whose header
has major or minor > 1000 store the weights transposed (in x out).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from pydarknet.cfg.section import Section
from pydarknet.layers.activations import read_activation
from pydarknet.layers.base import Layer, Shape, uninitialised
from pydarknet.layers.batchnorm import BatchNorm


class Connected(Layer):
    kind = "connected"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        c, h, w = shapes[index - 1]
        self.inputs = c * h * w
        self.outputs = section.get_int("output", 1)
        if self.outputs < 1:
            raise section.error(f"output={self.outputs} must be at least 1", "output")
        self.activation = read_activation(section, "logistic")
        self.batch_normalize = section.get_int("batch_normalize", 0)
        self.linear = uninitialised(nn.Linear(self.inputs, self.outputs, bias=not self.batch_normalize, device="meta"))
        self.bn = BatchNorm(self.outputs, connected=True) if self.batch_normalize else None
        with torch.no_grad():  # Darknet: uniform(-1, 1) * sqrt(2/inputs), biases 0
            self.linear.weight.uniform_(-1, 1).mul_(math.sqrt(2.0 / self.inputs))
            if self.linear.bias is not None:
                self.linear.bias.zero_()

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        c, h, w = in_shapes[0]
        if c * h * w != self.inputs:
            raise self.section.error(f"built for {self.inputs} inputs, cannot take {c}x{h}x{w} (resize a connected net?)")
        return (self.outputs, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.linear(x.reshape(x.shape[0], -1)).reshape(x.shape[0], self.outputs, 1, 1)
        if self.bn is not None:
            y = self.bn(y)
        return self.activation(y)

    def darknet_tensors(self, transpose: bool = False, loading: bool = False) -> list[Tensor]:
        weight = self.linear.weight.t() if transpose else self.linear.weight
        biases = self.bn.bias if self.bn is not None else self.linear.bias
        tensors = [biases, weight]
        if self.bn is not None and not (loading and self.dontloadscales):
            tensors += [self.bn.weight, self.bn.running_mean, self.bn.running_var]
        return tensors  # type: ignore[return-value]

    def bflops(self) -> float:
        return 2.0 * self.inputs * self.outputs / 1e9

    def alexeyab_bflops(self) -> float:
        """AlexeyAB's make_connected_layer sets no l.bflops: its parser counts none."""
        return 0.0

    def describe(self) -> str:
        return f"{self.inputs:5d} -> {self.outputs}"
