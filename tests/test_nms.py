"""do_nms_sort against a line-by-line port of Darknet's src/box.c:do_nms_sort (random cases with ties)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import darknet_do_nms_sort
from pydarknet.infer.nms import do_nms_sort


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


def test_an_overlap_exactly_at_nms_is_kept():
    """box.c: `if (box_iou(a, b) > thresh) b.prob = 0`: strictly above; IoU exactly .5 at nms .5 keeps both."""
    boxes = torch.tensor([[0.5, 0.5, 1.0, 1.0], [0.5, 1.0, 1.0, 2.0]])  # IoU 1 / (1 + 2 - 1) = .5 exactly
    objectness = torch.ones(2)
    probs = torch.tensor([[0.9], [0.8]])
    order, after = do_nms_sort(boxes, objectness, probs, 0.5)
    expected_order, expected = darknet_do_nms_sort(boxes, objectness, probs, 0.5)
    assert order.tolist() == expected_order.tolist() and torch.equal(after, expected)
    assert after.flatten().tolist() == [pytest.approx(0.9), pytest.approx(0.8)]
