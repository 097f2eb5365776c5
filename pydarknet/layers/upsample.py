"""[upsample]: nearest-neighbour upsampling by `stride`, times `scale`.

src/upsample_layer.c: a negative stride downsamples by summing each
stride x stride block (upsample_cpu in reverse).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.base import Layer, Shape


class Upsample(Layer):
    kind = "upsample"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        stride = section.get_int("stride", 2)
        self.scale = section.get_float("scale", 1.0)
        if stride == 0:
            raise section.error("stride=0 is not a valid factor", "stride")
        self.reverse = stride < 0
        self.stride = abs(stride)

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        c, h, w = in_shapes[0]
        s = self.stride
        return (c, h // s, w // s) if self.reverse else (c, h * s, w * s)

    def forward(self, x: Tensor) -> Tensor:
        s = self.stride
        if self.reverse:
            out = F.avg_pool2d(x[:, :, : x.shape[2] // s * s, : x.shape[3] // s * s], s) * (s * s)
        else:
            out = x.repeat_interleave(s, dim=2).repeat_interleave(s, dim=3)
        return out * self.scale if self.scale != 1.0 else out

    def describe(self) -> str:
        return f"          {'/' if self.reverse else '*'}{self.stride:2d}"
