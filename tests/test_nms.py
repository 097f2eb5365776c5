"""do_nms_sort against a line-by-line port of Darknet's src/box.c:do_nms_sort (random cases with ties)."""

from __future__ import annotations

import numpy as np
import torch

from pydarknet.boxes import do_nms_sort, pairwise_iou


def darknet_do_nms_sort(boxes: torch.Tensor, objectness: torch.Tensor, probs: torch.Tensor, thresh: float):
    """src/box.c:do_nms_sort with Python lists; qsort is glibc's stable merge sort, as Python's sort."""
    dets = list(range(len(objectness)))
    probs = probs.clone()
    iou = pairwise_iou(boxes, boxes).tolist()  # Darknet's box_iou of every pair, looked up in the loop
    k, i = len(dets) - 1, 0
    while i <= k:
        if objectness[dets[i]] == 0:
            dets[i], dets[k] = dets[k], dets[i]
            k -= 1
        else:
            i += 1
    total = k + 1
    dets = dets[:total]
    for c in range(probs.shape[1]):
        p = probs[:, c].tolist()
        dets.sort(key=lambda d: -p[d])  # Darknet: nms_comparator, descending
        for i in range(total):
            if p[dets[i]] == 0:
                continue
            for j in range(i + 1, total):
                if iou[dets[i]][dets[j]] > thresh:
                    p[dets[j]] = 0
        probs[:, c] = torch.tensor(p)
    return torch.tensor(dets, dtype=torch.long), probs[dets]


def test_nms_equals_darknets_loops():
    rng = np.random.default_rng(0)
    for _ in range(150):
        n, classes = int(rng.integers(0, 40)), int(rng.integers(1, 5))
        boxes = torch.from_numpy(np.concatenate([rng.random((n, 2)), rng.random((n, 2)) * 0.4 + 0.05], axis=1).astype(np.float32))
        objectness = torch.from_numpy((rng.random(n) < 0.7) * rng.random(n)).float()
        # quarter steps: many equal probs, so the sort's stability and each class's starting order matter
        probs = torch.from_numpy(np.where(rng.random((n, classes)) < 0.5, np.round(rng.random((n, classes)) * 4) / 4, 0)).float()
        probs *= (objectness != 0)[:, None]
        order, after = do_nms_sort(boxes, objectness, probs, 0.3)
        expected_order, expected = darknet_do_nms_sort(boxes, objectness, probs, 0.3)
        assert order.tolist() == expected_order.tolist()
        assert torch.equal(after, expected)
