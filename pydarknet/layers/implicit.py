"""[implicit]: AlexeyAB's learned constant (src/representation_layer.c, YOLOR).

make_implicit_layer: output (filters, atoms, 1) (out_c = filters, out_h =
atoms, out_w = 1) whatever the input; forward_implicit_layer copies its
`nweights` = filters*atoms weights to every image of the batch.  They are
stored in the .weights file (load_implicit_weights), initialised to mean +
uniform(-std, std) (`mean` default 0, `std` 0.2).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pydarknet.cfg.section import Section
from pydarknet.layers.base import Layer, Shape


class Implicit(Layer):
    kind = "implicit"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        self.mean = section.get_float("mean", 0.0)
        self.std = section.get_float("std", 0.2)
        self.filters = section.get_int("filters", 128)
        self.atoms = section.get_int("atoms", 1)
        if self.filters < 1 or self.atoms < 1:
            raise section.error(f"filters={self.filters} atoms={self.atoms} must be at least 1")
        self.weights = nn.Parameter(torch.empty(self.filters, self.atoms, 1))
        with torch.no_grad():
            self.weights.uniform_(-self.std, self.std).add_(self.mean)

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        return (self.filters, self.atoms, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.weights.unsqueeze(0).expand(x.shape[0], -1, -1, -1)

    def darknet_tensors(self, transpose: bool = False, loading: bool = False) -> list[Tensor]:
        return [self.weights]

    def describe(self) -> str:
        return f"{self.filters:5d} x {self.atoms}"
