"""AlexeyAB's `detector map` (src/detector.c validate_detector_map): its matching and its AP.

It differs from the VOC devkit (pydarknet.eval.ap) in what it compares and
what it averages:

- boxes are Darknet's own, relative (x, y, w, h) and unclamped (a box
  reaching past the image keeps its size), against the label boxes, by
  src/box.c box_iou in float;
- each detection (every class of every box with a nonzero prob, box by box
  in Darknet's order, classes ascending) is matched, image by image, to the
  label box of its class with the highest IoU above `iou` (the first of
  equals); ranked by prob over the whole set (a stable sort, as glibc's
  qsort), a detection is a true positive when its box is not yet claimed;
- at the score threshold (`prob > thresh`), a detection counts as a true
  positive when no detection before it in its image (in Darknet's order,
  whatever its prob) matched the same box; the average IoU is over the true
  and false positives;
- AP at `points` recall points takes `point * (1.0 / (points - 1))` as
  recall levels (`points=0`: the area under the precision envelope at every
  recall change), and the mAP averages over every class, a class without
  labels counting 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pydarknet.layers.boxes import pairwise_iou
from pydarknet.eval.ap import INTERPOLATIONS, DetectionTable, Evaluation, TruthTable


@dataclass
class AlexeyABEvaluation(Evaluation):
    """AlexeyAB's figures: AP 0 for a class without labels, in the mean; average IoU over TP + FP; score > thresh."""

    method = "AlexeyAB's detector map"
    compare = ">"

    def mean_ap(self, points: int) -> float:
        return float(np.cumsum(self.ap[points])[-1] / len(self.ap[points])) if len(self.ap[points]) else 0.0

    @property
    def average_iou(self) -> float:
        n = int(self.tp.sum() + self.fp.sum())
        return self.iou_sum / n if n else 0.0


def match_boxes(dets: DetectionTable, truth: TruthTable, iou: float) -> tuple[np.ndarray, np.ndarray]:
    """For every detection, the row of `truth` it matches (-1: none) and that IoU (float32).

    Both tables hold relative (x, y, w, h) boxes, their rows grouped by image in order.
    """
    index = np.full(len(dets.image), -1)
    overlap = np.zeros(len(dets.image), dtype=np.float32)
    images = np.unique(truth.image)
    det_start, det_end = np.searchsorted(dets.image, images), np.searchsorted(dets.image, images, side="right")
    gt_start, gt_end = np.searchsorted(truth.image, images), np.searchsorted(truth.image, images, side="right")
    for d0, d1, g0, g1 in zip(det_start, det_end, gt_start, gt_end):
        if d0 == d1:
            continue
        ious = pairwise_iou(torch.from_numpy(dets.box[d0:d1]), torch.from_numpy(truth.box[g0:g1])).numpy()
        fits = (ious > np.float32(iou)) & (dets.label[d0:d1, None] == truth.label[None, g0:g1])
        best = np.where(fits, ious, 0).argmax(axis=1)  # the first of equal IoUs, as `current_iou > max_iou`
        hit = fits.any(axis=1)
        index[d0:d1] = np.where(hit, g0 + best, -1)
        overlap[d0:d1] = np.where(hit, ious[np.arange(d1 - d0), best], 0)
    return index, overlap


def _first_claims(index: np.ndarray) -> np.ndarray:
    """Which entries are the first (in the given order) to match their truth box."""
    first = np.zeros(len(index), dtype=bool)
    matched = np.flatnonzero(index >= 0)
    _, at = np.unique(index[matched], return_index=True)
    first[matched[at]] = True
    return first


def alexeyab_average_precision(precision: np.ndarray, recall: np.ndarray, points: int) -> float:
    """validate_detector_map's AP of one class from its precision/recall at its own ranks, in its summation order."""
    if not len(precision):
        return 0.0
    envelope = np.maximum.accumulate(precision[::-1])[::-1]  # the best precision from each rank on
    if points == 0:  # from the last rank down, each recall step times the best precision from there on
        terms = np.concatenate([(recall[1:] - recall[:-1])[::-1] * envelope[:-1][::-1], recall[:1] * envelope[:1]])
        return float(np.cumsum(terms)[-1])
    # `point * 1.0 / (map_points-1)` as AlexeyAB's builds compute it: their -Ofast (Makefile OPTS, CMakeLists.txt's
    # release flags) multiplies by the reciprocal hoisted out of the loop, so level 6 of 11 is 0.6000000000000001
    levels = np.arange(points) * (1.0 / (points - 1))
    at = np.searchsorted(recall, levels, side="left")  # the first rank reaching each level
    best = np.where(at < len(envelope), envelope[np.minimum(at, len(envelope) - 1)], 0.0)
    return float(np.cumsum(best)[-1] / points)


def alexeyab_evaluate(dets: DetectionTable, truth: TruthTable, classes: int, iou: float = 0.5,
                      thresh: float = 0.25) -> AlexeyABEvaluation:
    """AP of every class (AlexeyAB's 11-point, 101-point and area rules) and the TP/FP at `thresh`, as
    validate_detector_map computes them (module docstring).  `dets` and `truth` hold relative (x, y, w, h)
    boxes; `dets` lists each image's detections in Darknet's order."""
    index, overlap = match_boxes(dets, truth, iou)
    above = dets.score.astype(np.float32) > np.float32(thresh)
    tp_at = above & _first_claims(index)
    fp_at = above & ~tp_at
    iou_sum = float(np.cumsum(overlap[tp_at], dtype=np.float32)[-1]) if tp_at.any() else 0.0
    rank = np.argsort(-dets.score.astype(np.float32), kind="stable")
    hit = _first_claims(index[rank])
    label = dets.label[rank]
    positives = np.bincount(truth.label, minlength=classes)[:classes]
    ap = {points: np.zeros(classes) for points in INTERPOLATIONS}
    curves = []
    for c in range(classes):
        mine = hit[label == c]
        tp = np.cumsum(mine, dtype=np.float64)
        fp = np.cumsum(~mine, dtype=np.float64)
        precision = tp / (tp + fp)
        recall = tp / positives[c] if positives[c] else np.zeros_like(tp)
        curves.append((precision, recall))
        for points in INTERPOLATIONS:
            ap[points][c] = alexeyab_average_precision(precision, recall, points)
    return AlexeyABEvaluation(ap, positives, np.bincount(dets.label, minlength=classes)[:classes],
                              np.bincount(dets.label[tp_at], minlength=classes)[:classes],
                              np.bincount(dets.label[fp_at], minlength=classes)[:classes], iou_sum, curves, iou, thresh)
