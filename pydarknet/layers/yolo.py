"""[yolo]: the YOLOv3 head (src/yolo_layer.c, parser.c:parse_yolo).

`num` anchors in total (pixels of the network input), of which this layer
uses those in `mask`.  Layout per cell as in [region] with 4 coords:
x, y, w, h, objectness, classes; `forward` applies the logistic to x, y,
objectness and every class (w, h stay raw), Darknet's `l.output`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.base import Layer, Shape
from pydarknet.layers.region import read_map


class Yolo(Layer):
    kind = "yolo"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        self.classes = section.get_int("classes", 20)
        self.total = section.get_int("num", 1)
        self.mask = section.get_ints("mask", list(range(self.total)))
        self.max_boxes = section.get_int("max", 90)
        self.jitter = section.get_float("jitter", 0.2)
        self.ignore_thresh = section.get_float("ignore_thresh", 0.5)
        self.truth_thresh = section.get_float("truth_thresh", 1.0)
        self.random = section.get_int("random", 0)
        self.map = read_map(section)
        anchors = section.get_floats("anchors", [0.5] * (2 * self.total))
        if self.classes < 0 or self.total < 1:
            raise section.error(f"classes={self.classes} num={self.total} is not a valid head")
        if len(anchors) < 2 * self.total:
            raise section.error(f"anchors has {len(anchors)} values, num={self.total} needs {2 * self.total}", "anchors")
        if any(not 0 <= m < self.total for m in self.mask):
            raise section.error(f"mask {self.mask} must index the num={self.total} anchors", "mask")
        self.num = len(self.mask)
        self.register_buffer("anchors", torch.tensor(anchors[: 2 * self.total], dtype=torch.float32).view(self.total, 2))
        self.section = section

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        c, h, w = in_shapes[0]
        if c != self.num * (self.classes + 5):
            raise self.section.error(
                f"needs len(mask)*(classes+5) = {self.num}*({self.classes}+5) = {self.num * (self.classes + 5)} "
                f"input channels; the previous layer gives {c}"
            )
        return (c, h, w)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        v = x.view(b, self.num, self.classes + 5, h, w)
        parts = [torch.sigmoid(v[:, :, :2]), v[:, :, 2:4], torch.sigmoid(v[:, :, 4:])]
        return torch.cat(parts, dim=2).view(b, -1, h, w)

    def describe(self) -> str:
        return f"       {self.num} anchors, {self.classes} classes"
