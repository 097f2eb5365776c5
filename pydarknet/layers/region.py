"""[region]: the YOLOv2 head (src/region_layer.c, parser.c:parse_region).

Channel layout per cell (`entry_index`): for each of `num` anchors, the
entries x, y, w, h (and any extra `coords`), objectness, then the classes.
`forward` gives what Darknet keeps in `l.output`: logistic on x, y and
objectness (unless `background`), softmax over the classes (`softmax=1`),
per group of the `tree=` hierarchy (YOLO9000), or logistic otherwise; w and
h stay raw.  Anchors are in grid cells of the output map.

The YOLO9000 tree on Darknet's CPU build is broken, and reproduced here by
default at inference (`cpu_tree_quirk`): `forward_region_layer` calls
`softmax_cpu(net.input + count, group_size, l.batch, l.inputs, l.n*l.w*l.h,
1, l.n*l.w*l.h, l.temperature, ...)` with `count` an element offset from 5
(not `entry_index`), and with `l.temperature`, which `parse_region` never
sets: 0.  Each group's softmax is exp(x/0 - max/0) = NaN, written over the
flat span [5, max(count + n*w*h*group_size)) of every image; the real class
entries outside it are left unnormalised.  Darknet's GPU build (and training
here) uses the correct per-group softmax; set `cpu_tree_quirk = False` on the
layer for those numbers at inference.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.errors import CfgError
from pydarknet.layers.base import Layer, Shape
from pydarknet.tree import Tree, group_softmax, read_tree


def read_map(section: Section, key: str = "map") -> list[int] | None:
    """Darknet's read_map: one class index per line (e.g. coco9k.map)."""
    path = section.get_path(key, None)
    if path is None:
        return None
    values = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                values.append(int(line))
            except ValueError:
                raise CfgError(f"{path}:{number}: expected a class index, found {line!r}") from None
    return values


class Region(Layer):
    kind = "region"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        self.coords = section.get_int("coords", 4)
        self.classes = section.get_int("classes", 20)
        self.num = section.get_int("num", 1)
        section.get_int("log", 0)
        section.get_int("sqrt", 0)
        self.softmax = section.get_int("softmax", 0)
        self.background = section.get_int("background", 0)
        self.max_boxes = section.get_int("max", 30)
        self.jitter = section.get_float("jitter", 0.2)
        self.rescore = section.get_int("rescore", 0)
        self.thresh = section.get_float("thresh", 0.5)
        self.classfix = section.get_int("classfix", 0)
        section.get_int("absolute", 0)
        self.random = section.get_int("random", 0)
        self.coord_scale = section.get_float("coord_scale", 1.0)
        self.object_scale = section.get_float("object_scale", 1.0)
        self.noobject_scale = section.get_float("noobject_scale", 1.0)
        self.mask_scale = section.get_float("mask_scale", 1.0)
        self.class_scale = section.get_float("class_scale", 1.0)
        self.bias_match = section.get_int("bias_match", 0)
        tree_path = section.get_path("tree", None)
        self.tree: Tree | None = read_tree(tree_path) if tree_path else None
        self.map = read_map(section)
        if self.coords < 4 or self.classes < 0 or self.num < 1:
            raise section.error(f"coords={self.coords} classes={self.classes} num={self.num} is not a valid head")
        anchors = section.get_floats("anchors", [0.5] * (2 * self.num))  # Darknet: biases start at .5
        if len(anchors) < 2 * self.num:
            raise section.error(f"anchors has {len(anchors)} values, num={self.num} needs {2 * self.num}", "anchors")
        self.register_buffer("anchors", torch.tensor(anchors[: 2 * self.num], dtype=torch.float32).view(self.num, 2))
        if self.tree is not None and self.tree.n != self.classes:
            raise section.error(f"tree has {self.tree.n} classes but classes={self.classes}", "tree")
        self.register_buffer("group_index", torch.tensor(self.tree.group if self.tree else [], dtype=torch.long), persistent=False)
        self.cpu_tree_quirk = True
        self.section = section

    @property
    def entries(self) -> int:
        return self.coords + self.classes + 1

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        c, h, w = in_shapes[0]
        if c != self.num * self.entries:
            raise self.section.error(
                f"needs num*(classes+coords+1) = {self.num}*({self.classes}+{self.coords}+1) = "
                f"{self.num * self.entries} input channels; the previous layer gives {c}"
            )
        return (c, h, w)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        v = x.view(b, self.num, self.entries, h, w)
        obj = v[:, :, self.coords : self.coords + 1]
        classes = v[:, :, self.coords + 1 :]
        if self.tree is not None and self.cpu_tree_quirk and not self.training:
            return self._cpu_tree_output(x)
        if self.tree is not None:
            classes = group_softmax(classes, self.group_index, self.tree.groups, dim=2)
        elif self.softmax:
            if self.background:  # Darknet: softmax over classes + background, starting at the obj entry
                both = torch.softmax(v[:, :, self.coords :], dim=2)
                obj, classes = both[:, :, :1], both[:, :, 1:]
            else:
                classes = torch.softmax(classes, dim=2)
        else:
            classes = torch.sigmoid(classes)
        if not self.background:
            obj = torch.sigmoid(obj)
        parts = [torch.sigmoid(v[:, :, :2]), v[:, :, 2 : self.coords], obj, classes]
        return torch.cat(parts, dim=2).view(b, -1, h, w)

    def _cpu_tree_output(self, x: Tensor) -> Tensor:
        """Darknet CPU's [region] output with a tree: see the module docstring."""
        b, c, h, w = x.shape
        v = x.view(b, self.num, self.entries, h, w)
        out = torch.cat([torch.sigmoid(v[:, :, :2]), v[:, :, 2 : self.coords],
                         torch.sigmoid(v[:, :, self.coords : self.coords + 1]), v[:, :, self.coords + 1 :]], dim=2)
        assert self.tree is not None
        stride = self.num * h * w
        start, end, count = self.coords + 1, 0, self.coords + 1
        for size in self.tree.group_size:
            if size:
                end = max(end, count + stride * size)
            count += size
        flat = out.reshape(b, -1).clone()
        flat[:, start : min(end, flat.shape[1])] = float("nan")
        return flat.view(b, c, h, w)

    def describe(self) -> str:
        return f"       {self.num} anchors, {self.classes} classes"
