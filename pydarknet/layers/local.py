"""[local]: a locally connected layer, one filter bank per output cell (src/local_layer.c).

Output size is (h - size)/stride + 1 without `pad`, (h - 1)/stride + 1 with
it (Darknet's local_out_height), and im2col pads by `pad` itself.  Weights
file: biases (one per output value), then weights (locations x filters x
c*size*size).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pydarknet.cfg.section import Section
from pydarknet.layers.activations import read_activation
from pydarknet.layers.base import Layer, Shape


class Local(Layer):
    kind = "local"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        self.filters = section.get_int("filters", 1)
        self.size = section.get_int("size", 1)
        self.stride = section.get_int("stride", 1)
        self.pad = section.get_int("pad", 0)
        self.activation = read_activation(section, "logistic")
        if min(self.filters, self.size, self.stride) < 1 or self.pad < 0:
            raise section.error("filters, size and stride must be at least 1")
        if self.pad and self.size != 2 * self.pad + 1:  # local_out_height's (h - 1)/stride + 1 is im2col's only then
            raise section.error(f"pad={self.pad} with size={self.size}: Darknet's local layer sizes its output for "
                                f"size={2 * self.pad + 1} and its im2col for size={self.size} (it reads past its buffer)")
        c, h, w = shapes[index - 1]
        _, out_h, out_w = self.output_shape([(c, h, w)])
        self.built_for = (c, h, w)
        locations = out_h * out_w
        k = c * self.size * self.size
        self.weight = nn.Parameter(torch.empty(locations, self.filters, k))
        self.bias = nn.Parameter(torch.zeros(self.filters, out_h, out_w))
        with torch.no_grad():  # Darknet: uniform(-1, 1) * sqrt(2/(size*size*c))
            self.weight.uniform_(-1, 1).mul_(math.sqrt(2.0 / k))

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        c, h, w = in_shapes[0]
        if getattr(self, "built_for", in_shapes[0]) != in_shapes[0]:
            raise self.section.error(f"built for a {self.built_for} input, cannot take {in_shapes[0]}")
        drop = 1 if self.pad else self.size
        return (self.filters, (h - drop) // self.stride + 1, (w - drop) // self.stride + 1)

    def forward(self, x: Tensor) -> Tensor:
        _, out_h, out_w = self.out_shape
        cols = F.unfold(x, self.size, padding=self.pad, stride=self.stride)  # (B, k, L)
        out = torch.einsum("lfk,bkl->bfl", self.weight, cols).reshape(x.shape[0], self.filters, out_h, out_w)
        return self.activation(out + self.bias)

    def darknet_tensors(self, transpose: bool = False, loading: bool = False) -> list[Tensor]:
        return [self.bias, self.weight]

    def bflops(self) -> float:
        return 2.0 * self.weight.numel() / 1e9

    def alexeyab_bflops(self) -> float:
        """AlexeyAB's make_local_layer sets no l.bflops: its parser counts none."""
        return 0.0

    def describe(self) -> str:
        return f"{self.filters:5d} {self.size:2d} x{self.size:2d} /{self.stride:2d}"
