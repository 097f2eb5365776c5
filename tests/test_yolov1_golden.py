"""YOLOv1's [detection] head against pjreddie's `yolo test` (tests/golden/forward/yolov1-tiny_dog_448).

examples/yolo.c test_yolo: `resize_image` (no letterbox), predict,
get_network_boxes(net, 1, 1, thresh, 0, 0, 0) (detection_layer.c
get_detection_detections), do_nms_sort .4.  The case's manifest entry and
its random-weights entry are in the case folder (`case.json`).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from conftest import GOLDEN, cfg_path, golden_close
from golden_weights import build_random_weights
from helpers import assert_same_lines, our_lines
from pydarknet import Darknet
from pydarknet.infer.detect import default_nms, detect_batch
from pydarknet.infer.inputs import network_input, uses_letterbox
from pydarknet.image import load_image
from pydarknet.infer.engine import InferenceModel

FOLDER = GOLDEN / "forward" / "yolov1-tiny_dog_448"
SPEC = json.loads((FOLDER / "case.json").read_text())
CASE = SPEC["case"]


@pytest.fixture(scope="module")
def net(request: pytest.FixtureRequest) -> Darknet:
    cache = request.config.cache.mkdir("golden_random_weights")
    entry = SPEC["random_weights"]
    weights = build_random_weights(cfg_path(CASE["cfg"]), entry["seed"], cache / f"{CASE['cfg']}.s{entry['seed']}.weights",
                                   entry["sha256"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        network = Darknet(cfg_path(CASE["cfg"]), CASE["width"], CASE["height"])
    network.load_weights(weights)
    return network.eval()


def test_layers_match_darknet(net):
    x = torch.from_numpy(np.load(FOLDER / "input.npy"))[None]
    with torch.inference_mode():
        outputs = net.forward_layers(x)
    files = sorted(FOLDER.glob("layer_*.npy"))
    assert files
    for f in files:
        index = int(f.stem.split("_")[1])
        ok, how = golden_close(outputs[index][0].numpy().reshape(-1), np.load(f).reshape(-1))
        assert ok, f"layer {index} ({net.layers[index].kind}): {how}"


@pytest.mark.parametrize("fast", [False, True], ids=["eager", "inference_model"])
def test_detections_match_yolo_test(net, fast):
    image = load_image(GOLDEN / "images" / CASE["image"])
    assert not uses_letterbox(net) and default_nms(net) == CASE["nms"] == 0.4
    np.testing.assert_array_equal(network_input(net, image), np.load(FOLDER / "input.npy"))
    text = (FOLDER / "detections.txt").read_text().splitlines()
    theirs = [(int(f[0]), *map(float, f[1:])) for f in (line.split() for line in text[1:])]
    assert len(theirs) == CASE["detections"]
    model = InferenceModel(net) if fast else None
    dets = detect_batch(net, [image], CASE["thresh"], 0.5, CASE["nms"], model=model)[0]
    ours = our_lines(dets)
    assert_same_lines(ours, theirs, CASE["thresh"])
    assert [line[0] for line in ours] == [line[0] for line in theirs], "Darknet prints in another order"
