"""[cost]: the training cost of a classifier (src/cost_layer.c).

At inference Darknet's network output is the last layer that is not a cost
layer (`get_network_output_layer`); here the cost layer passes its input
through.  `type` is sse (default), masked, smooth or L1.

Training (`loss`, Darknet's forward_cost_layer): `diff = truth - input`;
sse gives error diff^2 and delta diff (l2_cpu), smooth is smooth_l1_cpu,
L1 is l1_cpu (delta +-1); masked first sets the input to SECRET_NUM where
truth is SECRET_NUM (so those entries give 0); seg and wgan take the l2
path, as on the CPU.  The cost is the summed error; backward adds
`scale * delta` to the input's delta (backward_cost_layer).
"""

from __future__ import annotations

import torch
from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.base import Layer, Shape
from pydarknet.layers.softmax import SECRET_NUM

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

    def loss(self, x: Tensor, truth: Tensor) -> tuple[Tensor, Tensor]:
        """(delta, cost) for input `x` and `truth` (N, inputs); delta is `x`'s shape, before `scale`."""
        pred = x.reshape(x.shape[0], -1)
        t = truth.reshape(pred.shape).to(pred.dtype)
        if self.cost_type == "masked":  # Darknet: overwrites net.input with SECRET_NUM where truth is SECRET_NUM
            pred = torch.where(t == SECRET_NUM, t, pred)
        diff = t - pred
        if self.cost_type == "smooth":  # Darknet: smooth_l1_cpu
            small = diff.abs() < 1
            error = torch.where(small, diff * diff, 2 * diff.abs() - 1)
            delta = torch.where(small, diff, torch.where(diff > 0, 1.0, -1.0).to(diff.dtype))
        elif self.cost_type == "L1":  # Darknet: l1_cpu
            error = diff.abs()
            delta = torch.where(diff > 0, 1.0, -1.0).to(diff.dtype)
        else:  # Darknet: l2_cpu
            error = diff * diff
            delta = diff
        return delta.reshape(x.shape), error.sum()

    def describe(self) -> str:
        return f"       {self.cost_type}"
