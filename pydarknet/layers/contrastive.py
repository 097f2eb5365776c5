"""[contrastive]: AlexeyAB's supervised contrastive loss (src/softmax_layer.c), as it is at inference.

The layer only computes a loss: `forward_contrastive_layer` returns at once
when `!state.train`, so at inference its output is the zeros
`make_contrastive_layer` allocated (`l.output = xcalloc(inputs * batch)`), and
nothing reads it (the `[yolo]` boxes do not depend on it: the embeddings feed
`detector demo`'s tracking only).  Its options are the loss's, so they are
training options; `pydarknet train` refuses the section.

`yolo_layer=` must name a `[yolo]` layer: AlexeyAB's `parse_contrastive`
stops with "[contrastive] layer should point to the [yolo] layer" otherwise,
and without the key it dereferences a NULL layer; both are refused here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.base import Layer, Shape
from pydarknet.layers.route import resolve_index


class Contrastive(Layer):
    kind = "contrastive"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        target = section.get_int("yolo_layer", 0)
        if target == 0:
            raise section.error("needs yolo_layer= (a [yolo] layer): AlexeyAB's parse_contrastive crashes without it")
        self.yolo_index = resolve_index(section, "yolo_layer", target, index)

    def link(self, layers: Sequence[Layer]) -> None:
        if layers[self.yolo_index].kind != "yolo":
            raise self.section.error(f"yolo_layer: layer {self.yolo_index} is [{layers[self.yolo_index].section.kind}], "
                                     "not a [yolo] layer (AlexeyAB's parse_contrastive stops here too)", "yolo_layer")

    def forward(self, x: Tensor) -> Tensor:
        return torch.zeros_like(x)

    def describe(self) -> str:
        return f"{self.yolo_index}"
