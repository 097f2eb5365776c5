"""[cost]: the training cost of a classifier (src/cost_layer.c).

At inference Darknet's network output is the last layer that is not a cost
layer (`get_network_output_layer`); here the cost layer passes its input
through.  `type` is sse (default), masked, smooth or L1.
"""

from __future__ import annotations

from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.base import Layer, Shape

COST_TYPES = ("sse", "masked", "smooth", "L1", "seg", "wgan")


class Cost(Layer):
    kind = "cost"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        self.cost_type = section.get_str("type", "sse")
        if self.cost_type not in COST_TYPES:
            raise section.error(f"unknown cost type '{self.cost_type}' (known: {', '.join(COST_TYPES)})", "type")
        self.scale = section.get_float("scale", 1.0)
        self.ratio = section.get_float("ratio", 0.0)
        self.noobject_scale = section.get_float("noobj", 1.0)
        self.thresh = section.get_float("thresh", 0.0)

    def forward(self, x: Tensor) -> Tensor:
        return x

    def describe(self) -> str:
        return f"       {self.cost_type}"
