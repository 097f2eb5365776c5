"""Darknet's box maths for detection: decoding the heads, undoing the letterbox, NMS.

Boxes are (x, y, w, h) centre and size, relative (0..1) to the network input
before `correct_boxes` and to the original image after it.  Decoding is
batched: a head output (B, C, H, W) gives boxes (B, N, 4), objectness (B, N)
and class probabilities (B, N, classes), N detections per image in Darknet's
order (src/region_layer.c:get_region_detections, src/yolo_layer.c:
get_yolo_detections).  Detections Darknet would not keep have objectness 0
and all probabilities 0; `do_nms_sort` drops them, as Darknet's does.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pydarknet.hierarchy import hierarchy_predictions, hierarchy_top_prediction, tree_index
from pydarknet.image import letterbox_geometry
from pydarknet.layers.boxes import box_iou
from pydarknet.layers.region import Region
from pydarknet.layers.yolo import Yolo

Decoded = tuple[Tensor, Tensor, Tensor]  # boxes (B, N, 4), objectness (B, N), probs (B, N, classes)


def pairwise_iou(a: Tensor, b: Tensor) -> Tensor:
    """Darknet's box_iou (src/box.c) between every box of `a` (N, 4) and of `b` (M, 4): (N, M)."""
    return box_iou(a[:, None, :], b[None, :, :])


def _grid(h: int, w: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """Column and row of every cell, (H, W) each, in `like`'s dtype and device."""
    rows = torch.arange(h, dtype=like.dtype, device=like.device)[:, None].expand(h, w)
    cols = torch.arange(w, dtype=like.dtype, device=like.device)[None, :].expand(h, w)
    return cols, rows


def _anchor_boxes(v: Tensor, anchors: Tensor, scale_w: float, scale_h: float) -> Tensor:
    """get_region_box / get_yolo_box on v (B, num, entries, H, W): boxes (B, num, H, W, 4).

    Darknet: x = (col + out_x) / grid_w, y = (row + out_y) / grid_h,
    w = exp(out_w) * anchor_w / scale_w, h = exp(out_h) * anchor_h / scale_h.
    """
    _, _, _, h, w = v.shape
    cols, rows = _grid(h, w, v)
    aw = anchors[:, 0].to(v)[None, :, None, None]
    ah = anchors[:, 1].to(v)[None, :, None, None]
    return torch.stack([(cols + v[:, :, 0]) / w, (rows + v[:, :, 1]) / h,
                        torch.exp(v[:, :, 2]) * aw / scale_w, torch.exp(v[:, :, 3]) * ah / scale_h], dim=-1)


def decode_region(layer: Region, output: Tensor, thresh: float, hier_thresh: float) -> Decoded:
    """Darknet's get_region_detections (before correct_region_boxes), batched.

    `output` is the activated [region] output (B, C, H, W).  Detection n*H*W + i
    is anchor n at cell i.  objectness = obj if obj > thresh else 0 (obj is 1
    with `background`).  Without a tree, prob = obj * class where
    objectness != 0 and obj * class > thresh.  With a tree (YOLO9000), the
    classes go through hierarchy_predictions and only the class
    hierarchy_top_prediction picks gets a prob: objectness.  The cfg's
    `map=` is not used: Darknet's test_detector passes no map.
    """
    b, _, h, w = output.shape
    v = output.view(b, layer.num, layer.entries, h, w)
    boxes = _anchor_boxes(v, layer.anchors, w, h).reshape(b, -1, 4)
    scale = torch.ones_like(v[:, :, 0]) if layer.background else v[:, :, layer.coords]
    scale = scale.reshape(b, -1)
    objectness = torch.where(scale > thresh, scale, torch.zeros_like(scale))
    classes = v[:, :, layer.coords + 1 :].permute(0, 1, 3, 4, 2).reshape(b * layer.num * h * w, layer.classes)
    if layer.tree is not None:
        index = tree_index(layer.tree, output.device)
        top = hierarchy_top_prediction(hierarchy_predictions(classes, index), index, hier_thresh)
        probs = torch.zeros_like(classes)
        probs[torch.arange(classes.shape[0], device=output.device), top] = objectness.reshape(-1)
        return boxes, objectness, probs.view(b, -1, layer.classes)
    probs = scale.reshape(-1, 1) * classes
    keep = (objectness.reshape(-1, 1) != 0) & (probs > thresh)
    probs = torch.where(keep, probs, torch.zeros_like(probs))
    return boxes, objectness, probs.view(b, -1, layer.classes)


def decode_yolo(layer: Yolo, output: Tensor, net_w: int, net_h: int, thresh: float) -> Decoded:
    """Darknet's get_yolo_detections (before correct_yolo_boxes), batched.

    Anchors are pixels of the network input (this layer's `mask` of them).
    Darknet keeps only boxes with obj > thresh, cell by cell then anchor by
    anchor; the others here have objectness 0.  prob = obj * class where
    that is > thresh.
    """
    b, _, h, w = output.shape
    v = output.view(b, layer.num, layer.classes + 5, h, w)
    anchors = layer.anchors[torch.tensor(layer.mask, device=layer.anchors.device)]
    boxes = _anchor_boxes(v, anchors, net_w, net_h).permute(0, 2, 3, 1, 4).reshape(b, -1, 4)
    obj = v[:, :, 4].permute(0, 2, 3, 1).reshape(b, -1)
    keep = obj > thresh
    objectness = torch.where(keep, obj, torch.zeros_like(obj))
    probs = obj[..., None] * v[:, :, 5:].permute(0, 3, 4, 1, 2).reshape(b, -1, layer.classes)
    probs = torch.where(keep[..., None] & (probs > thresh), probs, torch.zeros_like(probs))
    return boxes, objectness, probs


def correct_boxes(boxes: Tensor, image_sizes: list[tuple[int, int]], net_w: int, net_h: int, letterbox: bool) -> Tensor:
    """Darknet's correct_region_boxes / correct_yolo_boxes (relative=1), per image.

    Boxes relative to the network input become relative to the image
    (width, height) of `image_sizes`: x = (x - (netw - new_w)/2./netw) /
    ((float)new_w/netw), w *= (float)netw/new_w, likewise y and h, with
    (new_w, new_h) the letterbox size.  With a plain resize (`letter_box=0`)
    the boxes are already relative to the image.
    """
    if not letterbox:
        return boxes
    geometry = [letterbox_geometry(iw, ih, net_w, net_h) for iw, ih in image_sizes]
    new = torch.tensor(geometry, dtype=torch.float32, device=boxes.device)[:, None, :]  # (B, 1, 2)
    net = torch.tensor([net_w, net_h], dtype=torch.float32, device=boxes.device)
    ratio = new / net  # Darknet: (float)new_w / netw
    offset = (net.double() - new.double()) / 2.0 / net.double()  # Darknet: (netw - new_w)/2./netw, in double
    centre = ((boxes[..., :2].double() - offset) / ratio.double()).to(boxes.dtype)
    size = boxes[..., 2:] * (net / new)
    return torch.cat([centre, size], dim=-1)


def do_nms_sort(boxes: Tensor, objectness: Tensor, probs: Tensor, nms: float) -> tuple[Tensor, Tensor]:
    """Darknet's do_nms_sort (src/box.c) on one image's detections.

    Returns (order, probs): the indices of the detections Darknet keeps, in
    the order its array ends up in, and their probabilities after NMS.
    Darknet: swap objectness-0 detections to the end and drop them; then for
    each class, sort by that class's prob (descending; glibc's qsort is a
    stable merge sort, each class's sort starting from the order the
    previous one left) and zero the prob of every later box whose IoU with a
    box still holding a nonzero prob is > nms.  IoUs are computed only
    between detections with some nonzero prob: no other box takes part.

    The classes' sorts run in sequence (they depend on each other); the
    suppression then runs for all classes at once over the few overlapping
    pairs (IoU > nms), not over an N x N matrix per class: for each class,
    box j keeps its prob unless an earlier box that keeps its prob overlaps
    it.  That triangular system has one solution, reached in a few rounds.
    """
    order = _swap_zeros_to_end(objectness != 0)
    probs = probs[order].clone()
    n = order.numel()
    positive = probs > 0
    classes = torch.nonzero(positive.any(dim=0)).flatten()
    labelled = torch.nonzero(positive.any(dim=1)).flatten()
    candidates = boxes[order[labelled]]
    overlaps = pairwise_iou(candidates, candidates) > nms
    overlaps.fill_diagonal_(False)
    first, second = (labelled[i] for i in torch.nonzero(overlaps, as_tuple=True))
    rank = torch.empty((classes.numel(), n), dtype=torch.long, device=order.device)
    order_now = torch.arange(n, device=order.device)
    for row, k in enumerate(classes.tolist()):
        order_now = order_now[torch.argsort(-probs[order_now, k], stable=True)]
        rank[row, order_now] = torch.arange(n, device=order.device)
    holds = positive[:, classes].t()  # (classes, n)
    # (class, earlier box, later box) for every overlapping pair where both hold that class
    pair = holds[:, first] & holds[:, second] & (rank[:, first] < rank[:, second])
    cls, edge = torch.nonzero(pair, as_tuple=True)
    src, dst = cls * n + first[edge], cls * n + second[edge]
    keep = holds.reshape(-1)
    while True:
        hit = torch.zeros(keep.numel(), dtype=torch.int32, device=keep.device).index_add_(0, dst, keep[src].to(torch.int32))
        new = holds.reshape(-1) & (hit == 0)
        if torch.equal(new, keep):
            break
        keep = new
    probs[:, classes] = torch.where(keep.view(classes.numel(), n).t(), probs[:, classes], torch.zeros((), dtype=probs.dtype, device=probs.device))
    return order[order_now], probs[order_now]


def _swap_zeros_to_end(nonzero: Tensor) -> Tensor:
    """The indices of nonzero entries in the order Darknet's do_nms_sort leaves them.

    Darknet scans forward and swaps each objectness-0 detection with the last
    not yet swapped one: entries before the cut keep their place, and the
    holes are filled by the kept entries beyond it, last first.
    """
    count = int(nonzero.sum())
    index = torch.arange(nonzero.numel(), device=nonzero.device)
    order = index[:count].clone()
    holes = torch.nonzero(~nonzero[:count]).flatten()
    tail = torch.nonzero(nonzero[count:]).flatten() + count
    order[holes] = tail.flip(0)
    return order
