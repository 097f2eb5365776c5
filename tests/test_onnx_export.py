"""ONNX export: onnxruntime runs the exported graph to PyTorch's numbers (1e-4), any
batch size; the decoded boxes are Darknet's (golden detections)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from conftest import GOLDEN, MANIFEST
from helpers import case_input
from pydarknet import DarknetError
from pydarknet.convert import fuse_batchnorm
from pydarknet.convert.onnx_export import HeadGraph, onnx_bytes
from pydarknet.image import letterbox_geometry

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install pydarknet[onnx])")
pytest.importorskip("onnx", reason="onnx is not installed (pip install pydarknet[onnx])")

CASES = {c["name"]: c for c in MANIFEST["forward"]}


def run_onnx(model: bytes, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})


@pytest.mark.parametrize("cfg,size", [("yolov2-tiny-slim.cfg", (160, 160)), ("yolov2-slim.cfg", (224, 160))])
@pytest.mark.parametrize("fuse", [False, True], ids=["bn", "fused"])
def test_onnxruntime_matches_pytorch(cfg, size, fuse, golden_net):
    net = golden_net(cfg, *size)
    exported = fuse_batchnorm(net) if fuse else net
    model = onnx_bytes(exported, decode=True)
    x = torch.rand(3, *net.input_shape, generator=torch.Generator().manual_seed(0))  # batch 3: dynamic
    with torch.no_grad():
        expected = HeadGraph(net, decode=True)(x)
    got = run_onnx(model, x.numpy())
    assert len(got) == len(expected) == 2
    for ours, theirs in zip(got, expected):
        assert ours.shape == tuple(theirs.shape)
        assert np.abs(ours - theirs.numpy()).max() <= 1e-4


def test_raw_head_is_the_input_of_the_region_layer(golden_net):
    net = golden_net("yolov2-tiny-slim.cfg", 160, 160)
    x = torch.rand(1, *net.input_shape)
    (raw,) = run_onnx(onnx_bytes(net), x.numpy())
    with torch.no_grad():
        layers = net.forward_layers(x)
    assert np.abs(raw - layers[-2].numpy()).max() <= 1e-4
    assert np.abs(net.layers[-1](torch.from_numpy(raw)).numpy() - layers[-1].numpy()).max() <= 1e-4


@pytest.mark.parametrize("name", ["yolov2-slim_dog_160", "yolov2-tiny-slim_scream_160"])
def test_decoded_boxes_hold_darknets_detections(name, golden_net):
    """Every line of Darknet's detections.txt is one of the decoded boxes (after undoing the letterbox)."""
    case = CASES[name]
    net = golden_net(case["cfg"], case["width"], case["height"])
    x = case_input(case).reshape(1, *net.input_shape)
    boxes = run_onnx(onnx_bytes(net, decode=True), x)[-1][0]
    text = (GOLDEN / "forward" / name / "detections.txt").read_text().splitlines()
    im_w, im_h = (int(v) for v in text[0].split()[2:4])
    new_w, new_h = letterbox_geometry(im_w, im_h, net.width, net.height)
    sx, sy = new_w / net.width, new_h / net.height
    # Darknet's correct_region_boxes
    xy = (boxes[:, :2] - [(1 - sx) / 2, (1 - sy) / 2]) / [sx, sy]
    wh = boxes[:, 2:4] / [sx, sy]
    found = 0
    for line in text[1:]:
        cls, prob, bx, by, bw, bh, obj = (float(v) for v in line.split())
        near = np.abs(np.c_[xy, wh] - [bx, by, bw, bh]).max(axis=1) <= 1e-3
        near &= np.abs(boxes[:, 4] - obj) <= 1e-3
        assert near.any(), line
        assert np.abs(boxes[near, 5 + int(cls)] - prob).min() <= 1e-3, line
        found += 1
    assert found == case["detections"]


def test_decode_refuses_tree_heads_and_missing_onnx_is_one_line(golden_net, monkeypatch):
    import warnings

    from conftest import cfg_path
    from pydarknet import Darknet

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(cfg_path("yolo9000.cfg"), 224, 224)
    with pytest.raises(DarknetError, match="--decode handles .*tree="):
        HeadGraph(net, decode=True)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(DarknetError, match=r"pip install pydarknet\[onnx\]"):
        onnx_bytes(golden_net("yolov2-tiny-slim.cfg", 160, 160))


def test_convert_to_onnx_at_a_given_size(tmp_path, random_weights):
    from conftest import cfg_path
    from pydarknet.convert import convert

    dst = tmp_path / "tiny.onnx"
    convert(cfg_path("yolov2-tiny-slim.cfg"), random_weights("yolov2-tiny-slim.cfg"), dst, fuse=True, decode=True, size=(96, 64))
    session = ort.InferenceSession(dst.read_bytes(), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [3, 64, 96]
    raw, boxes = session.run(None, {"input": np.zeros((2, 3, 64, 96), np.float32)})
    assert raw.shape == (2, 125, 2, 3) and boxes.shape == (2, 5 * 2 * 3, 25)
