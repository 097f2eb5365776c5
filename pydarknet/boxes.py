"""Darknet's box maths for detection: decoding the heads, undoing the letterbox, NMS.

Boxes are (x, y, w, h) centre and size, relative (0..1) to the network input
before `correct_boxes` and to the original image after it.  Decoding is
batched: a head output (B, C, H, W) gives N detections per image in
Darknet's order (src/region_layer.c:get_region_detections,
src/yolo_layer.c:get_yolo_detections), of which only those with nonzero
objectness are decoded (`Candidates`): Darknet's do_nms_sort drops the
others.  (AlexeyAB's [region], objectness 1 everywhere and its own order:
`decode_region_alexeyab`.)  NMS runs on the CPU, in numpy, over those few, in memory linear
in their number (`_suppress`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch import Tensor

from pydarknet.hierarchy import hierarchy_predictions, hierarchy_top_prediction, tree_index
from pydarknet.image import letterbox_geometry
from pydarknet.layers.boxes import box_iou
from pydarknet.layers.detection import Detection
from pydarknet.layers.gaussian_yolo import MEANS, SIGMAS, GaussianYolo
from pydarknet.layers.region import Region
from pydarknet.layers.yolo import YoloHead


# An overlap of two arrays of boxes (..., 4), broadcast: Darknet's box_iou (`_iou`) or AlexeyAB's DIoU variants.
Measure = Callable[[np.ndarray, np.ndarray], np.ndarray] | None


@dataclass
class Candidates:
    """The detections of a batch whose objectness is not 0: the only ones Darknet's do_nms_sort keeps.

    Row r is detection `index[r]` (Darknet's order, heads in cfg order) of
    image `image[r]`, ascending within each image; `count` is the number of
    detections per image, kept or not.  `boxes` (K, 4), `objectness` (K,)
    and `probs` (K, classes) are what Darknet fills them with.  (AlexeyAB's
    [region] gives every detection objectness 1: only those with a nonzero
    prob, the only ones its NMS and output see, are rows.)
    """

    image: Tensor
    index: Tensor
    boxes: Tensor
    objectness: Tensor
    probs: Tensor
    count: int

    @classmethod
    def cat(cls, parts: list[Candidates]) -> Candidates:
        """The heads' candidates as one array per image, heads in order."""
        if len(parts) == 1:
            return parts[0]
        offsets = [sum(p.count for p in parts[:i]) for i in range(len(parts))]
        return cls(torch.cat([p.image for p in parts]), torch.cat([p.index + o for p, o in zip(parts, offsets)]),
                   torch.cat([p.boxes for p in parts]), torch.cat([p.objectness for p in parts]),
                   torch.cat([p.probs for p in parts]), sum(p.count for p in parts))


def pairwise_iou(a: Tensor, b: Tensor) -> Tensor:
    """Darknet's box_iou (src/box.c) between every box of `a` (N, 4) and of `b` (M, 4): (N, M)."""
    return box_iou(a[:, None, :], b[None, :, :])


def _above(x: Tensor, thresh: float) -> Tensor:
    """Darknet's `(x > thresh) ? x : 0`."""
    return torch.where(x > thresh, x, 0)


def _anchor_boxes(v: Tensor, cells: tuple[Tensor, Tensor, Tensor, Tensor], entries: Tensor, anchors: Tensor,
                  scale_w: float, scale_h: float, new_coords: bool = False) -> Tensor:
    """get_region_box / get_yolo_box for the (image, anchor, row, col) `cells` of v (B, num, entries, H, W): (K, 4).

    `entries` (K, entries) are the cells' values.  Darknet:
    x = (col + out_x) / grid_w, y = (row + out_y) / grid_h,
    w = exp(out_w) * anchor_w / scale_w, h = exp(out_h) * anchor_h / scale_h.
    exp runs over the whole map, as it always did here: a vectorised and a
    scalar exp need not agree in the last bit.  AlexeyAB's `new_coords=1`
    (get_yolo_box): w = out_w * out_w * 4 * anchor_w / scale_w, h likewise.
    """
    _, anchor, row, col = cells
    h, w = v.shape[-2:]
    xy = (torch.stack([col, row], dim=1).to(v.dtype) + entries[:, :2]) / torch.tensor([w, h], dtype=v.dtype, device=v.device)
    if new_coords:
        wh = entries[:, 2:4] * entries[:, 2:4] * 4 * anchors.to(v)[anchor]
    else:
        wh = torch.stack([torch.exp(v[:, :, 2]), torch.exp(v[:, :, 3])], dim=-1)[cells] * anchors.to(v)[anchor]
    return torch.cat([xy, wh / torch.tensor([scale_w, scale_h], dtype=v.dtype, device=v.device)], dim=1)


def decode_region(layer: Region, output: Tensor, thresh: float, hier_thresh: float) -> Candidates:
    """Darknet's get_region_detections (before correct_region_boxes), batched.

    `output` is the activated [region] output (B, C, H, W).  Detection n*H*W + i
    is anchor n at cell i.  objectness = obj if obj > thresh else 0 (obj is 1
    with `background`).  Without a tree, prob = obj * class where
    objectness != 0 and obj * class > thresh.  With a tree (YOLO9000), the
    classes go through hierarchy_predictions and only the class
    hierarchy_top_prediction picks gets a prob: objectness.  The cfg's
    `map=` is not used: Darknet's test_detector passes no map.  Only the
    detections with objectness != 0 are decoded.
    """
    b, _, h, w = output.shape
    v = output.view(b, layer.num, layer.entries, h, w)
    scale = torch.ones_like(v[:, :, 0]) if layer.background else v[:, :, layer.coords]
    image, anchor, row, col = cells = torch.nonzero(_above(scale, thresh)).unbind(1)
    entries = v[image, anchor, :, row, col]
    objectness = scale[cells]
    classes = entries[:, layer.coords + 1 :]
    if layer.tree is not None:
        index = tree_index(layer.tree, output.device)
        top = hierarchy_top_prediction(hierarchy_predictions(classes, index), index, hier_thresh)
        probs = torch.zeros_like(classes)
        probs[torch.arange(classes.shape[0], device=output.device), top] = objectness
    else:
        probs = _above(objectness[:, None] * classes, thresh)
    return Candidates(image, (anchor * h + row) * w + col, _anchor_boxes(v, cells, entries, layer.anchors, w, h),
                      objectness, probs, layer.num * h * w)


def decode_region_alexeyab(layer: Region, output: Tensor, thresh: float) -> Candidates:
    """AlexeyAB's custom_get_region_detections (src/network.c) over its get_region_boxes (src/region_layer.c), batched.

    Before correct_yolo_boxes: AlexeyAB corrects [region] boxes as [yolo]'s
    (`correct_boxes(.., dialect="alexeyab")`).  Where pjreddie's
    get_region_detections differs:

    - the order: AlexeyAB's [region] output is flattened (cell, anchor,
      entry), detection `index = i*l.n + n`, so detection (row*W + col)*num
      + anchor (pjreddie: n*W*H + cell);
    - `dets[j].objectness = 1` for all W*H*num of them: do_nms_sort swaps
      nothing to the end (the NMS starts from the array order), and
      `Detection.objectness` is 1;
    - `float scale = predictions[p_index]` (entry 4: `background` is not
      read), `if(l.classfix == -1 && scale < .5) scale = 0`;
    - without a tree, `prob = scale*predictions[class_index+j]`,
      `probs[index][j] = (prob > thresh) ? prob : 0` whatever the scale
      (no `objectness` gate);
    - with a tree, `hierarchy_predictions(.., only_leaves=0)`, then from the
      last class down the first whose absolute probability is > .5 keeps
      it (not times scale), the others 0, `probs = (scale > thresh) ? prob
      : 0`: hier_thresh is not used (custom_get_region_detections does not
      pass `hier` on), nor hierarchy_top_prediction.

    The boxes are get_region_box's (the logistic on x, y in AlexeyAB is
    pydarknet's forward's), times w = h = 1.  Only the detections with a
    nonzero prob are decoded (the others take no part in the NMS, and
    Darknet prints none of them); `count` is all W*H*num.  AlexeyAB reads
    `index*(l.classes + 5)`: `coords` other than 4 are misread in C and are
    not reproduced here (the layer's own entries are used).
    """
    b, _, h, w = output.shape
    v = output.view(b, layer.num, layer.entries, h, w)
    scale = v[:, :, layer.coords]
    if layer.classfix == -1:  # C: if(l.classfix == -1 && scale < .5) scale = 0;
        scale = torch.where(scale < 0.5, 0, scale)
    if layer.tree is None:
        dense = _above(scale[:, :, None] * v[:, :, layer.coords + 1 :], thresh)  # (B, num, classes, H, W)
        hit = (dense != 0).any(dim=2)
    else:
        hit = scale > thresh
    image, row, col, anchor = torch.nonzero(hit.permute(0, 2, 3, 1)).unbind(1)  # C: index = i*l.n + n
    cells = image, anchor, row, col
    entries = v[image, anchor, :, row, col]
    if layer.tree is None:
        probs = dense[image, anchor, :, row, col]
    else:
        absolute = hierarchy_predictions(entries[:, layer.coords + 1 :], tree_index(layer.tree, output.device))
        above = absolute > 0.5  # C: for(j = l.classes - 1; j >= 0; --j) if(!found && predictions[class_index + j] > .5)
        top = layer.classes - 1 - torch.flip(above, dims=[1]).int().argmax(dim=1)
        rows = torch.arange(len(top), device=output.device)
        probs = torch.zeros_like(absolute)
        probs[rows, top] = torch.where(above[rows, top], absolute[rows, top], 0)
    objectness = torch.ones_like(scale[cells])  # C: dets[j].objectness = 1;
    return Candidates(image, (row * w + col) * layer.num + anchor, _anchor_boxes(v, cells, entries, layer.anchors, w, h),
                      objectness, probs, layer.num * h * w)


def decode_yolo(layer: YoloHead, output: Tensor, net_w: int, net_h: int, thresh: float) -> Candidates:
    """Darknet's get_yolo_detections (before correct_yolo_boxes), batched.

    Anchors are pixels of the network input (this layer's `mask` of them).
    Darknet keeps only boxes with obj > thresh, cell by cell then anchor by
    anchor: detection (row*W + col)*num + anchor.  prob = obj * class where
    that is > thresh.  (AlexeyAB's `new_coords`: see `_anchor_boxes`.)
    A head with other box entries than x, y, w, h (a [Gaussian_yolo]:
    `decode_gaussian_yolo`) is refused rather than misread.
    """
    if layer.coords != 4:
        raise ValueError(f"decode_yolo decodes 4-coordinate heads; [{layer.kind}] has coords={layer.coords} "
                         "(decode_gaussian_yolo decodes [Gaussian_yolo])")
    b, _, h, w = output.shape
    v = output.view(b, layer.num, layer.entries, h, w)
    found, _ = _yolo_candidates(layer, v, v[:, :, :4], net_w, net_h, thresh)
    return dataclasses.replace(found, probs=_above(found.probs, thresh))


def decode_gaussian_yolo(layer: GaussianYolo, output: Tensor, net_w: int, net_h: int, thresh: float) -> Candidates:
    """AlexeyAB's get_gaussian_yolo_detections (src/gaussian_yolo_layer.c) before correct_gaussian_yolo_boxes, batched.

    `layer` is a [Gaussian_yolo] head (pydarknet.layers.gaussian_yolo), `output`
    its output (B, C, H, W): per anchor x mu, x sigma, y mu, y sigma, w mu,
    w sigma, h mu, h sigma, objectness, classes.  [yolo]'s decode
    (`_yolo_candidates`) of the means, objectness and classes: detection
    (row*W + col)*num + anchor, only those with objectness > thresh, box
    get_gaussian_yolo_box (x = (col + x mu) / grid_w, w = exp(w mu) *
    anchor_w / net_w, ...), moved by +-w/2, +-h/2 for `yolo_point`
    left_top / right_bottom; prob_j = objectness * class_j * (1 - mean of
    the four sigmas) where that is > thresh.
    """
    b, _, h, w = output.shape
    v = output.view(b, layer.num, layer.entries, h, w)
    found, entries = _yolo_candidates(layer, v, v[:, :, list(MEANS)], net_w, net_h, thresh)
    # C: float uc_aver = (uc[0] + uc[1] + uc[2] + uc[3]) / 4.0; float prob = objectness*class * (1.0 - uc_aver) (in double)
    s0, s1, s2, s3 = (entries[:, i] for i in SIGMAS)
    uc_aver = (s0 + s1 + s2 + s3) / 4
    prob = (found.probs.double() * (1 - uc_aver.double())[:, None]).to(output.dtype)
    boxes = found.boxes
    point = layer.yolo_point
    if point != "center":  # get_gaussian_yolo_box: x = (i + x mu)/lw + b.w/2 (left_top), - b.w/2 (right_bottom)
        half = boxes[:, 2:] / 2
        boxes = torch.cat([boxes[:, :2] + half if point == "left_top" else boxes[:, :2] - half, boxes[:, 2:]], dim=1)
    return dataclasses.replace(found, boxes=boxes, probs=_above(prob, thresh))


def _yolo_candidates(layer: YoloHead, v: Tensor, box: Tensor, net_w: int, net_h: int,
                     thresh: float) -> tuple[Candidates, Tensor]:
    """What get_yolo_detections and get_gaussian_yolo_detections share: (candidates, their entries (K, entries)).

    `v` (B, num, entries, H, W) is the head's output, `box` (B, num, 4, H, W)
    its x, y, w, h entries.  The cells whose objectness (entry `coords`) is
    > thresh, cell by cell then anchor by anchor, their boxes, and as
    `probs` objectness * class (float), not yet thresholded.
    """
    h, w = v.shape[-2:]
    image, row, col, anchor = torch.nonzero(_above(v[:, :, layer.coords], thresh).permute(0, 2, 3, 1)).unbind(1)
    cells = image, anchor, row, col
    entries = v[image, anchor, :, row, col]
    objectness = entries[:, layer.coords]
    probs = objectness[:, None] * entries[:, layer.coords + 1 :]
    anchors = layer.anchors[torch.tensor(layer.mask, device=layer.anchors.device)]
    boxes = _anchor_boxes(box, cells, box[image, anchor, :, row, col], anchors, net_w, net_h, bool(layer.new_coords))
    found = Candidates(image, (row * w + col) * layer.num + anchor, boxes, objectness, probs, h * w * layer.num)
    return found, entries


def decode_detection(layer: Detection, output: Tensor, thresh: float) -> Candidates:
    """pjreddie's get_detection_detections (src/detection_layer.c) with w = h = 1, as examples/yolo.c test_yolo: batched.

    `output` (B, side*side*((1+coords)*num + classes), 1, 1): the class
    values of every cell, then the `num` scales per cell, then the boxes.
    Detection i*num + n (cell i, box n) has x = (out_x + col) / side, y
    likewise, w = pow(out_w, sqrt ? 2 : 1) (in double), h likewise,
    objectness = scale and prob_j = scale * class_j where that is > thresh:
    every box is a detection, whatever its scale (random weights make it
    negative); only those with scale != 0 are decoded (do_nms_sort drops
    the others).
    """
    b = output.shape[0]
    side, num, classes = layer.side, layer.num, layer.classes
    cells = side * side
    flat = output.reshape(b, -1)
    cls = flat[:, : cells * classes].view(b, cells, 1, classes)
    scale = flat[:, cells * classes : cells * (classes + num)].view(b, cells, num)
    coords = flat[:, cells * (classes + num) : cells * (classes + num) + cells * num * 4].view(b, cells, num, 4)
    image, cell, n = torch.nonzero(scale != 0).unbind(1)
    objectness = scale[image, cell, n]
    entries = coords[image, cell, n]
    grid = torch.stack([cell % side, cell // side], dim=1).to(output.dtype)
    xy = (entries[:, :2] + grid) / side
    wh = entries[:, 2:].double().pow(2).to(output.dtype) if layer.sqrt else entries[:, 2:]
    probs = _above(objectness[:, None] * cls[image, cell, 0], thresh)
    return Candidates(image, cell * num + n, torch.cat([xy, wh], dim=1), objectness, probs, cells * num)


def correct_boxes(boxes: Tensor, image_sizes: list[tuple[int, int]], net_w: int, net_h: int, letterbox: bool,
                  image: Tensor | None = None, dialect: str = "pjreddie") -> Tensor:
    """Darknet's correct_region_boxes / correct_yolo_boxes (relative=1), per image.

    Boxes relative to the network input become relative to the image
    (width, height) of `image_sizes`: x = (x - (netw - new_w)/2./netw) /
    ((float)new_w/netw), w *= (float)netw/new_w, likewise y and h, with
    (new_w, new_h) the letterbox size.  With a plain resize (`letter_box=0`)
    the boxes are already relative to the image.  `boxes` is (B, N, 4), or
    (K, 4) with `image` (K,) the image of each box.  AlexeyAB's
    correct_yolo_boxes(.., letter) scales the sizes by `1 / ratiow` (float)
    rather than `(float)netw / new_w`: `dialect="alexeyab"`.
    """
    if not letterbox:
        return boxes
    geometry = [letterbox_geometry(iw, ih, net_w, net_h) for iw, ih in image_sizes]
    new = torch.tensor(geometry, dtype=torch.float32, device=boxes.device)
    new = new[:, None, :] if image is None else new[image]  # (B, 1, 2) or (K, 2)
    net = torch.tensor([net_w, net_h], dtype=torch.float32, device=boxes.device)
    ratio = new / net  # Darknet: (float)new_w / netw
    offset = (net.double() - new.double()) / 2.0 / net.double()  # Darknet: (netw - new_w)/2./netw, in double
    centre = ((boxes[..., :2].double() - offset) / ratio.double()).to(boxes.dtype)
    size = boxes[..., 2:] * (1 / ratio if dialect == "alexeyab" else net / new)
    return torch.cat([centre, size], dim=-1)


def do_nms_sort(boxes: Tensor, objectness: Tensor, probs: Tensor, nms: float) -> tuple[Tensor, Tensor]:
    """Darknet's do_nms_sort (src/box.c) on one image's detections.

    Returns (order, probs): the indices of the detections Darknet keeps, in
    the order its array ends up in, and their probabilities after NMS.
    Darknet first swaps objectness-0 detections to the end and drops them
    (`swap_positions`), then sorts and suppresses (`nms_sort`).
    """
    index = torch.nonzero(objectness != 0).flatten()
    index_np = index.cpu().numpy()
    order, after = nms_swapped(swap_positions(index_np), boxes.cpu().numpy()[index_np], probs.cpu().numpy()[index_np], nms)
    return index[torch.from_numpy(order).to(index.device)], torch.from_numpy(after).to(probs.device)


def swap_positions(index: np.ndarray) -> np.ndarray:
    """Where Darknet's do_nms_sort moves the detections with nonzero objectness, at ascending `index`.

    Darknet scans forward and swaps each objectness-0 detection with the last
    not yet swapped one: the detections before the cut (their count) keep
    their place, and the holes before it are filled by those beyond it, last
    first.
    """
    count = len(index)
    beyond = index >= count
    hole = np.ones(count, dtype=bool)
    hole[index[~beyond]] = False
    position = index.copy()
    position[beyond] = np.flatnonzero(hole)[::-1]
    return position


def nms_swapped(positions: np.ndarray, boxes: np.ndarray, probs: np.ndarray, nms: float,
                measure: Measure | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Darknet's do_nms_sort on detections at `positions` after its swap (`swap_positions`): (order, probs after NMS).

    `order` indexes the given arrays, in the order Darknet's array ends up in.
    `measure` is the overlap (`nms_measure`; default Darknet's box_iou).
    """
    swapped = np.argsort(positions)
    order, after = nms_sort(boxes[swapped], probs[swapped], nms, measure)
    return swapped[order], after


def nms_sort(boxes: np.ndarray, probs: np.ndarray, nms: float, measure: Measure | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Darknet's do_nms_sort after its swap, on boxes (n, 4) and probs (n, classes) >= 0: (order, probs after NMS).

    For each class, Darknet sorts by that class's prob (descending; glibc's
    qsort is a stable merge sort, each class's sort starting from the order
    the previous one left) and zeroes the prob of every later box whose IoU
    with a box still holding a nonzero prob is > nms.  Boxes whose probs are
    all 0 move along in the sorts and affect nothing else.  AlexeyAB's
    diounms_sort is the same loop with another overlap than IoU (`measure`,
    see `nms_measure`).
    """
    positive = probs > 0
    classes = np.flatnonzero(positive.any(axis=0))
    order, rank = _class_sorts(probs[:, classes])
    keep = _suppress(boxes, positive[:, classes], rank, nms, measure or _iou)
    probs = probs.copy()
    probs[:, classes] = np.where(keep, probs[:, classes], 0)
    return order, probs[order]


def _class_sorts(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Darknet's sorts by each class's prob (n, classes) in turn, each stable and starting from the last one's order.

    Returns the final order and each detection's rank in each class's sort (classes, n).
    """
    n = len(probs)
    order = np.arange(n)
    rank = np.empty((probs.shape[1], n), dtype=np.intp)
    for k, column in enumerate(-probs.T):
        order = order[np.argsort(column[order], kind="stable")]
        rank[k, order] = np.arange(n)
    return order, rank


# IoUs computed at once (pairs of boxes): their temporaries take some tens of MB.
_IOU_BLOCK = 1 << 18
# Suppression links (class, earlier box, later box) held at once, 16 bytes each; with more, NMS goes class by class.
_LINK_BUDGET = 1 << 22


def _suppress(boxes: np.ndarray, holds: np.ndarray, rank: np.ndarray, nms: float, measure: Measure = None) -> np.ndarray:
    """Which of the nonzero probs `holds` (n, classes) survive Darknet's suppression loops.

    For each class, box j keeps its prob unless a box earlier in that
    class's sort (`rank`) that keeps its prob has IoU > nms with it
    (src/box.c:do_nms_sort skips a box whose prob is already 0: `if
    (dets[i].prob[k] == 0) continue;`).  The boxes that hold no class take
    no part.  Memory stays linear in the
    boxes: the overlapping pairs are found a block at a time and kept only
    as links while they fit `_LINK_BUDGET` (overlaps are rare: boxes of
    different objects); past it (a pile of overlapping boxes, where each
    class keeps few) Darknet's loops run class by class.
    """
    active = np.flatnonzero(holds.any(axis=1))
    keep = np.zeros_like(holds)
    measure = measure or _iou
    links = _links(boxes[active], holds[active], rank[:, active], nms, measure)
    if links is None:
        keep[active] = _suppress_by_class(boxes[active], holds[active], rank[:, active], nms, measure)
    else:
        keep[active] = _settle(holds[active], *links)
    return keep


def _links(boxes: np.ndarray, holds: np.ndarray, rank: np.ndarray, nms: float,
           measure: Measure = None) -> tuple[np.ndarray, np.ndarray] | None:
    """The suppression links as (src, dst) flat indices into `holds` (n, classes); None if more than `_LINK_BUDGET`.

    A link joins two boxes with IoU > nms that both hold a class, from the
    one earlier in that class's sort to the other.
    """
    classes = holds.shape[1]
    step = max(1, _IOU_BLOCK // max(1, classes))  # pairs whose (pair, class) table is one block
    sources, targets, count = [np.empty(0, np.intp)], [np.empty(0, np.intp)], 0
    for first, second in _overlapping_pairs(boxes, nms, measure or _iou):
        for start in range(0, len(first), step):
            a, b = first[start : start + step], second[start : start + step]
            pair, cls = np.nonzero(holds[a] & holds[b])
            a, b = a[pair], b[pair]
            earlier = rank[cls, a] < rank[cls, b]
            sources.append(np.where(earlier, a, b) * classes + cls)
            targets.append(np.where(earlier, b, a) * classes + cls)
            count += len(cls)
            if count > _LINK_BUDGET:
                return None
    return np.concatenate(sources), np.concatenate(targets)


def _settle(holds: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The probs that survive, from the links: a prob is suppressed iff a link from a surviving prob reaches it.

    Links go forward in each class's sort, so the system has one solution.
    Each round decides the undecided probs that no live link reaches (they
    survive: the earliest undecided of each class is one), then those a link
    from a survivor reaches; the links from suppressed probs or into decided
    ones are dropped, so the rounds get cheaper as they go.
    """
    undecided = holds.ravel().copy()
    keep = np.zeros_like(undecided)
    while undecided.any():
        reached = np.zeros_like(undecided)
        reached[dst] = True
        fresh = undecided & ~reached
        keep |= fresh
        undecided &= ~fresh
        undecided[dst[fresh[src]]] = False  # suppressed by a fresh survivor
        live = undecided[src] & undecided[dst]
        src, dst = src[live], dst[live]
    return keep.reshape(holds.shape)


def _overlapping_pairs(boxes: np.ndarray, nms: float, measure: Measure = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The pairs of boxes whose Darknet box_iou (or `measure`) is > nms, each once, a block at a time: (first, second) index arrays.

    Each box is tried against the run of boxes after it in the sweep order
    (`_sweep`) that may overlap it: a tile of rows reads its runs as a
    sliding window over the swept boxes (no copies), padded with NaN boxes
    (IoU NaN: never > nms) past the end.  A `measure` is never above the
    IoU (AlexeyAB's DIoU variants subtract a term >= 0), so the sweep that
    finds the IoU candidates finds its pairs too.
    """
    measure = measure or _iou
    order, runs = _sweep(boxes, nms)
    longest = int(runs.max(initial=0))
    swept = np.concatenate([boxes[order], np.full((longest, 4), np.nan, dtype=boxes.dtype)])
    for start, stop, width in _tiles(runs):
        window = sliding_window_view(swept[start + 1 : stop + width], width, axis=0).transpose(0, 2, 1)
        row, k = np.nonzero(measure(swept[start:stop, None], window) > nms)  # window[i, k]: box start + i + 1 + k
        first = start + row
        yield order[first], order[first + 1 + k]


def _sweep(boxes: np.ndarray, nms: float) -> tuple[np.ndarray, np.ndarray]:
    """The boxes that may overlap (sorted by left edge), and for each the length of the run after it to try.

    With nms >= 0 an IoU > nms needs a positive horizontal overlap
    min(right) - max(left) (box_iou zeroes the intersection otherwise, or
    makes it NaN): sorted by left edge, box p can only overlap the boxes
    after it that start left of its right edge.  Boxes whose right edge is
    not past their left (NaN, empty) overlap nothing.  With nms < 0 (IoU 0
    > nms) every pair is tried.
    """
    n = len(boxes)
    if nms < 0:
        return np.arange(n), np.arange(n - 1, -1, -1)
    left = boxes[:, 0] - boxes[:, 2] / 2  # float32, as box_iou computes the edges
    right = boxes[:, 0] + boxes[:, 2] / 2
    valid = np.flatnonzero(right > left)
    order = valid[np.argsort(left[valid], kind="stable")]
    ends = np.searchsorted(left[order], right[order], side="left")
    return order, np.maximum(ends - np.arange(1, len(order) + 1), 0)


def _tiles(runs: np.ndarray) -> Iterator[tuple[int, int, int]]:
    """Consecutive rows [start, stop) and the longest run among them, `width`: rows x width <= _IOU_BLOCK (or one row)."""
    start = 0
    while start < len(runs):
        stop = min(len(runs), start + max(1, _IOU_BLOCK // max(1, int(runs[start]))))
        width = int(runs[start:stop].max())
        while (stop - start) * width > _IOU_BLOCK and stop - start > 1:
            stop = start + (stop - start) // 2
            width = int(runs[start:stop].max())
        if width:
            yield start, stop, width
        start = stop


def _suppress_by_class(boxes: np.ndarray, holds: np.ndarray, rank: np.ndarray, nms: float, measure: Measure = None) -> np.ndarray:
    """Darknet's suppression loops class by class, each over its boxes in sorted order: no links held."""
    keep = np.zeros_like(holds)
    for k in range(holds.shape[1]):
        members = np.flatnonzero(holds[:, k])
        keep[_greedy(boxes, members[np.argsort(rank[k, members])], nms, measure), k] = True
    return keep


def _greedy(boxes: np.ndarray, members: np.ndarray, nms: float, measure: Measure = None) -> np.ndarray:
    """The boxes of `members` (in one class's sorted order) that keep the prob: Darknet's loop, block by block.

    A box survives unless an earlier survivor has IoU > nms with it: each
    block is first checked against the survivors of the blocks before it,
    then resolved in order within itself.
    """
    size = max(1, math.isqrt(_IOU_BLOCK))
    kept = members[:0]
    for start in range(0, len(members), size):
        block = members[start : start + size]
        alive = ~_overlaps_any(boxes, block, kept, nms, measure)
        overlaps = _iou_table(boxes, block, block, measure) > nms
        for i in range(len(block)):
            if alive[i]:
                alive[i + 1 :] &= ~overlaps[i, i + 1 :]
        kept = np.concatenate([kept, block[alive]])
    return kept


def _overlaps_any(boxes: np.ndarray, rows: np.ndarray, others: np.ndarray, nms: float, measure: Measure = None) -> np.ndarray:
    """For each box of `rows`, whether its IoU with some box of `others` is > nms (a block of IoUs at a time)."""
    found = np.zeros(len(rows), dtype=bool)
    step = max(1, _IOU_BLOCK // max(1, len(rows)))
    for start in range(0, len(others), step):
        found |= (_iou_table(boxes, rows, others[start : start + step], measure) > nms).any(axis=1)
    return found


def _iou_table(boxes: np.ndarray, rows: np.ndarray, cols: np.ndarray, measure: Measure = None) -> np.ndarray:
    """Darknet's box_iou (or `measure`) between boxes[rows] and boxes[cols], (len(rows), len(cols))."""
    return (measure or _iou)(boxes[rows, None], boxes[None, cols])


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Darknet's box_iou of boxes `a` and `b` (..., 4), broadcast: pydarknet.layers.boxes.box_iou's float ops in numpy.

    The same bits (tests/hostile/test_memory.py checks inf, NaN, negative
    sizes).  NMS computes IoUs block after block: numpy runs each in this
    thread, where torch would hand every op to its thread pool and wait for
    it, slow when the other core is busy (the prefetching thread).
    """
    with np.errstate(all="ignore"):  # inf and NaN boxes: Darknet carries on with them
        w = _overlap(a[..., 0], a[..., 2], b[..., 0], b[..., 2])
        h = _overlap(a[..., 1], a[..., 3], b[..., 1], b[..., 3])
        inter = np.where((w < 0) | (h < 0), 0, w * h)
        return inter / (a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter)


def _overlap(c1: np.ndarray, s1: np.ndarray, c2: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """Darknet's overlap (src/box.c): right - left of two extents given by centre and size."""
    return np.minimum(c1 + s1 / 2, c2 + s2 / 2) - np.maximum(c1 - s1 / 2, c2 - s2 / 2)


def nms_measure(kind: str = "default", beta_nms: float = 0.6) -> Measure:
    """The overlap AlexeyAB's NMS suppresses by (src/box.c diounms_sort), None for box_iou.

    `default` is do_nms_sort (IoU); `cornersnms` (parsed by [Gaussian_yolo]
    only) suppresses on IoU too (its box merging is commented out in
    Darknet); `greedynms` on `box_diou` = IoU - (d2/c2)^0.6 with the exponent
    the double literal 0.6 whatever `beta_nms` says; `diounms` on
    `box_diounms` = IoU - (d2/c2)^beta_nms, beta_nms the layer's float.
    """
    if kind in ("default", "cornersnms"):
        return None
    if kind == "greedynms":
        return partial(_diou, beta=0.6)
    if kind == "diounms":
        return partial(_diou, beta=float(np.float32(beta_nms)))
    raise ValueError(f"unknown nms_kind '{kind}'")


def _diou(a: np.ndarray, b: np.ndarray, beta: float) -> np.ndarray:
    """AlexeyAB's box_diou / box_diounms (src/box.c) of boxes `a` and `b` (..., 4), broadcast.

    In float, as Darknet: c = w*w + h*h of the smallest box enclosing both
    (`box_c`, fmin/fmax: a NaN edge gives the other), d = (ax - bx)^2 +
    (ay - by)^2, u = (float)pow(d / c, beta) in double; IoU - u, or the IoU
    when c == 0.
    """
    iou = _iou(a, b)
    with np.errstate(all="ignore"):
        ax, ay, aw, ah = (a[..., i] for i in range(4))
        bx, by, bw, bh = (b[..., i] for i in range(4))
        top = np.fmin(ay - ah / 2, by - bh / 2)
        bot = np.fmax(ay + ah / 2, by + bh / 2)
        left = np.fmin(ax - aw / 2, bx - bw / 2)
        right = np.fmax(ax + aw / 2, bx + bw / 2)
        w, h = right - left, bot - top
        c = w * w + h * h
        d = (ax - bx) * (ax - bx) + (ay - by) * (ay - by)
        u = np.power((d / c).astype(np.float64), beta).astype(iou.dtype)
        return np.where(c == 0, iou, iou - u)
