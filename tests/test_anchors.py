"""Dimension clusters: IoU k-means recovers known shapes, beats Euclidean k-means, the anchors command."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import cfg_path
from helpers import write_dataset
from pydarknet.anchors import average_iou, kmeans_anchors, wh_iou
from pydarknet.cli import main
from pydarknet.network import Darknet

SHAPES = np.array([[1.0, 1.5], [3.0, 4.0], [5.0, 8.0], [9.0, 5.0], [11.0, 10.0]])  # grid cells, by area


def test_wh_iou_by_hand():
    assert wh_iou(np.array([[2.0, 2.0]]), np.array([[1.0, 4.0], [2.0, 2.0]])).tolist() == [[2 / 6, 1.0]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_five_known_shapes(seed):
    rng = np.random.default_rng(seed)
    boxes = SHAPES[rng.integers(5, size=20000)] * np.exp(rng.normal(0, 0.05, (20000, 2)))
    anchors = kmeans_anchors(boxes, 5, seed=seed)
    assert anchors == pytest.approx(SHAPES, rel=0.02)
    assert np.array_equal(anchors, kmeans_anchors(boxes, 5, seed=seed))  # --seed makes it deterministic


def test_iou_distance_beats_euclidean_on_skewed_boxes():
    # many small boxes, few large ones of widely varying size: Euclidean k-means spends
    # its centroids on the large boxes' spread, 1 - IoU weighs every box by shape
    rng = np.random.default_rng(0)
    small = np.exp(rng.normal(np.log([0.8, 1.2]), 0.35, (9000, 2)))
    large = np.exp(rng.normal(np.log([6.0, 8.0]), 0.45, (1000, 2)))
    boxes = np.concatenate([small, large])
    iou = [average_iou(boxes, kmeans_anchors(boxes, 5, seed=s)) for s in range(3)]
    euclid = [average_iou(boxes, kmeans_anchors(boxes, 5, seed=s, metric="euclidean")) for s in range(3)]
    assert min(iou) > max(euclid) + 0.02


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(3)
    cells = SHAPES[rng.integers(5, size=2000)] * np.exp(rng.normal(0, 0.03, (2000, 2)))
    return write_dataset(tmp_path, cells / 13.0)  # relative sizes of a 13x13 grid (416 / 32)


def test_anchors_command_grid_units(dataset, capsys):
    # AlexeyAB's calc_anchors: the units of -width x -height, so 13 x 13 gives YOLOv2's grid cells
    assert main(["detector", "calc_anchors", str(dataset), "-num_of_clusters", "5", "-width", "13", "-height", "13"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("anchors = "))
    anchors = np.array([float(v) for v in line[len("anchors = "):].replace(" ", "").split(",")]).reshape(-1, 2)
    assert anchors == pytest.approx(SHAPES, rel=0.02)
    assert "average IoU 9" in out
    # pydarknet's own --units, even spelled --units=grid, wins over calc_anchors' pixels
    assert main(["detector", "calc_anchors", str(dataset), "-num_of_clusters", "5", "-width", "416", "-height", "416",
                 "--units=grid"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("anchors = "))
    assert np.array(line[len("anchors = "):].replace(" ", "").split(","), float).reshape(-1, 2) == pytest.approx(SHAPES, rel=0.02)


def test_anchors_pixels_and_cfg_comparison(dataset, capsys):
    assert main(["anchors", str(dataset), "--units", "pixels", "--width", "416", "--height", "416"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("anchors = "))
    values = line[len("anchors = "):].replace(" ", "").split(",")
    assert all(v.isdigit() for v in values)  # whole pixels, like the [yolo] cfgs
    assert np.array(values, float).reshape(-1, 2) == pytest.approx(SHAPES * 32, rel=0.02)
    assert main(["anchors", str(dataset), "--cfg", str(cfg_path("yolov2-tiny-slim.cfg")), "--width", "416", "--height", "416"]) == 0
    out = capsys.readouterr().out
    assert "grid cells (stride 32)" in out and "current anchors of" in out


def test_write_cfg_keeps_other_bytes(dataset, tmp_path, capsys):
    original = cfg_path("yolov2-tiny-slim.cfg").read_bytes()
    cfg = tmp_path / "edit.cfg"
    cfg.write_bytes(original.replace(b"\n", b"\r\n"))
    assert main(["anchors", str(dataset), "--num", "4", "--write", str(cfg), "--width", "416", "--height", "416", "--plot", str(tmp_path / "c.png")]) == 0
    edited = cfg.read_bytes()
    old, new = original.replace(b"\n", b"\r\n").split(b"\r\n"), edited.split(b"\r\n")
    changed = [(a, b) for a, b in zip(old, new) if a != b]
    assert len(old) == len(new) and len(changed) == 3
    assert changed[0] == (b"filters=125", b"filters=100")  # 4 * (20 + 4 + 1)
    assert changed[1][1].startswith(b"anchors = ") and changed[2] == (b"num=5", b"num=4")
    net = Darknet(cfg, 416, 416)
    assert net.layers[-1].num == 4 and net.layers[-1].anchors.shape == (4, 2)
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_missing_label_file_is_one_line(dataset, capsys):
    (dataset.parent / "labels" / "img0.txt").unlink()
    assert main(["anchors", str(dataset)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train.txt:1" in err and "img0.txt" in err
