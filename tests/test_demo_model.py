"""The shipped demo model (weights/yolov2-tiny-shapes.weights, see weights/README.md) on the
committed demo image: it finds every shape the generator drew there (data/shapes-demo.txt,
the generator's own labels) with the right class and IoU >= .5, and reports nothing else
above .5; and the README's first command prints those shapes."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from conftest import CFG, ROOT, run_cli
from pydarknet import Darknet
from pydarknet.data import read_names
from pydarknet.data.labels import read_labels
from pydarknet.layers.boxes import box_iou

DATA = ROOT / "data"
DEMO = DATA / "shapes-demo.jpg"
WEIGHTS = ROOT / "weights" / "yolov2-tiny-shapes.weights"
SHAPES_CFG = CFG / "yolov2-tiny-shapes.cfg"
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
    return net.eval().detect(DEMO, thresh=THRESH)


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


def test_shipped_weights_are_small():
    assert WEIGHTS.stat().st_size < 20 * 2**20


def test_finds_every_demo_shape_and_nothing_else(demo_detections, truth, names):
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
    printed = sorted(m.group(1) for m in re.finditer(r"^(\w+): \d+%", result.stdout, flags=re.M))
    assert printed == sorted(names[int(c)] for c in truth[:, 0])
    assert (tmp_path / "predictions.jpg").stat().st_size > 0
