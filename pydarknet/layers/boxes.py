"""Darknet's box overlap (src/box.c: overlap, box_intersection, box_iou).

Boxes are (..., 4) tensors of centre x, centre y, width, height; shapes
broadcast.  Darknet's IoU is intersection / (area_a + area_b - intersection)
with a zero intersection when either overlap is negative.
"""

from __future__ import annotations

from torch import Tensor


def _overlap(c1: Tensor, s1: Tensor, c2: Tensor, s2: Tensor) -> Tensor:
    left = (c1 - s1 / 2).maximum(c2 - s2 / 2)
    right = (c1 + s1 / 2).minimum(c2 + s2 / 2)
    return right - left


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Darknet's box_iou of boxes `a` and `b` (x, y, w, h), broadcast over leading dims."""
    w = _overlap(a[..., 0], a[..., 2], b[..., 0], b[..., 2])
    h = _overlap(a[..., 1], a[..., 3], b[..., 1], b[..., 3])
    inter = (w * h).masked_fill((w < 0) | (h < 0), 0.0)
    return inter / (a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter)


def pairwise_iou(a: Tensor, b: Tensor) -> Tensor:
    """Darknet's box_iou between every box of `a` (N, 4) and of `b` (M, 4): (N, M)."""
    return box_iou(a[:, None, :], b[None, :, :])
