"""Darknet's non-maximum suppression (src/box.c do_nms_sort, do_nms_obj), and AlexeyAB's DIoU variants.

NMS runs on the CPU, in numpy, over the detections with nonzero objectness
(`pydarknet.infer.decode.Candidates`), in memory linear in their number
(`_suppress`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from functools import partial

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch import Tensor

# An overlap of two arrays of boxes (..., 4), broadcast: Darknet's box_iou (`_iou`) or AlexeyAB's DIoU variants.
Measure = Callable[[np.ndarray, np.ndarray], np.ndarray] | None


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


def nms_obj(boxes: np.ndarray, objectness: np.ndarray, nms: float) -> tuple[np.ndarray, np.ndarray]:
    """Darknet's do_nms_obj (src/box.c) on one image's detection array: (order, suppressed).

    As do_nms_sort, it first swaps the objectness-0 detections to the end
    (`swap_positions`); it sorts the others by objectness, descending (qsort
    with nms_comparator_v3 and sort_class -1: glibc's stable merge sort),
    then each one not suppressed yet suppresses every later one whose
    box_iou with it is > nms (Darknet zeroes their objectness and probs).
    `order` indexes the detections with nonzero objectness, in the order
    Darknet's array ends up in; `suppressed` says which of them were.
    """
    index = np.flatnonzero(objectness != 0)
    swapped = index[np.argsort(swap_positions(index))]
    order = swapped[np.argsort(-objectness[swapped], kind="stable")]
    return order, ~np.isin(order, _greedy(boxes, order, nms))


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
