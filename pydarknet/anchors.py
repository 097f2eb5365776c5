"""Dimension clusters (YOLO9000 paper, section 2 "Dimension Clusters"): k-means on box sizes.

Boxes are (w, h) pairs compared as if they shared a centre, with the paper's
distance `d(box, centroid) = 1 - IoU(box, centroid)`.  Seeding is
k-means++ (each next centroid drawn with probability proportional to d^2),
the update is the mean (w, h) of each cluster, and the loop stops when no
box changes cluster.  `metric="euclidean"` is plain k-means on (w, h), the
baseline the paper argues against.  Everything is numpy over the (N, k)
distance matrix: 100k boxes take well under a second per restart.
"""

from __future__ import annotations

import numpy as np

METRICS = ("iou", "euclidean")


def wh_iou(boxes: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(N, K) IoU of (w, h) boxes with (w, h) centroids, all centred at the same point."""
    inter = np.minimum(boxes[:, None, 0], centroids[None, :, 0]) * np.minimum(boxes[:, None, 1], centroids[None, :, 1])
    union = (boxes[:, 0] * boxes[:, 1])[:, None] + (centroids[:, 0] * centroids[:, 1])[None, :] - inter
    return inter / union


def _distance(boxes: np.ndarray, centroids: np.ndarray, metric: str) -> np.ndarray:
    if metric == "iou":
        return 1.0 - wh_iou(boxes, centroids)
    return np.linalg.norm(boxes[:, None, :] - centroids[None, :, :], axis=2)


def average_iou(boxes: np.ndarray, anchors: np.ndarray) -> float:
    """Mean over boxes of the IoU with their best anchor (the paper's Table 1 figure)."""
    return float(wh_iou(np.asarray(boxes, np.float64), np.asarray(anchors, np.float64)).max(axis=1).mean())


def _seed(boxes: np.ndarray, k: int, metric: str, rng: np.random.Generator) -> np.ndarray:
    """k-means++: the first centroid uniformly, each next one with probability ~ d^2 to the nearest chosen."""
    centroids = [boxes[rng.integers(len(boxes))]]
    nearest = _distance(boxes, centroids[0][None], metric)[:, 0]
    for _ in range(1, k):
        weight = nearest ** 2
        total = weight.sum()
        pick = rng.choice(len(boxes), p=weight / total) if total > 0 else rng.integers(len(boxes))
        centroids.append(boxes[pick])
        nearest = np.minimum(nearest, _distance(boxes, boxes[pick][None], metric)[:, 0])
    return np.array(centroids)


def kmeans_anchors(boxes: np.ndarray, k: int, seed: int = 0, metric: str = "iou", max_iter: int = 1000) -> np.ndarray:
    """k cluster centres (w, h) of `boxes` (N, 2), sorted by area (smallest first)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 2)
    if len(boxes) < k:
        raise ValueError(f"{len(boxes)} boxes cannot make {k} clusters")
    rng = np.random.default_rng(seed)
    centroids = _seed(boxes, k, metric, rng)
    assignment = np.full(len(boxes), -1)
    for _ in range(max_iter):
        distance = _distance(boxes, centroids, metric)
        new = distance.argmin(axis=1)
        if np.array_equal(new, assignment):
            break
        assignment = new
        counts = np.bincount(assignment, minlength=k)
        sums = np.stack([np.bincount(assignment, boxes[:, i], minlength=k) for i in range(2)], axis=1)
        empty = counts == 0
        centroids = np.where(empty[:, None], centroids, sums / np.maximum(counts, 1)[:, None])
        if empty.any():  # an empty cluster restarts at the boxes farthest from their centre
            far = np.argsort(-distance[np.arange(len(boxes)), assignment])[: int(empty.sum())]
            centroids[empty] = boxes[far]
    return centroids[np.argsort(centroids[:, 0] * centroids[:, 1], kind="stable")]
