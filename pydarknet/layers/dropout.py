"""[dropout]: identity at inference; in training zero with `probability`, scale the rest by 1/(1-p)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.base import Layer, Shape


class Dropout(Layer):
    kind = "dropout"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        self.probability = section.get_float("probability", 0.5)
        if not 0 <= self.probability < 1:
            raise section.error(f"probability={self.probability} must be in [0, 1)", "probability")

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.probability, self.training)

    def describe(self) -> str:
        return f"       p = {self.probability:.2f}"
