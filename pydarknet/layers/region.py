"""[region]: the YOLOv2 head (src/region_layer.c, parser.c:parse_region).

Channel layout per cell (`entry_index`): for each of `num` anchors, the
entries x, y, w, h (and any extra `coords`), objectness, then the classes.
`forward` gives what Darknet keeps in `l.output`: logistic on x, y and
objectness (unless `background`), softmax over the classes (`softmax=1`),
per group of the `tree=` hierarchy (YOLO9000), or logistic otherwise; w and
h stay raw.  Anchors are in grid cells of the output map.

The YOLO9000 tree softmax is the GPU build's by default, per group of the
tree (blas_kernels.cu `softmax_tree`), as Darknet trains it and as
AlexeyAB's CPU build computes it too.  pjreddie's CPU build is broken there,
and reproduced on request at inference (`cpu_tree_quirk = True`,
`Darknet.set_cpu_tree_quirk`, `--cpu-tree-softmax`; the goldens of
`forward/yolo9000_*` hold it): `forward_region_layer` calls
`softmax_cpu(net.input + count, group_size, l.batch, l.inputs, l.n*l.w*l.h,
1, l.n*l.w*l.h, l.temperature, ...)` with `count` an element offset from 5
(not `entry_index`), and with `l.temperature`, which `parse_region` never
sets: 0.  Each group's softmax is exp(x/0 - max/0) = NaN, written over the
flat span [5, max(count + n*w*h*group_size)) of every image; the real class
entries outside it are left unnormalised.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch import Tensor

from pydarknet.cfg.files import read_text_file
from pydarknet.cfg.section import Section
from pydarknet.errors import CfgError, DarknetError
from pydarknet.layers.base import Layer, Shape
from pydarknet.layers.boxes import box_iou
from pydarknet.layers.loss_report import Tally
from pydarknet.tree import Tree, group_softmax, read_tree

REGION_TRUTHS = 30  # Darknet: l.truths = 30*(coords+1); the loss reads 30 boxes whatever max= says
PRIOR_SEEN = 12800  # Darknet: the .01 prior-matching term while *net.seen < 12800
PRIOR_SCALE = 0.01


def read_map(section: Section, key: str = "map") -> list[int] | None:
    """Darknet's read_map of the file `key=` names (one class index per line, e.g. coco9k.map), or None.

    Training replaces a label's class c by `map[c]`, an index into the
    layer's `classes` (Darknet's default 20, as parse_region/parse_yolo read it).
    """
    return section.read_file(key, partial(_map_file, classes=section.get_int("classes", 20)))


def _map_file(path: Path, classes: int) -> list[int]:
    values = []
    for number, line in enumerate(read_text_file(path, "map file").splitlines(), 1):
        if line.strip():
            try:
                values.append(int(line))
            except ValueError:
                raise CfgError(f"{path}:{number}: expected a class index, found {line!r}") from None
            if not 0 <= values[-1] < classes:
                raise CfgError(f"{path}:{number}: class index {values[-1]} is not below classes={classes}")
    return values


def class_delta(p: Tensor, current: Tensor, cls: Tensor, scale: float, tag: bool) -> Tensor:
    """Darknet's flat class delta (delta_region_class / delta_yolo_class) for
    rows of class outputs `p` (M, classes) whose delta so far is `current`:
    scale * (onehot - p); with `tag`, a row whose first class delta is already
    set (an earlier truth in the same cell) only gets its new class's entry."""
    onehot = torch.nn.functional.one_hot(cls, p.shape[1]).bool()
    full = scale * (onehot.to(p.dtype) - p)
    if not tag:
        return full
    tagged = (current[:, 0] != 0).unsqueeze(1)
    return torch.where(tagged & ~onehot, current, full)


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
        self.random = section.get_float("random", 0)  # AlexeyAB: a float, the multi-scale coefficient (train.multiscale)
        self.coord_scale = section.get_float("coord_scale", 1.0)
        self.object_scale = section.get_float("object_scale", 1.0)
        self.noobject_scale = section.get_float("noobject_scale", 1.0)
        self.mask_scale = section.get_float("mask_scale", 1.0)
        self.class_scale = section.get_float("class_scale", 1.0)
        self.bias_match = section.get_int("bias_match", 0)
        self.tree: Tree | None = section.read_file("tree", read_tree)
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
        self.cpu_tree_quirk = False  # pjreddie's CPU tree softmax (module docstring), on request only
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
        if self.tree is not None and self.cpu_tree_quirk and not self.training:
            return self._cpu_tree_output(x)
        return self.activate(x)

    def activate(self, x: Tensor) -> Tensor:
        """Darknet's l.output with the correct (GPU build's) tree softmax."""
        b, _, h, w = x.shape
        v = x.view(b, self.num, self.entries, h, w)
        obj = v[:, :, self.coords : self.coords + 1]
        classes = v[:, :, self.coords + 1 :]
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

    def delta(self, raw: Tensor, truth: Tensor, seen: int,
              log: Callable[[str], object] | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Darknet's forward_region_layer in training: (l.output, l.delta, *l.cost).

        `raw` is the layer's input (N, C, H, W); `truth` (N, boxes, 5) holds
        x, y, w, h, class relative to the image, the list ending at the first
        x == 0; `seen` is *net.seen during the call.  `delta` is Darknet's
        l.delta, `target - output` scaled (see `input_delta` for what reaches
        the previous layer); the cost is its squared norm.  `log` receives
        Darknet's `Region Avg IOU: ...` line (pydarknet.layers.loss_report).
        """
        if self.coords > 4:
            raise DarknetError(f"{self.section.where()}: [region] training with coords={self.coords} (masks) is not supported")
        with torch.no_grad():
            out = self.activate(raw)
            n_img, _, h, w = raw.shape
            o = out.view(n_img, self.num, self.entries, h, w)
            truth = truth[:, :REGION_TRUTHS].to(o)
            valid = (truth[..., 0] != 0).cumprod(dim=1).bool()  # Darknet: `if(!truth.x) break;`
            boxes = self._pred_boxes(o)
            delta = torch.zeros_like(o)
            self._noobject_delta(o, boxes, truth, valid, delta)
            if seen < PRIOR_SEEN:
                self._prior_delta(o, delta)
            only_class = self._classification_only(truth, valid)
            tally = Tally() if log is not None else None
            if tally is not None:  # every anchor of the images not skipped as class-only
                tally.anyobj = o[only_class < 0, :, self.coords].double().sum()
            for t in range(truth.shape[1]):
                images = (valid[:, t] & (only_class < 0)).nonzero()[:, 0]
                if images.numel():
                    self._truth_delta(o, boxes, truth[images, t], images, delta, tally)
            if bool((only_class >= 0).any()):
                self._classification_delta(o, truth, only_class, delta, tally)
            delta = delta.view_as(out)
            if log is not None and tally is not None:
                log(tally.region_line(delta.numel() // self.entries))
            return out, delta, delta.square().sum()

    def input_delta(self, output: Tensor, delta: Tensor) -> Tensor:
        """What the previous layer receives: Darknet's backward_region_layer_gpu
        multiplies the x, y and objectness (unless `background`) deltas by the
        logistic gradient (1 - y) * y; w, h and the classes pass as they are.
        (pjreddie's CPU backward_region_layer is commented out.)"""
        n_img, _, h, w = output.shape
        o = output.view(n_img, self.num, self.entries, h, w)
        factor = torch.ones_like(o)
        logistic = (1 - o) * o
        factor[:, :, :2] = logistic[:, :, :2]
        if not self.background:
            factor[:, :, self.coords] = logistic[:, :, self.coords]
        return (delta.view_as(o) * factor).view_as(delta)

    def _pred_boxes(self, o: Tensor) -> Tensor:
        """Darknet's get_region_box for every (image, anchor, row, column): (..., 4)."""
        h, w = o.shape[-2:]
        col = torch.arange(w, device=o.device, dtype=o.dtype)
        row = torch.arange(h, device=o.device, dtype=o.dtype).view(-1, 1)
        aw = self.anchors[:, 0].view(1, -1, 1, 1)
        ah = self.anchors[:, 1].view(1, -1, 1, 1)
        x = (col + o[:, :, 0]) / w
        y = (row + o[:, :, 1]) / h
        return torch.stack([x, y, torch.exp(o[:, :, 2]) * aw / w, torch.exp(o[:, :, 3]) * ah / h], dim=-1)

    def _noobject_delta(self, o: Tensor, boxes: Tensor, truth: Tensor, valid: Tensor, delta: Tensor) -> None:
        """noobject_scale * (0 - obj) (1 - obj with `background`), zero where a
        prediction overlaps some truth by more than `thresh`."""
        iou = box_iou(boxes.unsqueeze(-2), truth[:, None, None, None, :, :4]).nan_to_num(0.0)
        best = iou.masked_fill(~valid[:, None, None, None, :], 0.0).amax(dim=-1) if truth.shape[1] else torch.zeros_like(boxes[..., 0])
        obj = o[:, :, self.coords]
        target = 1.0 if self.background else 0.0
        delta[:, :, self.coords] = (self.noobject_scale * (target - obj)).masked_fill(best > self.thresh, 0.0)

    def _prior_delta(self, o: Tensor, delta: Tensor) -> None:
        """Darknet: while seen < 12800, every box is pulled toward its anchor
        centred in its cell (delta_region_box with a truth at the prior, scale .01)."""
        h, w = o.shape[-2:]
        col = torch.arange(w, device=o.device, dtype=o.dtype)
        row = torch.arange(h, device=o.device, dtype=o.dtype).view(-1, 1)
        aw = self.anchors[:, 0].view(1, -1, 1, 1)
        ah = self.anchors[:, 1].view(1, -1, 1, 1)
        tx = (col + 0.5) / w * w - col
        ty = (row + 0.5) / h * h - row
        tw = torch.log(aw / w * w / aw)
        th = torch.log(ah / h * h / ah)
        for k, target in enumerate((tx, ty, tw, th)):
            delta[:, :, k] = PRIOR_SCALE * (target - o[:, :, k])

    def _truth_delta(self, o: Tensor, boxes: Tensor, tb: Tensor, images: Tensor, delta: Tensor, tally: Tally | None) -> None:
        """One truth per image in `images` (rows of `tb`): Darknet's per-truth
        loop body, best anchor by shape IoU in the truth's cell, then box,
        objectness and class deltas there (overwriting what was there)."""
        h, w = o.shape[-2:]
        i = (tb[:, 0] * w).long().clamp(0, w - 1)
        j = (tb[:, 1] * h).long().clamp(0, h - 1)
        if self.bias_match:
            shapes = (self.anchors / torch.tensor([w, h], device=o.device, dtype=o.dtype)).expand(len(tb), -1, -1)
        else:
            shapes = boxes[images, :, j, i, 2:]
        origin = torch.zeros_like(shapes)
        shape_iou = box_iou(torch.cat([origin, shapes], -1), torch.cat([origin[:, :1], tb[:, None, 2:4]], -1))
        best_n = shape_iou.nan_to_num(0.0).argmax(dim=1)  # Darknet: the first anchor with the highest IoU
        iou = box_iou(boxes[images, best_n, j, i], tb[:, :4])
        anchor = self.anchors[best_n]
        scale = (self.coord_scale * (2 - tb[:, 2] * tb[:, 3])).unsqueeze(1)
        target = torch.stack([tb[:, 0] * w - i, tb[:, 1] * h - j,
                              torch.log(tb[:, 2] * w / anchor[:, 0]), torch.log(tb[:, 3] * h / anchor[:, 1])], dim=1)
        delta[images, best_n, :4, j, i] = scale * (target - o[images, best_n, :4, j, i])
        obj = o[images, best_n, self.coords, j, i]
        obj_target = torch.zeros_like(obj) if self.background else (iou if self.rescore else torch.ones_like(obj))
        delta[images, best_n, self.coords, j, i] = self.object_scale * (obj_target - obj)
        cls = tb[:, 4].long()
        if self.map is not None:
            cls = torch.tensor(self.map, device=o.device)[cls]
        first = self.coords + 1
        p = o[images, best_n, first:, j, i]
        current = delta[images, best_n, first:, j, i]
        delta[images, best_n, first:, j, i] = self._class_delta(p, current, cls, self.class_scale)
        if tally is not None:
            tally.truths(iou, obj, self._class_probability(p, current, cls))

    def _class_probability(self, p: Tensor, current: Tensor, cls: Tensor) -> Tensor:
        """What delta_region_class adds to avg_cat: the product of the probabilities from the class up to the
        root (a tree), else the class's; 0 where it returned early (`delta[index] && tag`, see class_delta)."""
        rows = torch.arange(len(cls), device=p.device)
        if self.tree is not None:
            return self._path_probability(cls, lambda node: p[rows, node])
        early = (current[:, 0] != 0) if not self.softmax else torch.zeros_like(cls, dtype=torch.bool)
        return p[rows, cls].masked_fill(early, 0.0)

    def _path_probability(self, cls: Tensor, level: Callable[[Tensor], Tensor]) -> Tensor:
        """get_hierarchy_probability: the product, from each row's class `cls` up to the root, of `level(node)`,
        the rows' probabilities of their nodes (M, ...)."""
        parent = self._tree_arrays(cls.device)[0]
        prob: Tensor | float = 1.0
        node = cls
        while bool((node >= 0).any()):
            safe = node.clamp(min=0)
            value = level(safe)
            prob = torch.where((node >= 0).view(-1, *[1] * (value.dim() - 1)), prob * value, prob)
            node = torch.where(node >= 0, parent[safe], node)
        assert isinstance(prob, Tensor)
        return prob

    def _class_delta(self, p: Tensor, current: Tensor, cls: Tensor, scale: float) -> Tensor:
        """Darknet's delta_region_class for rows of class outputs `p` whose delta is `current`."""
        if self.tree is not None:
            return self._tree_class_delta(p, current, cls, scale)
        return class_delta(p, current, cls, scale, tag=not self.softmax)

    def _tree_arrays(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        assert self.tree is not None
        return tuple(torch.tensor(a, device=device) for a in  # type: ignore[return-value]
                     (self.tree.parent, self.tree.group, self.tree.group_offset, self.tree.group_size))

    def _tree_class_delta(self, p: Tensor, current: Tensor, cls: Tensor, scale: float) -> Tensor:
        """delta_region_class with a hierarchy: from the label up to the root,
        scale * (0 - p) over the node's group, then scale * (1 - p) on the node."""
        parent, group, offset, size = self._tree_arrays(p.device)
        entries = torch.arange(self.classes, device=p.device)
        d, node = current.clone(), cls.clone()
        while bool((node >= 0).any()):
            active = (node >= 0).unsqueeze(1)
            safe = node.clamp(min=0)
            g = group[safe]
            start, stop = offset[g].unsqueeze(1), (offset[g] + size[g]).unsqueeze(1)
            d = torch.where(active & (entries >= start) & (entries < stop), scale * (0 - p), d)
            d = torch.where(active & (entries == safe.unsqueeze(1)), scale * (1 - p), d)
            node = torch.where(node >= 0, parent[safe], node)
        return d

    def _classification_only(self, truth: Tensor, valid: Tensor) -> Tensor:
        """Per image, the index of its first classification-only truth
        (x and y > 100000, YOLO9000 with a tree), or -1."""
        flags = valid & (truth[..., 0] > 100000) & (truth[..., 1] > 100000)
        if self.tree is None or not truth.shape[1]:
            return torch.full((truth.shape[0],), -1, dtype=torch.long, device=truth.device)
        return torch.where(flags.any(dim=1), flags.int().argmax(dim=1), -1)

    def _classification_delta(self, o: Tensor, truth: Tensor, only_class: Tensor, delta: Tensor, tally: Tally | None) -> None:
        """Darknet's classification-only images: noobject delta on every box, the
        class tree's delta at the box with the highest obj * P(class), and no
        objectness delta there (`++class_count`, not `count`)."""
        images = (only_class >= 0).nonzero()[:, 0]
        cls = truth[images, only_class[images], 4].long()
        first = self.coords + 1
        obj = o[images, :, self.coords]
        planes = o[images]
        prob = self._path_probability(cls, lambda node: planes.gather(
            2, (first + node).view(-1, 1, 1, 1, 1).expand(-1, self.num, 1, *obj.shape[-2:]))[:, :, 0])
        best = (obj * prob).flatten(1).argmax(dim=1)
        h, w = o.shape[-2:]
        n, j, i = best // (h * w), best // w % h, best % w
        delta[images] = 0
        delta[images, :, self.coords] = self.noobject_scale * (0 - obj)
        p = o[images, n, first:, j, i]
        delta[images, n, first:, j, i] = self._tree_class_delta(p, torch.zeros_like(p), cls, self.class_scale)
        delta[images, n, self.coords, j, i] = 0
        if tally is not None:  # delta_region_class's avg_cat: the hierarchy probability at the box
            tally.cat += prob.flatten(1).gather(1, best.unsqueeze(1)).double().sum()
            tally.class_count += len(images)
