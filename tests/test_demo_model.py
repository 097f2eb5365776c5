"""The shipped demo models (see weights/README.md) on their committed demo images.

weights/yolov2-tiny-shapes.weights: it finds every shape the generator drew in
data/shapes-demo.jpg (data/shapes-demo.txt, the generator's own labels) with the right class
and IoU >= .5, and reports nothing else above .5; and the README's first command prints those
shapes.  weights/yolo9000-shapes.weights (YOLO9000 joint training,
docs/yolo9000-joint-training.md): on data/shapes9k-demo.jpg it names the red circles, a leaf
it never saw a box of, and `--hier-thresh .8` names the parent shape where the colour is
less sure."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from conftest import CFG, DEMO_CFG, DEMO_IMAGE, DEMO_WEIGHTS, ROOT, run_cli
from pydarknet import Darknet
from pydarknet.data import read_names
from pydarknet.data.labels import read_labels
from pydarknet.infer.detect import detect_image
from pydarknet.layers.boxes import box_iou

DATA = ROOT / "data"
DEMO, WEIGHTS, SHAPES_CFG = DEMO_IMAGE, DEMO_WEIGHTS, DEMO_CFG
THRESH = 0.5  # the README's command: Darknet's detect default


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    """The generator's labels of the demo image: (6, 5) rows class, x, y, w, h."""
    return read_labels(DEMO.with_suffix(".txt"), 6)


@pytest.fixture(scope="module")
def names() -> list[str]:
    return read_names(DATA / "shapes.names")


@pytest.fixture(scope="module")
def demo_detections():
    net = Darknet(SHAPES_CFG)
    net.load_weights(WEIGHTS)
    return detect_image(net.eval(), DEMO, thresh=THRESH)


def matches(dets, truth: np.ndarray) -> list[tuple[int, int, float]]:
    """Greedy one-to-one (det, truth, IoU) pairs of the same class with IoU >= .5, best IoU first."""
    pairs = []
    for d, det in enumerate(dets):
        for t, (cls, *box) in enumerate(truth):
            iou = float(box_iou(torch.tensor(det.box), torch.tensor(box)))
            if det.best_class == int(cls) and iou >= 0.5:
                pairs.append((iou, d, t))
    used_d, used_t, kept = set(), set(), []
    for iou, d, t in sorted(pairs, reverse=True):
        if d not in used_d and t not in used_t:
            used_d.add(d)
            used_t.add(t)
            kept.append((d, t, iou))
    return kept


def _printed(result) -> list[str]:
    """The class names a `detect` run printed, sorted."""
    return sorted(m.group(1) for m in re.finditer(r"^(\w+): \d+%", result.stdout, flags=re.M))


SHIPPED_DETECTORS = [(SHAPES_CFG, WEIGHTS)]  # the shapes detectors weights/README.md ships


@pytest.mark.parametrize(("cfg", "weights"), SHIPPED_DETECTORS, ids=lambda p: p.stem)
def test_finds_every_demo_shape_and_nothing_else(cfg, weights, truth, names):
    assert weights.stat().st_size < 20 * 2**20
    net = Darknet(cfg)
    net.load_weights(weights)
    demo_detections = detect_image(net.eval(), DEMO, thresh=THRESH)
    assert len(truth) == 6
    pairs = matches(demo_detections, truth)
    found = {t for _, t, _ in pairs}
    missed = [names[int(truth[t][0])] for t in range(len(truth)) if t not in found]
    assert not missed, f"missed: {missed}"
    matched = {d for d, _, _ in pairs}
    extra = [(names[det.best_class], round(det.best_prob, 3)) for i, det in enumerate(demo_detections)
             if i not in matched and det.best_prob > THRESH]
    assert not extra, f"extra detections above {THRESH}: {extra}"


def test_readme_first_command_prints_the_shapes(tmp_path, truth, names):
    result = run_cli("detect", SHAPES_CFG, WEIGHTS, DEMO, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert _printed(result) == sorted(names[int(c)] for c in truth[:, 0])
    assert (tmp_path / "predictions.jpg").stat().st_size > 0


JOINT_WEIGHTS = ROOT / "weights" / "yolo9000-shapes.weights"
JOINT_DEMO = DATA / "shapes9k-demo.jpg"


def test_joint_model_names_a_box_less_leaf_and_backs_off(tmp_path):
    assert JOINT_WEIGHTS.stat().st_size < 2 * 2**20
    names = read_names(DATA / "shapes9k.names")
    truth = read_labels(JOINT_DEMO.with_suffix(".txt"), len(names))
    net = Darknet(CFG / "yolo9000-shapes.cfg")
    net.load_weights(JOINT_WEIGHTS)
    dets = detect_image(net.eval(), JOINT_DEMO, thresh=0.25)
    found = matches(dets, truth)
    assert sorted(names[int(truth[t][0])] for _, t, _ in found) == ["blue_circle", "red_circle", "red_circle", "red_square"]
    assert len(dets) == len(found)  # and nothing else; the missed shape is the outlined green_cross

    sure = run_cli("detect", CFG / "yolo9000-shapes.cfg", JOINT_WEIGHTS, JOINT_DEMO, "--thresh", ".25", "--out", tmp_path / "a")
    unsure = run_cli("detect", CFG / "yolo9000-shapes.cfg", JOINT_WEIGHTS, JOINT_DEMO, "--thresh", ".25", "--hier-thresh", ".8",
                     "--out", tmp_path / "b")
    assert sure.returncode == unsure.returncode == 0, sure.stderr + unsure.stderr
    assert _printed(sure) == ["blue_circle", "red_circle", "red_circle", "red_square"]
    assert _printed(unsure) == ["circle", "red_circle", "red_circle", "square"]


def test_load_gives_the_user_facing_network_from_weights_or_a_checkpoint(tmp_path, demo_detections):
    """pydarknet.load: cfg + .weights, or a converted .pt alone, give the same detections through `net.detect`."""
    import pydarknet
    from pydarknet.convert import convert

    checkpoint = tmp_path / "shapes.pt"
    convert(SHAPES_CFG, WEIGHTS, checkpoint)
    shapes = read_names(DATA / "shapes.names")
    for net in (pydarknet.load(SHAPES_CFG, WEIGHTS), pydarknet.load(checkpoint, names=DATA / "shapes.names")):
        assert isinstance(net, pydarknet.Darknet) and not net.training and net.names == shapes  # found beside the cfg
        found = net.detect(DEMO, thresh=THRESH)
        assert [(d.box, d.best_class) for d in found] == [(d.box, d.best_class) for d in demo_detections]
        assert [d.name for d in found] == [shapes[d.best_class] for d in demo_detections]
    fresh = pydarknet.load(SHAPES_CFG, width=96, height=96)
    assert (fresh.width, fresh.height, fresh.seen) == (96, 96, 0)
    with pytest.raises(pydarknet.DarknetError, match="a checkpoint holds its cfg"):
        pydarknet.load(checkpoint, WEIGHTS)
