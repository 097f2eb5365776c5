"""Parity with AlexeyAB's Darknet (tests/golden-alexeyab: yolov4-tiny, yolov7-tiny, yolov4).

Layers on the stored `input.npy`, and detections from the image through
AlexeyAB's preprocessing (`resize_image`, no letterbox), its batch norm
(`sqrt(var + .00001)`, folded by `fuse_conv_batchnorm`), its `[yolo]`
options (`scale_x_y`, `new_coords`) and its NMS (`greedynms`, `diounms`),
for the eager network and the InferenceModel.  With `dialect="pjreddie"`
the same cfgs do not reproduce them: the dialect is what makes the numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import GOLDEN, MANIFEST_AB
from helpers import alexeyab_case_dir, alexeyab_golden_lines, assert_same_lines, finite_close, layer_outputs, our_lines
from pydarknet.infer.detect import detect_batch, detect_image, nms_kind
from pydarknet.infer.inputs import network_input, uses_letterbox
from pydarknet.image import load_image
from pydarknet.infer.engine import InferenceModel

CASES = MANIFEST_AB["forward"]
DETECT_CASES = [c for c in CASES if c["detections"] is not None]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_layers_match_alexeyab(case, ab_golden_net):
    net = ab_golden_net(case["cfg"], case["width"], case["height"])
    assert net.dialect == "alexeyab", net.dialect_reason
    outputs = layer_outputs(net, case)
    files = sorted(alexeyab_case_dir(case).glob("layer_*.npy"))
    assert {int(f.stem.split("_")[1]) for f in files} >= set(case["layers"])
    for f in files:
        index = int(f.stem.split("_")[1])
        theirs = np.load(f)
        assert int(np.isnan(theirs).sum()) == case.get("nan_in_darknet_output", {}).get(str(index), 0)
        ok, how = finite_close(outputs[index], theirs)
        assert ok, f"{case['name']} layer {index} ({net.layers[index].kind}): {how}"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_inference_model_heads_match_alexeyab(case, ab_golden_net):
    """The folded (fuse_conv_batchnorm), channels_last, Winograd model: the [yolo] outputs at the same tolerance."""
    net = ab_golden_net(case["cfg"], case["width"], case["height"])
    outputs = layer_outputs(net, case, InferenceModel(net))
    for index, out in outputs.items():
        theirs = np.load(alexeyab_case_dir(case) / f"layer_{index:03d}.npy")
        ok, how = finite_close(out, theirs)
        assert ok, f"{case['name']} head {index}: {how}"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_layer_shapes_match_alexeyab(case, ab_golden_net):
    net = ab_golden_net(case["cfg"], case["width"], case["height"])
    for line in (alexeyab_case_dir(case) / "layers.txt").read_text().splitlines():
        index, kind, c, h, w = line.split()
        layer = net.layers[int(index)]
        assert layer.kind == kind
        assert layer.out_shape == (int(c), int(h), int(w)), f"layer {index}"


@pytest.mark.parametrize("case", DETECT_CASES, ids=[c["name"] for c in DETECT_CASES])
@pytest.mark.parametrize("fast", [False, True], ids=["eager", "inference_model"])
def test_detections_match_alexeyab(case, fast, ab_golden_net):
    net = ab_golden_net(case["cfg"], case["width"], case["height"])
    image = load_image(GOLDEN / "images" / case["image"])
    theirs, size = alexeyab_golden_lines(case)
    assert size == (image.shape[2], image.shape[1]) and len(theirs) == case["detections"]
    assert not uses_letterbox(net) and nms_kind(net) == (case["nms_kind"], pytest.approx(case["beta_nms"]))
    np.testing.assert_array_equal(network_input(net, image), np.load(alexeyab_case_dir(case) / "input.npy"))
    model = InferenceModel(net) if fast else None
    dets = detect_batch(net, [image], case["thresh"], case["hier_thresh"], case["nms"], model=model)[0]
    ours = our_lines(dets)
    assert_same_lines(ours, theirs, case["thresh"])
    assert [line[0] for line in ours] == [line[0] for line in theirs], "Darknet prints in another order"


@pytest.mark.parametrize("case", DETECT_CASES, ids=[c["name"] for c in DETECT_CASES])
def test_pjreddie_dialect_does_not_reproduce_alexeyab(case, ab_golden_net):
    """The same cfg and weights read as pjreddie's Darknet would: other inputs, other layers, other detections."""
    net = ab_golden_net(case["cfg"], case["width"], case["height"], "pjreddie")
    assert net.dialect == "pjreddie" and uses_letterbox(net) and nms_kind(net) == ("default", 0.6)
    image = load_image(GOLDEN / "images" / case["image"])
    assert not np.array_equal(network_input(net, image), np.load(alexeyab_case_dir(case) / "input.npy"))
    theirs, _ = alexeyab_golden_lines(case)
    ours = our_lines(detect_image(net, image, case["thresh"], case["hier_thresh"], case["nms"]))
    with pytest.raises(AssertionError):
        assert_same_lines(ours, theirs, case["thresh"])


@pytest.mark.parametrize("case", DETECT_CASES[:1], ids=[c["name"] for c in DETECT_CASES[:1]])
def test_batch_norm_follows_the_dialect(case, ab_golden_net):
    """pjreddie's sqrt(var) + 1e-6 against AlexeyAB's sqrt(var + 1e-5): within the tolerance, but 10x further off."""
    x = torch.from_numpy(np.load(alexeyab_case_dir(case) / "input.npy"))[None]
    index = case["layers"][0]
    theirs = np.load(alexeyab_case_dir(case) / f"layer_{index:03d}.npy")
    errors = {}
    for dialect in ("alexeyab", "pjreddie"):
        net = ab_golden_net(case["cfg"], case["width"], case["height"], dialect)
        with torch.inference_mode():
            errors[dialect] = float(np.abs(net.forward_layers(x)[index][0].numpy() - theirs).max())
    assert errors["pjreddie"] > 10 * errors["alexeyab"], errors


def test_summary_says_which_dialect():
    from conftest import run_cli

    auto = run_cli("summary", "cfg/yolov4-tiny.cfg")
    assert auto.returncode == 0 and "Dialect: alexeyab (auto: " in auto.stdout and "[route] groups=2" in auto.stdout
    asked = run_cli("summary", "cfg/yolov4-tiny.cfg", "--dialect", "pjreddie")
    assert asked.returncode == 0 and "Dialect: pjreddie (asked for)" in asked.stdout
    plain = run_cli("summary", "cfg/yolov3-tiny.cfg")
    assert "Dialect: pjreddie (auto: nothing in the cfg is AlexeyAB's only)" in plain.stdout


def test_pjreddie_training_refuses_alexeyab_yolo_options(tmp_path):
    """scale_x_y / new_coords train in AlexeyAB's dialect (its loss, tests/test_yolo_train_alexeyab.py); pjreddie's
    loss has no rules for them: in that dialect one clear error naming the key."""
    from pydarknet import Darknet, DarknetError

    for option in ("scale_x_y=1.05", "new_coords=1"):
        cfg = tmp_path / "head.cfg"
        cfg.write_text(f"[net]\nwidth=4\nheight=4\nchannels=6\n[yolo]\nmask=0\nanchors=1,1\nnum=1\nclasses=1\n{option}\n")
        head = Darknet(cfg).layers[0]
        assert torch.isfinite(head.delta(torch.zeros(1, 6, 4, 4), torch.zeros(1, 1, 5), (4, 4))[2])
        head = Darknet(cfg, dialect="pjreddie").layers[0]
        with pytest.raises(DarknetError, match=option.split("=")[0]):
            head.delta(torch.zeros(1, 6, 4, 4), torch.zeros(1, 1, 5), (4, 4))
