"""Average precision as the PASCAL VOC devkit computes it, vectorised.

Matching (`match_detections`, the devkit's `voc_eval`): one class at a time,
detections sorted by score (highest first, stable), each one compared with
the ground truth of its image; it is a true positive when its best-overlap
ground-truth box has IoU > `iou` (strictly), is not "difficult" and was not
claimed by a higher-scored detection.  A detection whose best box is already
claimed is a false positive even when another box would fit (the devkit
does not fall back to the second best).  A detection whose best box is
difficult counts as neither.  IoU is continuous (no `+1` pixel), as
pycocotools computes it.

Interpolation (`average_precision`): `points=11` is VOC2007's 11-point
average over recall thresholds `np.arange(0, 1.1, .1)` (the devkit's exact
floats), `points=0` is VOC2010+'s area under the monotone precision
envelope at every recall change, `points=101` is COCO's 101-point average
(`np.linspace(0, 1, 101)`, as pycocotools' `COCOeval.accumulate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INTERPOLATIONS = (11, 101, 0)


@dataclass
class DetectionTable:
    """Detections of a data set, one row per (box, class): corners x1 y1 x2 y2 in pixels (AlexeyAB's map:
    Darknet's relative x y w h, pydarknet.eval.alexeyab)."""

    image: np.ndarray  # (N,) int image index
    label: np.ndarray  # (N,) int class
    score: np.ndarray  # (N,) float
    box: np.ndarray  # (N, 4) float x1 y1 x2 y2


@dataclass
class TruthTable:
    """Ground-truth boxes of a data set, corners x1 y1 x2 y2 in pixels (AlexeyAB's map: relative x y w h);
    `difficult` is optional."""

    image: np.ndarray  # (M,) int image index
    label: np.ndarray  # (M,) int class
    box: np.ndarray  # (M, 4) float x1 y1 x2 y2
    difficult: np.ndarray | None = None  # (M,) bool


@dataclass
class ClassMatch:
    """One class's detections in score order with their verdicts."""

    score: np.ndarray  # sorted, highest first
    tp: np.ndarray  # bool
    fp: np.ndarray  # bool (a detection on a difficult box is neither)
    iou: np.ndarray  # IoU with its best ground-truth box (0 when the image has none)
    positives: int  # ground-truth boxes that are not difficult


def pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of a[i] with b[i] (corner boxes, continuous coordinates)."""
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _best_truth(det_image: np.ndarray, det_box: np.ndarray, gt_image: np.ndarray, gt_box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each detection, the index of its best-IoU ground-truth box in its image (-1: none) and that IoU.

    Every (detection, box of the same image) pair is built at once; ties go to
    the first box in file order, like the devkit's `np.argmax`.
    """
    order = np.argsort(gt_image, kind="stable")
    start = np.searchsorted(gt_image[order], det_image, side="left")
    count = np.searchsorted(gt_image[order], det_image, side="right") - start
    det_of_pair = np.repeat(np.arange(len(det_image)), count)
    offset = np.arange(len(det_of_pair)) - np.repeat(np.cumsum(count) - count, count)
    gt_of_pair = order[np.repeat(start, count) + offset]
    iou = pair_iou(det_box[det_of_pair], gt_box[gt_of_pair])
    best = np.lexsort((gt_of_pair, -iou, det_of_pair))
    first = best[np.r_[True, det_of_pair[best][1:] != det_of_pair[best][:-1]]] if len(best) else best
    index = np.full(len(det_image), -1)
    overlap = np.zeros(len(det_image))
    index[det_of_pair[first]] = gt_of_pair[first]
    overlap[det_of_pair[first]] = iou[first]
    return index, overlap


def match_detections(dets: DetectionTable, truth: TruthTable, label: int, iou: float = 0.5) -> ClassMatch:
    """The VOC devkit's greedy matching of one class's detections (see the module docstring)."""
    d = np.flatnonzero(dets.label == label)
    g = np.flatnonzero(truth.label == label)
    d = d[np.argsort(-dets.score[d], kind="stable")]
    difficult = np.zeros(len(g), bool) if truth.difficult is None else truth.difficult[g].astype(bool)
    best, overlap = _best_truth(dets.image[d], dets.box[d], truth.image[g], truth.box[g])
    hit = overlap > iou
    on_difficult = hit & np.append(difficult, False)[best]  # best -1: no box in the image
    candidate = np.flatnonzero(hit & ~on_difficult)
    _, first = np.unique(best[candidate], return_index=True)
    tp = np.zeros(len(d), bool)
    tp[candidate[first]] = True
    return ClassMatch(dets.score[d], tp, ~tp & ~on_difficult, overlap, int((~difficult).sum()))


def precision_recall(match: ClassMatch) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative precision and recall down the score-sorted detections (the devkit's formulas)."""
    tp = np.cumsum(match.tp, dtype=np.float64)
    fp = np.cumsum(match.fp, dtype=np.float64)
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    recall = tp / match.positives if match.positives else np.zeros_like(tp)
    return precision, recall


def average_precision(precision: np.ndarray, recall: np.ndarray, points: int = 11) -> float:
    """AP from a precision/recall curve: 11-point (VOC2007), 0 = all-point (VOC2010+), 101-point (COCO)."""
    if points == 0:
        mrec = np.concatenate(([0.0], recall, [1.0]))
        mpre = np.maximum.accumulate(np.concatenate(([0.0], precision, [0.0]))[::-1])[::-1]
        i = np.flatnonzero(mrec[1:] != mrec[:-1])
        return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
    if points == 11:
        thresholds = np.arange(0.0, 1.1, 0.1)  # the devkit's floats: 0.30000000000000004 > 3/10
    elif points == 101:
        thresholds = np.linspace(0.0, 1.0, 101)
    else:
        raise ValueError(f"points must be one of {INTERPOLATIONS}, not {points}")
    if not len(precision):
        return 0.0
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    at = np.searchsorted(recall, thresholds, side="left")
    interpolated = np.zeros(len(thresholds))
    reached = at < len(envelope)
    interpolated[reached] = envelope[at[reached]]
    return float(np.mean(interpolated))


@dataclass
class Evaluation:
    """Per-class AP and counts, plus the totals at a score threshold (the VOC devkit's: score >= thresh)."""

    method = "VOC devkit"
    compare = ">="  # a score against thresh

    ap: dict[int, np.ndarray]  # points -> (C,) AP per class, NaN for a class with no ground truth
    positives: np.ndarray  # (C,) non-difficult ground-truth boxes
    detections: np.ndarray  # (C,) detections
    tp: np.ndarray  # (C,) true positives with score >= thresh
    fp: np.ndarray  # (C,) false positives with score >= thresh
    iou_sum: float  # summed IoU of those true positives
    curves: list[tuple[np.ndarray, np.ndarray]]  # per class (precision, recall)
    iou: float
    thresh: float

    def mean_ap(self, points: int) -> float:
        """mAP over the classes that have ground truth (like COCO's -1 classes, the others do not count)."""
        ap = self.ap[points]
        return float(np.mean(ap[self.positives > 0])) if (self.positives > 0).any() else 0.0

    @property
    def precision(self) -> float:
        n = int(self.tp.sum() + self.fp.sum())
        return float(self.tp.sum() / n) if n else 0.0

    @property
    def recall(self) -> float:
        n = int(self.positives.sum())
        return float(self.tp.sum() / n) if n else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def average_iou(self) -> float:
        """Mean IoU of the true positives at `thresh` with their ground-truth boxes."""
        n = int(self.tp.sum())
        return self.iou_sum / n if n else 0.0


def evaluate(dets: DetectionTable, truth: TruthTable, classes: int, iou: float = 0.5, thresh: float = 0.25) -> Evaluation:
    """VOC AP of every class (11-point, all-point and 101-point) and the TP/FP counts at `thresh`."""
    ap = {points: np.full(classes, np.nan) for points in INTERPOLATIONS}
    positives = np.zeros(classes, int)
    counts = np.zeros(classes, int)
    tp = np.zeros(classes, int)
    fp = np.zeros(classes, int)
    iou_sum = 0.0
    curves = []
    for c in range(classes):
        match = match_detections(dets, truth, c, iou)
        precision, recall = precision_recall(match)
        curves.append((precision, recall))
        positives[c], counts[c] = match.positives, len(match.score)
        above = match.score >= thresh
        tp[c], fp[c] = int((match.tp & above).sum()), int((match.fp & above).sum())
        iou_sum += float(match.iou[match.tp & above].sum())
        if match.positives:
            for points in INTERPOLATIONS:
                ap[points][c] = average_precision(precision, recall, points)
    return Evaluation(ap, positives, counts, tp, fp, iou_sum, curves, iou, thresh)
