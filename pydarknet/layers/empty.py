"""[empty] / [silence]: AlexeyAB's pass-through layer (src/parser.c, `lt == EMPTY`).

The layer shares its predecessor's output buffer (`l.output =
net.layers[count - 1].output`) and its forward does nothing: the output is
the input, same shape.
"""

from __future__ import annotations

from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.base import Layer, Shape


class Empty(Layer):
    kind = "empty"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)

    def forward(self, x: Tensor) -> Tensor:
        return x
