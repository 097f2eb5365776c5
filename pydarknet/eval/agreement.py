"""How far a reduced-precision run keeps the answers of a float32 run: the same objects, found again.

An object of the reference run (a `Detection` and its best class) is found
again when the other run has a detection of the same best class whose box
overlaps it with IoU >= `iou` (default .8, the bar docs/precision.md
uses); each detection of the other run is used at most once, the
reference objects taken in order of decreasing probability, each matched
to its best-overlapping unused box.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pydarknet.infer.detect import Detection


def _corners(dets: Sequence[Detection]) -> np.ndarray:
    boxes = np.array([d.box for d in dets], dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], axis=1)


def _area(corners: np.ndarray) -> np.ndarray:
    return (corners[:, 2] - corners[:, 0]) * (corners[:, 3] - corners[:, 1])


def found_again(reference: Sequence[Detection], other: Sequence[Detection], iou: float = 0.8) -> int:
    """How many objects of `reference` (one image's detections) `other` finds again (see the module)."""
    if not reference or not other:
        return 0
    a, b = _corners(reference), _corners(other)
    inter = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None).prod(axis=2)
    overlap = inter / (_area(a)[:, None] + _area(b)[None, :] - inter)
    same = np.array([[r.best_class == o.best_class for o in other] for r in reference])
    overlap = np.where(same & (overlap >= iou), overlap, -1.0)
    used = np.zeros(len(other), dtype=bool)
    found = 0
    for r in sorted(range(len(reference)), key=lambda k: -reference[k].best_prob):
        candidates = np.where(used, -1.0, overlap[r])
        best = int(np.argmax(candidates))
        if candidates[best] >= 0:
            used[best] = True
            found += 1
    return found
