"""[crop]: the classifier cfgs' crop-and-rescale layer (src/crop_layer.c).

At inference: the centre crop_height x crop_width, and values mapped from
[0, 1] to [-1, 1] (x * 2 - 1) unless `noadjust=1`.  In training: a random
crop position and a random horizontal flip when `flip=1`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.base import Layer, Shape


class Crop(Layer):
    kind = "crop"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        self.crop_height = section.get_int("crop_height", 1)
        self.crop_width = section.get_int("crop_width", 1)
        self.flip = section.get_int("flip", 0)
        section.get_float("angle", 0.0)
        section.get_float("saturation", 1.0)
        section.get_float("exposure", 1.0)
        section.get_float("shift", 0.0)
        self.noadjust = section.get_int("noadjust", 0)

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        c, h, w = in_shapes[0]
        if not (0 < self.crop_height <= h and 0 < self.crop_width <= w):
            raise self.section.error(f"crop {self.crop_height}x{self.crop_width} does not fit the {h}x{w} input")
        return (c, self.crop_height, self.crop_width)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[2], x.shape[3]
        if self.training:
            dh = int(torch.randint(h - self.crop_height + 1, ()).item())
            dw = int(torch.randint(w - self.crop_width + 1, ()).item())
        else:
            dh, dw = (h - self.crop_height) // 2, (w - self.crop_width) // 2
        out = x[:, :, dh : dh + self.crop_height, dw : dw + self.crop_width]
        if self.training and self.flip and torch.rand(()) < 0.5:
            # Darknet: col = w - dw - j - 1, a mirror of the whole row
            out = x.flip(3)[:, :, dh : dh + self.crop_height, dw : dw + self.crop_width]
        return out if self.noadjust else out * 2 - 1
