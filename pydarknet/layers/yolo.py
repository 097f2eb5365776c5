"""[yolo]: the YOLOv3 head (src/yolo_layer.c, parser.c:parse_yolo).

`num` anchors in total (pixels of the network input), of which this layer
uses those in `mask`.  Layout per cell as in [region] with 4 coords:
x, y, w, h, objectness, classes; `forward` applies the logistic to x, y,
objectness and every class (w, h stay raw), Darknet's `l.output`.

AlexeyAB's inference options (src/parser.c parse_yolo, src/yolo_layer.c
forward_yolo_layer): `scale_x_y` s rescales x, y after the logistic,
x*s - 0.5*(s - 1) (`scal_add_cpu`); `new_coords=1` applies no activation at
all (the conv before it has activation=logistic) and decodes w =
tw*tw*4*anchor (`get_yolo_box`); `nms_kind` (greedynms, diounms; any other
word, cornersnms included, is the default do_nms_sort in parse_yolo) and
`beta_nms` (default .6) choose the NMS when this is the network's last
[yolo], [Gaussian_yolo] or [region] layer (`test_detector`).

Training: pjreddie's loss (`Yolo.delta`) in pjreddie's dialect, which
refuses AlexeyAB's options (scale_x_y != 1, new_coords=1, iou_loss, ...);
AlexeyAB's loss, with all of them, in AlexeyAB's
(pydarknet.layers.yolo_alexeyab).  `YoloHead` is what [yolo] shares with
AlexeyAB's [Gaussian_yolo] (pydarknet.layers.gaussian_yolo).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from pydarknet.cfg.dialect import ALEXEYAB_TRAINED
from pydarknet.cfg.section import Section
from pydarknet.errors import DarknetError
from pydarknet.layers.base import Layer, Shape
from pydarknet.layers.boxes import box_iou
from pydarknet.layers.loss_report import BoxCounts, Tally
from pydarknet.layers.region import class_delta, read_map
from pydarknet.layers.yolo_alexeyab import alexeyab_yolo_delta


# AlexeyAB src/parser.c parse_yolo: the nms_kind words it knows; any other is DEFAULT_NMS.
NMS_KINDS = ("default", "greedynms", "diounms")


def read_nms_kind(section: Section, known: tuple[str, ...] = NMS_KINDS) -> str:
    """`nms_kind` as AlexeyAB's parser maps it: a word it knows, else "default"."""
    kind = section.get_str("nms_kind", "default")
    return kind if kind in known else "default"


class YoloHead(Layer):
    """What [yolo] and AlexeyAB's [Gaussian_yolo] share (parser.c parse_yolo, parse_gaussian_yolo).

    `num` anchors in total (pixels of the network input), of which the layer
    uses those in `mask` (parse_yolo_mask; default 0..num-1); per anchor
    `coords` box entries, the objectness, then `classes` class entries
    (`entries`), anchor after anchor.  AlexeyAB's `scale_x_y`, `nms_kind`
    (the words in `nms_kinds`) and `beta_nms`.  Anchors and mask are
    checked where Darknet would read past `l.biases`: fewer than 2*num
    anchors (Darknet keeps .5 for the missing ones) are refused too.
    """

    coords = 4
    nms_kinds = NMS_KINDS
    new_coords = 0  # [yolo] reads AlexeyAB's new_coords; make_*_layer's calloc leaves 0

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        self.classes = section.get_int("classes", 20)
        self.total = section.get_int("num", 1)
        self.mask = section.get_ints("mask", list(range(self.total)))
        self.scale_x_y = float(np.float32(section.get_float("scale_x_y", 1.0)))  # AlexeyAB: a C float
        self.nms_kind = read_nms_kind(section, self.nms_kinds)
        self.beta_nms = section.get_float("beta_nms", 0.6)
        anchors = section.get_floats("anchors", [0.5] * (2 * self.total))
        if self.classes < 0 or self.total < 1:
            raise section.error(f"classes={self.classes} num={self.total} is not a valid head")
        if len(anchors) < 2 * self.total:
            raise section.error(f"anchors has {len(anchors)} values, num={self.total} needs {2 * self.total}", "anchors")
        if any(not 0 <= m < self.total for m in self.mask):
            raise section.error(f"mask {self.mask} must index the num={self.total} anchors", "mask")
        self.num = len(self.mask)
        self.register_buffer("anchors", torch.tensor(anchors[: 2 * self.total], dtype=torch.float32).view(self.total, 2))

    @property
    def entries(self) -> int:
        """Values per anchor and cell: the box entries, the objectness, the classes."""
        return self.coords + 1 + self.classes

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        c, h, w = in_shapes[0]
        if c != self.num * self.entries:
            raise self.section.error(
                f"needs len(mask)*(classes+{self.coords + 1}) = {self.num}*({self.classes}+{self.coords + 1}) = "
                f"{self.num * self.entries} input channels; the previous layer gives {c}"
            )
        return (c, h, w)

    def scale_xy(self, xy: Tensor) -> Tensor:
        """AlexeyAB's `scal_add_cpu(.., scale_x_y, -0.5*(scale_x_y - 1), ..)` on logistic box centres: xy*s + beta.

        beta is computed as the C does: (s - 1) in float, times the double
        -0.5, passed as a float.
        """
        if self.scale_x_y == 1:
            return xy
        beta = float(np.float32(-0.5 * float(np.float32(self.scale_x_y) - np.float32(1))))
        return xy * self.scale_x_y + beta

    def describe(self) -> str:
        return f"       {self.num} anchors, {self.classes} classes"


class Yolo(YoloHead):
    """[yolo]; `alexeyab` (set by Darknet for that dialect) chooses AlexeyAB's loss and `max` default."""

    kind = "yolo"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index, shapes)
        self.alexeyab = False
        self.max_option: int | None = section.get_int("max", None)
        self.jitter = section.get_float("jitter", 0.2)
        self.ignore_thresh = section.get_float("ignore_thresh", 0.5)
        self.truth_thresh = section.get_float("truth_thresh", 1.0)
        self.random = section.get_float("random", 0)  # AlexeyAB: a float, the multi-scale coefficient (train.multiscale)
        self.map = read_map(section)
        self.new_coords = section.get_int("new_coords", 0)
        self.gpu_build = False  # with `alexeyab`: train as its GPU build (Darknet.set_training_build)
        self.delta_normalizer = float(np.float32(section.get_float("delta_normalizer", 1.0)))  # AlexeyAB's GPU build

    @property
    def max_boxes(self) -> int:
        """`max`, the truths per image the loss reads: parse_yolo's default is 90 in pjreddie's Darknet, 200 in AlexeyAB's."""
        if self.max_option is not None:
            return self.max_option
        return 200 if self.alexeyab else 90

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        v = x.view(b, self.num, self.entries, h, w)
        xy = self.scale_xy(v[:, :, :2] if self.new_coords else torch.sigmoid(v[:, :, :2]))
        if self.new_coords:
            return torch.cat([xy, v[:, :, 2:]], dim=2).view(b, -1, h, w)
        parts = [xy, v[:, :, 2:4], torch.sigmoid(v[:, :, 4:])]
        return torch.cat(parts, dim=2).view(b, -1, h, w)

    def delta(self, raw: Tensor, truth: Tensor, net_size: tuple[int, int], log: Callable[[str], object] | None = None,
              counts: BoxCounts | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Darknet's forward_yolo_layer in training: (l.output, l.delta, *l.cost).

        `raw` (N, C, H, W) is the layer's input, `truth` (N, boxes, 5) as for
        [region] (at most `max` boxes read; AlexeyAB's 6th float, track_id, is
        accepted), `net_size` the network's input (width, height), in which the
        anchors are given.  In AlexeyAB's dialect, AlexeyAB's loss
        (pydarknet.layers.yolo_alexeyab).  pjreddie's: objectness 0 - obj
        unless the best IoU with a truth exceeds `ignore_thresh` (and 1 - obj
        with the box and class deltas of that truth above `truth_thresh`);
        each truth's best anchor over all `num` anchors, if it is in `mask`,
        gets box deltas scaled by 2 - w*h, 1 - obj and the class delta.
        `log` receives the line the C prints (pjreddie's `Region L Avg IOU: ...`,
        pydarknet.layers.loss_report; AlexeyAB's `v3 (...)`); `counts` AlexeyAB's
        box-delta counters (its dialect only: loss_report.BoxCounts).
        """
        if self.alexeyab:
            return alexeyab_yolo_delta(self, raw, truth, net_size, log, counts)
        self._refuse_alexeyab_options()
        with torch.no_grad():
            out = self.forward(raw)
            n_img, _, h, w = raw.shape
            o = out.view(n_img, self.num, self.classes + 5, h, w)
            truth = truth[:, : self.max_boxes, :5].to(o)
            valid = (truth[..., 0] != 0).cumprod(dim=1).bool()  # Darknet: `if(!truth.x) break;`
            size = torch.tensor(net_size, device=o.device, dtype=o.dtype)
            boxes = self.pred_boxes(o, size)
            delta = torch.zeros_like(o)
            iou = box_iou(boxes.unsqueeze(-2), truth[:, None, None, None, :, :4]).nan_to_num(0.0)
            iou = iou.masked_fill(~valid[:, None, None, None, :], 0.0)
            best, best_t = iou.max(dim=-1) if truth.shape[1] else (torch.zeros_like(boxes[..., 0]), None)
            obj = o[:, :, 4]
            delta[:, :, 4] = (0 - obj).masked_fill(best > self.ignore_thresh, 0.0)
            if best_t is not None and bool((best > self.truth_thresh).any()):
                self._matched_delta(o, best > self.truth_thresh, best_t, truth, size, delta)
            tally = Tally(anyobj=obj.double().sum()) if log is not None else None
            for t in range(truth.shape[1]):
                images = valid[:, t].nonzero()[:, 0]
                if images.numel():
                    self._truth_delta(o, boxes, truth[images, t], images, size, delta, tally)
            delta = delta.view_as(out)
            if log is not None and tally is not None:
                log(tally.yolo_line(self.index, obj.numel()))
            return out, delta, delta.square().sum()

    def _refuse_alexeyab_options(self) -> None:
        """pjreddie's loss has none of AlexeyAB's options: a cfg that sets one trains in AlexeyAB's dialect only."""
        options = self.section.options
        found = [options[key] for key in ALEXEYAB_TRAINED["yolo"] if key in options]
        found += [options[key] for key, value, plain in (("scale_x_y", self.scale_x_y, 1.0), ("new_coords", self.new_coords, 0))
                  if value != plain]
        if found:
            opt = min(found, key=lambda o: o.line)  # the first in the cfg
            raise DarknetError(
                f"{self.section.where(opt)}: [yolo] {opt.key}={opt.value}: AlexeyAB's loss option; pjreddie's "
                "forward_yolo_layer, which this network's dialect trains with, has no such option "
                "(train it in AlexeyAB's dialect)"
            )

    def input_delta(self, output: Tensor, delta: Tensor) -> Tensor:
        """Darknet's backward_yolo_layer adds l.delta to the previous layer as it is; AlexeyAB's GPU build
        scales it by `delta_normalizer` (yolo_layer.c backward_yolo_layer_gpu: axpy_ongpu with
        loss_scale * delta_normalizer; loss_scale is undone by its update, which divides the learning rate)."""
        if self.alexeyab and self.gpu_build and self.delta_normalizer != 1:
            return delta * self.delta_normalizer
        return delta

    def pred_boxes(self, o: Tensor, size: Tensor) -> Tensor:
        """Darknet's get_yolo_box for every (image, anchor, row, column) of the output view `o`: (..., 4).

        x = (col + tx) / W, y = (row + ty) / H; w = exp(tw) * anchor_w / net_w, or with AlexeyAB's
        new_coords tw*tw*4 * anchor_w / net_w; h likewise.
        """
        h, w = o.shape[-2:]
        anchors = self.anchors[self.mask]
        col = torch.arange(w, device=o.device, dtype=o.dtype)
        row = torch.arange(h, device=o.device, dtype=o.dtype).view(-1, 1)
        aw = anchors[:, 0].view(1, -1, 1, 1)
        ah = anchors[:, 1].view(1, -1, 1, 1)
        x = (col + o[:, :, 0]) / w
        y = (row + o[:, :, 1]) / h
        if self.new_coords:
            return torch.stack([x, y, o[:, :, 2] * o[:, :, 2] * 4 * aw / size[0], o[:, :, 3] * o[:, :, 3] * 4 * ah / size[1]], dim=-1)
        return torch.stack([x, y, torch.exp(o[:, :, 2]) * aw / size[0], torch.exp(o[:, :, 3]) * ah / size[1]], dim=-1)

    def box_target(self, tb: Tensor, anchor: Tensor, cell: tuple[Tensor, Tensor], grid: tuple[int, int], size: Tensor) -> Tensor:
        """delta_yolo_box's targets (M, 4) of truths `tb` in cells (i, j) of a grid (w, h), anchors (M, 2) in pixels:
        x*w - i, y*h - j, log(w*net_w / anchor_w), log(h*net_h / anchor_h) (AlexeyAB's new_coords:
        sqrt(w*net_w / (4*anchor_w)), likewise h)."""
        (i, j), (w, h) = cell, grid
        if self.new_coords:
            tw, th = torch.sqrt(tb[:, 2] * size[0] / (4 * anchor[:, 0])), torch.sqrt(tb[:, 3] * size[1] / (4 * anchor[:, 1]))
        else:
            tw, th = torch.log(tb[:, 2] * size[0] / anchor[:, 0]), torch.log(tb[:, 3] * size[1] / anchor[:, 1])
        return torch.stack([tb[:, 0] * w - i, tb[:, 1] * h - j, tw, th], dim=1)

    def class_ids(self, cls: Tensor) -> Tensor:
        """Truth classes (floats) as the loss indexes them: (int) truncation, then `map` when given."""
        cls = cls.long()
        return torch.tensor(self.map, device=cls.device)[cls] if self.map is not None else cls

    def mask_slots(self, device: torch.device) -> Tensor:
        """(num_total,) the slot of each anchor in `mask`, -1 when absent (Darknet's int_index: the first slot)."""
        slots = [-1] * self.total
        for slot, anchor in reversed(list(enumerate(self.mask))):
            slots[anchor] = slot
        return torch.tensor(slots, device=device)

    def _box_delta(self, o: Tensor, tb: Tensor, anchor: Tensor, cell: tuple[Tensor, Tensor], grid: tuple[int, int], size: Tensor) -> Tensor:
        """pjreddie's delta_yolo_box: (2 - w*h) * (target - output) for the outputs `o` (M, 4)."""
        return (2 - tb[:, 2] * tb[:, 3]).unsqueeze(1) * (self.box_target(tb, anchor, cell, grid, size) - o)

    def _matched_delta(self, o: Tensor, matched: Tensor, best_t: Tensor, truth: Tensor, size: Tensor, delta: Tensor) -> None:
        """Predictions above `truth_thresh`: 1 - obj, class and box deltas of their best truth."""
        img, n, j, i = matched.nonzero(as_tuple=True)
        tb = truth[img, best_t[img, n, j, i]]
        delta[img, n, 4, j, i] = 1 - o[img, n, 4, j, i]
        p = o[img, n, 5:, j, i]
        delta[img, n, 5:, j, i] = class_delta(p, torch.zeros_like(p), self.class_ids(tb[:, 4]), 1.0, tag=False)
        anchor = self.anchors[torch.tensor(self.mask, device=o.device)[n]]
        delta[img, n, :4, j, i] = self._box_delta(o[img, n, :4, j, i], tb, anchor, (i, j), (o.shape[-1], o.shape[-2]), size)

    def _truth_delta(self, o: Tensor, boxes: Tensor, tb: Tensor, images: Tensor, size: Tensor, delta: Tensor,
                     tally: Tally | None) -> None:
        """One truth per image in `images`: the best of all `num` anchors by
        shape IoU; if this layer's mask holds it, box, objectness and class
        deltas in the truth's cell (overwriting what was there); `boxes` the predicted ones."""
        h, w = o.shape[-2:]
        i = (tb[:, 0] * w).long().clamp(0, w - 1)
        j = (tb[:, 1] * h).long().clamp(0, h - 1)
        shapes = (self.anchors / size).expand(len(tb), -1, -1)
        origin = torch.zeros_like(shapes)
        shape_iou = box_iou(torch.cat([origin, shapes], -1), torch.cat([origin[:, :1], tb[:, None, 2:4]], -1))
        best = shape_iou.nan_to_num(0.0).argmax(dim=1)  # Darknet: the first anchor with the highest IoU
        n = self.mask_slots(o.device)[best]
        keep = n >= 0
        images, tb, i, j, n, best = images[keep], tb[keep], i[keep], j[keep], n[keep], best[keep]
        delta[images, n, :4, j, i] = self._box_delta(o[images, n, :4, j, i], tb, self.anchors[best], (i, j), (w, h), size)
        delta[images, n, 4, j, i] = 1 - o[images, n, 4, j, i]
        p = o[images, n, 5:, j, i]
        cls = self.class_ids(tb[:, 4])
        delta[images, n, 5:, j, i] = class_delta(p, delta[images, n, 5:, j, i], cls, 1.0, tag=True)
        if tally is not None:  # delta_yolo_box's IoU; delta_yolo_class adds the class's probability either way
            tally.truths(box_iou(boxes[images, n, j, i], tb[:, :4]), o[images, n, 4, j, i], p.gather(1, cls.unsqueeze(1)))
