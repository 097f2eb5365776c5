"""[avgpool]: Darknet's global average pooling to c x 1 x 1 (src/avgpool_layer.c)."""

from __future__ import annotations

from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.base import Layer, Shape


class Avgpool(Layer):
    kind = "avgpool"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        return (in_shapes[0][0], 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=(2, 3), keepdim=True)
