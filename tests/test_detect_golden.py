"""Detections against the C Darknet's `detector test` (tests/golden/forward/*/detections.txt)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import GOLDEN, MANIFEST
from helpers import assert_same_lines, golden_lines, our_lines
from pydarknet.infer.decode import correct_region_boxes
from pydarknet.layers.boxes import pairwise_iou
from pydarknet.infer.detect import Detection, detect_batch, detect_image
from pydarknet.infer.inputs import network_input
from pydarknet.image import load_image

CASES = [c for c in MANIFEST["forward"] if (GOLDEN / "forward" / c["name"] / "detections.txt").exists()]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_detections_match_darknet(case, golden_net):
    net = golden_net(case["cfg"], case["width"], case["height"])
    image = load_image(GOLDEN / "images" / case["image"])
    theirs, size = golden_lines(case)
    assert size == (image.shape[2], image.shape[1])
    dets = detect_image(net, image, case["thresh"], case["hier_thresh"], case["nms"])
    ours = our_lines(dets)
    assert len(theirs) == case["detections"]
    assert_same_lines(ours, theirs, case["thresh"])
    assert [line[0] for line in ours] == [line[0] for line in theirs], "Darknet prints in another order"


def test_batch_equals_one_by_one(golden_net):
    """detect_batch letterboxes images of different sizes into one forward; same result as one at a time."""
    net = golden_net("yolov2-slim.cfg", 224, 160)
    images = [load_image(GOLDEN / "images" / name) for name in ("eagle.png", "dog.png", "person.png")]
    together = detect_batch(net, images, thresh=0.05)
    for image, dets in zip(images, together):
        alone = detect_batch(net, [image], thresh=0.05)[0]
        assert len(dets) == len(alone) > 0
        np.testing.assert_allclose(np.array(our_lines(dets)), np.array(our_lines(alone)), atol=1e-5)
    assert detect_batch(net, []) == []


def test_detection_accessors():
    det = Detection((0.5, 0.25, 0.5, 1.0), 0.9, np.array([0.0, 0.6, 0.7], dtype=np.float32))
    assert det.best_class == 2 and det.best_prob == pytest.approx(0.7)
    assert det.labels == [(1, pytest.approx(0.6)), (2, pytest.approx(0.7))]
    assert det.corners(200, 100) == (50.0, -25.0, 150.0, 75.0)
    assert det.pixel_box(200, 100) == (50, 0, 150, 75)


def test_pairwise_iou_is_darknets():
    a = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    b = torch.tensor([[0.6, 0.5, 0.2, 0.2], [0.9, 0.9, 0.1, 0.1], [0.5, 0.5, 0.2, 0.2]])
    assert pairwise_iou(a, b)[0].tolist() == pytest.approx([0.02 / 0.06, 0.0, 1.0])


@pytest.mark.parametrize("letter_box, golden", [(1, "eagle_letterbox_224x160.npy"), (0, "eagle_resize_224x160.npy")])
def test_network_input_follows_letter_box(golden_net, letter_box, golden):
    """Darknet's letterbox_image by default; the cfg's letter_box=0 gives a plain resize_image, boxes left as they are."""
    net = golden_net("yolov2-slim.cfg", 224, 160)
    image = load_image(GOLDEN / "images" / "eagle.png")
    saved = net.options.letter_box
    try:
        net.options.letter_box = letter_box
        np.testing.assert_array_equal(network_input(net, image), np.load(GOLDEN / "letterbox" / golden))
        boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.4]]])
        corrected = correct_region_boxes(boxes, [(image.shape[2], image.shape[1])], 224, 160, bool(letter_box))
        assert torch.equal(corrected, boxes) != bool(letter_box)
    finally:
        net.options.letter_box = saved
