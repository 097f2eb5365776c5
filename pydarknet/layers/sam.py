"""[sam]: AlexeyAB's spatial attention module (src/sam_layer.c).

out = activation(input * from), element by element (forward_sam_layer);
`from=` one layer of the same (C, H, W) as the input (make_sam_layer
asserts c, w, h equal).  The activation is applied with the scalar
`activate_array`, so swish/mish/hard_mish/normalize_channels* (0 on
AlexeyAB's CPU) are refused.
"""

from __future__ import annotations

from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.activations import SCALAR_ACTIVATE, read_activation
from pydarknet.layers.base import Layer, Shape
from pydarknet.layers.route import resolve_index


class Sam(Layer):
    kind = "sam"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        source = resolve_index(section, "from", section.get_int("from"), index)
        super().__init__(section, index, (index - 1, source))
        self.activation = read_activation(section, "linear", SCALAR_ACTIVATE | {"relu6"})

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        if in_shapes[0] != in_shapes[1]:
            raise self.section.error(f"the input is {in_shapes[0]} (C, H, W) but layer {self.sources[1]} is {in_shapes[1]}: "
                                     "[sam] multiplies two outputs of the same shape")
        return in_shapes[1]

    def forward(self, x: Tensor, other: Tensor) -> Tensor:
        return self.activation(x * other)

    def describe(self) -> str:
        return f"{self.sources[1]}"
