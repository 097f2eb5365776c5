"""[maxpool]: Darknet's max pooling (src/maxpool_layer.c).

Defaults: size = stride, padding = size - 1.  Output size is
(w + padding - size) / stride + 1 and the window starts at -padding/2, so
`size=2 stride=2` gives ceil(w/2) and tiny-yolo's `size=2 stride=1` keeps the
size by reaching one cell past the right and bottom edges.  Darknet ignores
taps outside the image (-FLT_MAX), which is padding with -inf here: not zero
padding (wrong for negative activations), and constant rather than
replicate padding so that it compiles and differentiates everywhere.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.base import Layer, Shape


class Maxpool(Layer):
    kind = "maxpool"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        self.stride = section.get_int("stride", 1)
        self.size = section.get_int("size", self.stride)
        self.padding = section.get_int("padding", self.size - 1)
        if self.stride < 1 or self.size < 1 or self.padding < 0:
            raise section.error(f"size={self.size} stride={self.stride} padding={self.padding} is not a valid window")
        self.pads = (0, 0, 0, 0)

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        c, h, w = in_shapes[0]
        out_h = (h + self.padding - self.size) // self.stride + 1
        out_w = (w + self.padding - self.size) // self.stride + 1
        # -inf padding actually read by the windows: left/top padding/2, then
        # whatever the last window reaches past the right/bottom edge.
        lead = self.padding // 2
        self.pads = (
            lead, max(0, (out_w - 1) * self.stride + self.size - lead - w),
            lead, max(0, (out_h - 1) * self.stride + self.size - lead - h),
        )
        return (c, out_h, out_w)

    def forward(self, x: Tensor) -> Tensor:
        if any(self.pads):
            x = F.pad(x, self.pads, value=float("-inf"))
        return F.max_pool2d(x, self.size, self.stride)

    def describe(self) -> str:
        return f"      {self.size:2d} x{self.size:2d} /{self.stride:2d}"
