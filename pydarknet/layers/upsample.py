"""[upsample]: nearest-neighbour upsampling by `stride`, times `scale`.

src/upsample_layer.c (both Darknets): a negative stride downsamples:
forward_upsample_layer zeroes the output, then upsample_cpu(forward=0) adds
scale * every input value of each stride x stride block, i.e. out = scale *
block sum (not the average).  upsample_cpu indexes the input as (C, out_h*s,
out_w*s): an input size not divisible by the stride would be read with the
wrong row length, so it is refused.
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
        if self.reverse and (h % s or w % s):
            raise self.section.error(f"stride=-{s} needs the input size ({w}x{h}) divisible by {s}: Darknet's upsample_cpu "
                                     "would read it with the wrong row length", "stride")
        return (c, h // s, w // s) if self.reverse else (c, h * s, w * s)

    def forward(self, x: Tensor) -> Tensor:
        s = self.stride
        if self.reverse:
            out = F.avg_pool2d(x, s) * (s * s)
        else:
            out = x.repeat_interleave(s, dim=2).repeat_interleave(s, dim=3)
        return out * self.scale if self.scale != 1.0 else out

    def describe(self) -> str:
        return f"          {'/' if self.reverse else '*'}{self.stride:2d}"
