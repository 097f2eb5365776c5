"""[detection]: the YOLOv1 head (src/detection_layer.c).

Its input is a flat vector of side*side*((1+coords)*num + classes): first the
class scores of every cell, then the confidences, then the boxes.  With
`softmax=1` each cell's class scores go through a softmax; nothing else is
activated at inference.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.base import Layer, Shape


class DetectionLayer(Layer):
    kind = "detection"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        self.coords = section.get_int("coords", 1)
        self.classes = section.get_int("classes", 1)
        self.rescore = section.get_int("rescore", 0)
        self.num = section.get_int("num", 1)
        self.side = section.get_int("side", 7)
        self.softmax = section.get_int("softmax", 0)
        self.sqrt = section.get_int("sqrt", 0)
        self.max_boxes = section.get_int("max", 90)
        self.coord_scale = section.get_float("coord_scale", 1.0)
        self.forced = section.get_int("forced", 0)
        self.object_scale = section.get_float("object_scale", 1.0)
        self.noobject_scale = section.get_float("noobject_scale", 1.0)
        self.class_scale = section.get_float("class_scale", 1.0)
        self.jitter = section.get_float("jitter", 0.2)
        self.random = section.get_int("random", 0)
        section.get_int("reorg", 0)

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        c, h, w = in_shapes[0]
        need = self.side * self.side * ((1 + self.coords) * self.num + self.classes)
        if c * h * w != need:
            raise self.section.error(
                f"needs side*side*((1+coords)*num+classes) = {need} inputs; the previous layer gives {c * h * w}"
            )
        return (need, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        flat = x.reshape(x.shape[0], -1)
        if not self.softmax:
            return flat.view(x.shape[0], -1, 1, 1)
        cells = self.side * self.side
        probs = torch.softmax(flat[:, : cells * self.classes].view(-1, cells, self.classes), dim=2)
        return torch.cat([probs.flatten(1), flat[:, cells * self.classes :]], dim=1).view(x.shape[0], -1, 1, 1)
