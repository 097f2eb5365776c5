"""AlexeyAB's [yolo] loss: `forward_yolo_layer` in training (src/yolo_layer.c at 59596d78).

`Yolo.delta` computes this when the network's dialect is AlexeyAB's (pjreddie's
is in pydarknet.layers.yolo).  Per image (`process_batch`, one thread per image,
disjoint writes), with the truths up to the first x == 0 (at most `max`, default
200) whose class is in [0, classes):

1. every anchor of every cell: the best IoU of its box with a truth counts for
   `ignore_thresh` only when some class output of the anchor is > .25
   (`compare_yolo_class`, not the truth's class); objectness delta
   obj_normalizer * (0 - obj), 0 above ignore_thresh (`objectness_smooth`: the
   larger of it and obj_normalizer * (iou - obj)); above `truth_thresh` (any
   class) the best truth's deltas as in 2 (never at truth_thresh=1);
2. every truth: in its cell, the first best of all `num` anchors by shape IoU if
   `mask` holds it, and with `iou_thresh` < 1 every other anchor of the mask whose
   shape overlap (`iou_thresh_kind`) exceeds it: box deltas added
   (`delta_yolo_box`: mse, (2 - w*h) * (target - output) * iou_normalizer; iou,
   giou, diou, ciou: box.c dx_box_iou times exp(tw), exp(th) unless new_coords,
   times iou_normalizer, NaN/inf zeroed, clipped at max_delta), objectness
   obj_normalizer * (1 - obj), the class deltas (`delta_yolo_class`);
3. with iou_thresh < 1, each anchor's box deltas divided by its number of
   positive class deltas (`averages_yolo_deltas`).

`counters_per_class` multiplies an assignment's box normalizer, objectness and
class deltas by max_count / count of its class (`get_classes_multipliers`,
clipped at max_delta); `cls_normalizer` only acts with it.  The cost (show_details=1,
the default) is obj_normalizer * the squared non-box deltas + iou_normalizer *
the mean (1 - IoU) of the assignments of 2 (1 - GIoU for giou); mse or
show_details=0: the squared deltas.  The truths' 6th float (track_id) feeds only
the [contrastive] labels, never this loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.boxes import OVERLAP_KINDS, alexeyab_box_iou, box_giou, box_iou_kind, dx_box_iou
from pydarknet.layers.loss_report import BoxCounts, c_mean, c_number

if TYPE_CHECKING:
    from pydarknet.layers.yolo import Yolo

CLASS_MATCH = 0.25  # forward_yolo_layer: compare_yolo_class(..., 0.25f)
FOCAL_ALPHA = 0.5  # delta_yolo_class: `float alpha = 0.5;`


def _c_float(value: float) -> float:
    """A cfg number as Darknet's `float` field holds it."""
    return float(np.float32(value))


@dataclass(frozen=True)
class LossOptions:
    """The loss fields AlexeyAB's parse_yolo reads, with its defaults."""

    iou_loss: str  # "mse" or one of OVERLAP_KINDS (an unknown word is "iou", as parse_yolo's IOU)
    iou_normalizer: float
    obj_normalizer: float
    cls_normalizer: float
    ignore_thresh: float
    truth_thresh: float
    iou_thresh: float
    iou_thresh_kind: str
    max_delta: float | None  # None: FLT_MAX, no clipping
    class_multipliers: tuple[float, ...] | None  # from counters_per_class
    label_smooth_eps: float
    objectness_smooth: bool
    focal_loss: bool
    show_details: bool

    @classmethod
    def read(cls, section: Section, classes: int) -> LossOptions:
        """parse_yolo's loss options of `section` (read when the loss runs: at inference they are unused)."""
        iou_loss = section.get_str("iou_loss", "mse")
        kind = section.get_str("iou_thresh_kind", "iou")
        max_delta = section.get_float("max_delta", None)
        max_delta = None if max_delta is None else _c_float(max_delta)
        return cls(
            iou_loss=iou_loss if iou_loss in ("mse", *OVERLAP_KINDS) else "iou",
            iou_normalizer=_c_float(section.get_float("iou_normalizer", 0.75)),
            obj_normalizer=_c_float(section.get_float("obj_normalizer", 1.0)),
            cls_normalizer=_c_float(section.get_float("cls_normalizer", 1.0)),
            ignore_thresh=_c_float(section.get_float("ignore_thresh", 0.5)),
            truth_thresh=_c_float(section.get_float("truth_thresh", 1.0)),
            iou_thresh=_c_float(section.get_float("iou_thresh", 1.0)),
            iou_thresh_kind=kind if kind in OVERLAP_KINDS else "iou",  # parse_yolo: " Wrong iou_thresh_kind", IOU
            max_delta=max_delta,
            class_multipliers=_class_multipliers(section, classes, max_delta),
            label_smooth_eps=_c_float(section.get_float("label_smooth_eps", 0.0)),
            objectness_smooth=section.get_int("objectness_smooth", 0) != 0,
            focal_loss=section.get_int("focal_loss", 0) != 0,
            show_details=section.get_int("show_details", 1) != 0,
        )

    def class_targets(self) -> tuple[float, float]:
        """delta_yolo_class's y_true for the truth's class and the others: 1 and 0, or with label_smooth_eps
        y * (1 - eps) + 0.5 * eps (float product, double sum, stored as float)."""
        if not self.label_smooth_eps:
            return 1.0, 0.0
        eps = np.float32(self.label_smooth_eps)
        positive, negative = (_c_float(float(np.float32(y) * (np.float32(1) - eps)) + 0.5 * float(eps)) for y in (1, 0))
        return positive, negative


def _class_multipliers(section: Section, classes: int, max_delta: float | None) -> tuple[float, ...] | None:
    """parser.c get_classes_multipliers: counters below 1 count 1; max_count / count_c, at most max_delta."""
    counters = section.get_ints("counters_per_class", None)
    if counters is None:
        return None
    if len(counters) != classes:
        raise section.error(f"counters_per_class has {len(counters)} values, classes={classes} needs as many "
                            "(AlexeyAB's parser stops here too)", "counters_per_class")
    counters = [max(count, 1) for count in counters]
    top = np.float32(max(counters))
    limit = np.float32(np.inf if max_delta is None else max_delta)
    return tuple(float(min(top / np.float32(count), limit)) for count in counters)


@dataclass
class _Batch:
    """One call's tensors: `o` the output (N, num, entries, H, W) as a view, `boxes` its get_yolo_box boxes
    (N, num, H, W, 4), `truth` (N, T, 5) and `valid` (N, T) the truths the loss reads, `delta` like `o`;
    `counts` the box-delta counters to add to, if any."""

    layer: Yolo
    opts: LossOptions
    o: Tensor
    boxes: Tensor
    truth: Tensor
    valid: Tensor
    size: Tensor
    delta: Tensor
    counts: BoxCounts | None

    def multipliers(self, cls: Tensor) -> Tensor:
        """The counters_per_class multiplier of each (mapped) class id (`class_multiplier`: 1 without it)."""
        if self.opts.class_multipliers is None:
            return torch.ones(cls.shape, dtype=self.o.dtype, device=self.o.device)
        return torch.tensor(self.opts.class_multipliers, dtype=self.o.dtype, device=self.o.device)[cls]


@dataclass
class _Assigned:
    """process_batch's sums over the truths' anchor assignments (its second loop): of 1 - IoU (giou: 1 - GIoU;
    tot_iou_loss, tot_giou_loss), of the IoU (tot_iou), and their number (count)."""

    lost: Tensor
    iou: Tensor
    count: int

    def __add__(self, other: _Assigned) -> _Assigned:
        return _Assigned(self.lost + other.lost, self.iou + other.iou, self.count + other.count)


def alexeyab_yolo_delta(layer: Yolo, raw: Tensor, truth: Tensor, net_size: tuple[int, int],
                        log: Callable[[str], object] | None = None,
                        counts: BoxCounts | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """AlexeyAB's forward_yolo_layer in training: (l.output, l.delta, *l.cost); see the module docstring.

    `truth` (N, boxes, 5 or 6): x, y, w, h, class[, track_id], relative to the image.  `log` receives
    the `v3 (...)` line (`v3_line`); `counts`, if given, gets this call's delta_yolo_box calls added.
    """
    opts = LossOptions.read(layer.section, layer.classes)
    with torch.no_grad():
        out = layer.forward(raw)
        n_img, _, h, w = raw.shape
        o = out.view(n_img, layer.num, layer.entries, h, w)
        truth, valid = _read_truths(truth[:, : layer.max_boxes, :5].to(o), layer.classes)
        _zero_bad_objectness(o, valid)
        size = torch.tensor(net_size, device=o.device, dtype=o.dtype)
        batch = _Batch(layer, opts, o, layer.pred_boxes(o, size), truth, valid, size, torch.zeros_like(o), counts)
        _anchor_deltas(batch)
        zero = torch.zeros((), dtype=o.dtype, device=o.device)
        assigned = _Assigned(zero, zero, 0)
        for t in range(truth.shape[1]):
            images = valid[:, t].nonzero()[:, 0]
            if images.numel():
                assigned = assigned + _truth_deltas(batch, images, truth[images, t])
        if opts.iou_thresh < 1:
            _average_box_deltas(batch.delta)
        delta = batch.delta.view_as(out)
        if log is not None:
            log(v3_line(layer.index, opts, batch.delta, assigned))
        return out, delta, _cost(batch.delta, opts, assigned)


def _read_truths(truth: Tensor, classes: int) -> tuple[Tensor, Tensor]:
    """The rows up to the first x == 0 (`if (!truth.x) break;`), cut to the longest such list, and which of
    them the loss reads: a class outside [0, classes) is skipped (`continue`; (int) truncates)."""
    listed = (truth[..., 0] != 0).cumprod(dim=1).bool()
    rows = int(listed.sum(dim=1).max()) if listed.numel() else 0
    truth, listed = truth[:, :rows], listed[:, :rows]
    cls = truth[..., 4].long()
    return truth, listed & (cls >= 0) & (cls < classes)


def _zero_bad_objectness(o: Tensor, valid: Tensor) -> None:
    """process_batch: `if (isnan(objectness) || isinf(objectness)) l.output[obj_index] = 0;`, reached only in an
    image with a truth the loss reads (it is inside the loop over them)."""
    obj = o[:, :, 4]
    bad = ~torch.isfinite(obj) & valid.any(dim=1).view(-1, 1, 1, 1)
    if bool(bad.any()):
        o[:, :, 4] = obj.masked_fill(bad, 0.0)


def _anchor_deltas(batch: _Batch) -> None:
    """process_batch's first loop: every anchor's objectness delta, and the truth_thresh matches."""
    o, opts = batch.o, batch.opts
    iou = alexeyab_box_iou(batch.boxes.unsqueeze(-2), batch.truth[:, None, None, None, :, :4]).nan_to_num(0.0)
    iou = iou.masked_fill(~batch.valid[:, None, None, None, :], 0.0)
    if iou.shape[-1]:
        best_t = iou.argmax(dim=-1)  # the first of the highest, as `if (iou > best_iou)`
        best_iou = iou.gather(-1, best_t.unsqueeze(-1)).squeeze(-1)
    else:
        best_iou = torch.zeros_like(batch.boxes[..., 0])
        best_t = torch.zeros_like(best_iou, dtype=torch.long)
    class_match = (o[:, :, 5:] > CLASS_MATCH).any(dim=2)
    best_match = torch.where(class_match, best_iou, torch.zeros_like(best_iou))
    obj = o[:, :, 4]
    obj_delta = opts.obj_normalizer * (0 - obj)
    ignored = best_match > opts.ignore_thresh
    if opts.objectness_smooth:
        smooth = opts.obj_normalizer * (best_match - obj)
        obj_delta = torch.where(ignored & (smooth > obj_delta), smooth, obj_delta)
    else:
        obj_delta = obj_delta.masked_fill(ignored, 0.0)
    batch.delta[:, :, 4] = obj_delta
    matched = best_iou > opts.truth_thresh
    if bool(matched.any()):
        _truth_thresh_deltas(batch, matched, best_t, best_iou)


def _truth_thresh_deltas(batch: _Batch, matched: Tensor, best_t: Tensor, best_iou: Tensor) -> None:
    """The first loop's `if (best_iou > l.truth_thresh)`: objectness 1 - obj (objectness_smooth: iou^2 - obj),
    the class deltas (objectness_smooth: the class's is multiplier * (iou^2 - p)) and the box deltas of the
    best truth (any class), with the anchor's own mask entry."""
    layer, o, opts, delta = batch.layer, batch.o, batch.opts, batch.delta
    img, n, j, i = matched.nonzero(as_tuple=True)
    tb = batch.truth[img, best_t[img, n, j, i]]
    cls = layer.class_ids(tb[:, 4])
    mult = batch.multipliers(cls)
    iou_multiplier = best_iou[img, n, j, i] * best_iou[img, n, j, i]
    obj = o[img, n, 4, j, i]
    delta[img, n, 4, j, i] = opts.obj_normalizer * ((iou_multiplier if opts.objectness_smooth else 1) - obj)
    p = o[img, n, 5:, j, i]
    classes = _class_delta(p, delta[img, n, 5:, j, i], cls, opts, mult)
    if opts.objectness_smooth:
        rows = torch.arange(len(cls), device=cls.device)
        classes[rows, cls] = mult * (iou_multiplier - p[rows, cls])
    delta[img, n, 5:, j, i] = classes
    anchor = layer.anchors[torch.tensor(layer.mask, device=o.device)[n]]
    if batch.counts is not None:  # the first loop's anchors are distinct, their box deltas still 0: none rewritten
        batch.counts.total += len(img)
    delta[img, n, :4, j, i] += _box_delta(batch, o[img, n, :4, j, i], batch.boxes[img, n, j, i], tb, anchor, (i, j), mult)


def _truth_deltas(batch: _Batch, images: Tensor, tb: Tensor) -> _Assigned:
    """process_batch's second loop for one truth per image in `images` (rows of `tb`): its assignments (the best
    anchor if in the mask, and those above iou_thresh) all lie in the truth's cell on distinct anchors, so they
    are made at once."""
    layer, o, opts, delta = batch.layer, batch.o, batch.opts, batch.delta
    h, w = o.shape[-2:]
    row, n = _assignments(layer, tb, batch.size, opts).nonzero(as_tuple=True)
    if not len(row):
        zero = torch.zeros((), dtype=o.dtype, device=o.device)
        return _Assigned(zero, zero, 0)
    img, tb = images[row], tb[row]
    slot = layer.mask_slots(o.device)[n]
    i = (tb[:, 0] * w).long().clamp(0, w - 1)  # Darknet: (int)(x * l.w), no bound (x == 1 would write past the row)
    j = (tb[:, 1] * h).long().clamp(0, h - 1)
    cls = layer.class_ids(tb[:, 4])
    mult = batch.multipliers(cls)
    pred = batch.boxes[img, slot, j, i]
    iou = alexeyab_box_iou(pred, tb[:, :4])
    overlap = box_giou(pred, tb[:, :4]) if opts.iou_loss == "giou" else iou
    if batch.counts is not None:  # delta_yolo_box: `if (delta[index + 0 * stride] || ...) (*rewritten_bbox)++;`
        batch.counts.total += len(row)
        batch.counts.rewritten += (delta[img, slot, :4, j, i] != 0).any(dim=1).sum()
    delta[img, slot, :4, j, i] += _box_delta(batch, o[img, slot, :4, j, i], pred, tb, layer.anchors[n], (i, j), mult)
    obj_delta = mult * opts.obj_normalizer * (1 - o[img, slot, 4, j, i])
    if opts.objectness_smooth:  # only where no earlier rule set it
        current = delta[img, slot, 4, j, i]
        obj_delta = torch.where(current == 0, obj_delta, current)
    delta[img, slot, 4, j, i] = obj_delta
    delta[img, slot, 5:, j, i] = _class_delta(o[img, slot, 5:, j, i], delta[img, slot, 5:, j, i], cls, opts, mult)
    return _Assigned((1 - overlap).sum(), iou.sum(), len(row))


def _assignments(layer: Yolo, tb: Tensor, size: Tensor, opts: LossOptions) -> Tensor:
    """(M, num_total) which anchors each truth trains: the first best of all anchors by box_iou of the shapes
    (both centred at 0), if in the mask; with iou_thresh < 1 also every other mask anchor whose
    `iou_thresh_kind` overlap with the truth's shape is > iou_thresh."""
    shapes = layer.anchors / size
    anchor_boxes = torch.cat([torch.zeros_like(shapes), shapes], dim=-1).unsqueeze(0)
    truth_boxes = torch.cat([torch.zeros_like(tb[:, :2]), tb[:, 2:4]], dim=-1).unsqueeze(1)
    best = alexeyab_box_iou(anchor_boxes, truth_boxes).nan_to_num(0.0).argmax(dim=1)
    in_mask = layer.mask_slots(tb.device) >= 0
    is_best = torch.nn.functional.one_hot(best, layer.total).bool()
    assigned = is_best & in_mask
    if opts.iou_thresh < 1:
        close = box_iou_kind(anchor_boxes, truth_boxes, opts.iou_thresh_kind) > opts.iou_thresh
        assigned |= close & in_mask & ~is_best
    return assigned


def _box_delta(batch: _Batch, out: Tensor, pred: Tensor, tb: Tensor, anchor: Tensor, cell: tuple[Tensor, Tensor],
              mult: Tensor) -> Tensor:
    """yolo_layer.c delta_yolo_box's increments (M, 4) for outputs `out` (M, 4), their boxes `pred`, truths `tb`, anchors
    (M, 2) in pixels, cells (i, j); normalizer iou_normalizer * the class multiplier.

    mse: (2 - w*h) * (target - output) * normalizer (targets as pjreddie's; new_coords: sqrt(w*net_w/(4*aw))).
    Overlaps: dx_box_iou on the box with a zero w or h made 1 ("avoid nan"), w and h times exp(tw), exp(th)
    unless new_coords, times the normalizer, NaN/inf -> 0 (fix_nan_inf), clipped at +-max_delta (clip_value).
    """
    layer, opts = batch.layer, batch.opts
    normalizer = (opts.iou_normalizer * mult).unsqueeze(1)
    grid = (batch.o.shape[-1], batch.o.shape[-2])
    if opts.iou_loss == "mse":
        scale = (2 - tb[:, 2] * tb[:, 3]).unsqueeze(1)
        return scale * (layer.box_target(tb, anchor, cell, grid, batch.size) - out) * normalizer
    pred = torch.cat([pred[:, :2], pred[:, 2:].masked_fill(pred[:, 2:] == 0, 1.0)], dim=1)
    grad = dx_box_iou(pred, tb[:, :4], opts.iou_loss)
    if not layer.new_coords:
        grad = torch.cat([grad[:, :2], grad[:, 2:] * torch.exp(out[:, 2:])], dim=1)
    grad = (grad * normalizer).nan_to_num(0.0, posinf=0.0, neginf=0.0)
    return grad if opts.max_delta is None else grad.clamp(-opts.max_delta, opts.max_delta)


def _class_delta(p: Tensor, current: Tensor, cls: Tensor, opts: LossOptions, mult: Tensor) -> Tensor:
    """yolo_layer.c delta_yolo_class for rows of class outputs `p` (M, classes) whose delta so far is `current`.

    When the truth class's delta is already non-zero (an earlier truth on this anchor; pjreddie's tests
    class 0's), only that entry: y - p, times the class multiplier `mult` (the C forgets cls_normalizer here).  Else every class: y - p (y:
    class_targets), the truth class's times multiplier * cls_normalizer when counters_per_class is set
    (cls_normalizer has no effect without it); with focal_loss (onehot - p) * 0.5 * grad(pt),
    no smoothing or multiplier.  A NaN or inf y - p leaves the entry as it was.
    """
    positive, negative = opts.class_targets()
    onehot = torch.nn.functional.one_hot(cls, p.shape[1]).bool()
    p_true = p.gather(1, cls.unsqueeze(1)).squeeze(1)
    current_true = current.gather(1, cls.unsqueeze(1)).squeeze(1)
    entry = _keep_finite(positive - p_true, current_true) * mult
    again = torch.where(onehot, entry.unsqueeze(1), current)
    if opts.focal_loss:
        first = _focal_delta(p, onehot, p_true)
    else:
        targets = torch.where(onehot, torch.full_like(p, positive), torch.full_like(p, negative))
        first = _keep_finite(targets - p, current)
        if opts.class_multipliers is not None:
            first = torch.where(onehot, first * (mult * opts.cls_normalizer).unsqueeze(1), first)
    return torch.where((current_true != 0).unsqueeze(1), again, first)


def _keep_finite(new: Tensor, old: Tensor) -> Tensor:
    """`if (!isnan(result_delta) && !isinf(result_delta)) delta = result_delta;`"""
    return torch.where(torch.isfinite(new), new, old)


def _focal_delta(p: Tensor, onehot: Tensor, p_true: Tensor) -> Tensor:
    """delta_yolo_class's focal loss: (onehot - p) * alpha * grad, alpha .5, pt = p_class + 1e-15f,
    grad = -(1 - pt) * (2 pt log(pt) + pt - 1)."""
    pt = p_true + np.float32(0.000000000000001)
    grad = -(1 - pt) * (2 * pt * torch.log(pt) + pt - 1)
    return (onehot.to(p.dtype) - p) * (FOCAL_ALPHA * grad).unsqueeze(1)


def _average_box_deltas(delta: Tensor) -> None:
    """yolo_layer.c averages_yolo_deltas on every anchor with a non-zero objectness delta: its box deltas divided
    by the number of its class deltas > 0 (iou_thresh < 1 only; with label_smooth_eps a class with p < eps/2
    counts too)."""
    positives = (delta[:, :, 5:] > 0).sum(dim=2, keepdim=True)
    divide = (delta[:, :, 4:5] != 0) & (positives > 0)
    delta[:, :, :4] = torch.where(divide, delta[:, :, :4] / positives.clamp(min=1), delta[:, :, :4])


def _cost(delta: Tensor, opts: LossOptions, assigned: _Assigned) -> Tensor:
    """forward_yolo_layer's *l.cost: with show_details (default) and an overlap loss, obj_normalizer * sum of the
    squared non-box deltas + iou_normalizer * lost / count (count at least 1; lost is 1 - IoU even for diou
    and ciou); mse or show_details=0: the squared deltas."""
    if not opts.show_details or opts.iou_loss == "mse":
        return delta.square().sum()
    return opts.iou_normalizer * assigned.lost / max(assigned.count, 1) + _classification_loss(delta, opts)


def _classification_loss(delta: Tensor, opts: LossOptions) -> Tensor:
    """forward_yolo_layer's classification_loss: obj_normalizer * the squared deltas but x, y, w, h."""
    return opts.obj_normalizer * delta[:, :, 4:].square().sum()


def v3_line(index: int, opts: LossOptions, delta: Tensor, assigned: _Assigned) -> str:
    """The line forward_yolo_layer prints on stderr: `v3 (KIND loss, Normalizer: (iou: .., obj: .., cls: ..)
    Region INDEX Avg (IOU: tot_iou/count), count: N, ...`; KIND is mse, giou, or iou (diou and ciou too).
    With show_details (default) `class_loss`, `iou_loss` = the squared deltas less class_loss, and
    `total_loss` = the squared deltas, each per image (not *l.cost); show_details=0: total_loss only."""
    kind = opts.iou_loss if opts.iou_loss in ("mse", "giou") else "iou"
    images = delta.shape[0]
    total = float(delta.double().square().sum()) / images
    head = (f"v3 ({kind} loss, Normalizer: (iou: {opts.iou_normalizer:.2f}, obj: {opts.obj_normalizer:.2f}, "
            f"cls: {opts.cls_normalizer:.2f}) Region {index} Avg (IOU: {c_mean(float(assigned.iou), max(assigned.count, 1))}), "
            f"count: {max(assigned.count, 1)}, ")
    if not opts.show_details:
        return head + f"total_loss = {c_number(total)} "
    classification = float(_classification_loss(delta.double(), opts)) / images
    return head + (f"class_loss = {c_number(classification)}, iou_loss = {c_number(total - classification)}, "
                   f"total_loss = {c_number(total)} ")
