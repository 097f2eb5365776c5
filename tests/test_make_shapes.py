"""The synthetic shapes datasets (tools/make_shapes.py), cfg/yolov2-tiny-shapes.cfg, cfg/yolo9000-shapes.cfg (and its classifier), tools/plot_ap.py.

Checks the formats Darknet reads: label lines, list files, the label path
Darknet derives from an image path (`fill_truth_detection`), the class
Darknet's classifier derives from a path (`fill_truth`), and `.data` files.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import ROOT, cfg_path

from pydarknet import Darknet
from pydarknet.cfg import read_data_file
from pydarknet.data import read_names
from pydarknet.data.labels import label_path
from pydarknet.infer.detect import find_names
from pydarknet.errors import DarknetError
from pydarknet.train.options import check_training_cfg
from pydarknet.train.trainer import TrainRun, train_detector
from pydarknet.tree import read_tree
from pydarknet.weights import weights_bytes
from tools import make_shapes as ms

SIZES = (96, 160)


@pytest.fixture(scope="module")
def detection_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("det") / "a"
    ms.make_detection_set(out, seed=3, n_train=8, n_valid=3, size_range=SIZES)
    return out


@pytest.fixture(scope="module")
def classification_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cls") / "a"
    ms.make_classification_set(out, seed=3, n_train=12, n_valid=6, size_range=(48, 64))
    return out


def _files(root: Path) -> dict[str, bytes]:
    """Every file under root, list/.data paths made relative to root."""
    return {str(p.relative_to(root)): p.read_bytes().replace(str(root).encode(), b"ROOT") for p in sorted(root.rglob("*")) if p.is_file()}


def test_detection_same_seed_same_bytes(detection_set, tmp_path):
    again = tmp_path / "b"
    ms.make_detection_set(again, seed=3, n_train=8, n_valid=3, size_range=SIZES, workers=2)
    assert _files(again) == _files(detection_set)
    other = tmp_path / "c"
    ms.make_detection_set(other, seed=4, n_train=8, n_valid=3, size_range=SIZES)
    first = "images/train/000000.jpg"
    assert _files(other)[first] != _files(detection_set)[first]


def test_classification_same_seed_same_bytes(classification_set, tmp_path):
    again = tmp_path / "b"
    ms.make_classification_set(again, seed=3, n_train=12, n_valid=6, size_range=(48, 64), workers=2)
    assert _files(again) == _files(classification_set)


def test_detection_lists_and_labels_in_darknet_format(detection_set):
    data = read_data_file(detection_set / "shapes.data")
    assert data.get_int("classes") == len(ms.CLASSES)
    assert data.get_path("names").read_text().split() == list(ms.CLASSES)
    for split, n in (("train", 8), ("valid", 3)):
        images = data.get_path(split).read_text().splitlines()
        assert len(images) == n
        for image in images:
            im = cv2.imread(image)
            assert im is not None and SIZES[0] <= min(im.shape[:2]) and max(im.shape[:2]) <= SIZES[1]
            lines = Path(label_path(image)).read_text().splitlines()
            assert lines, image
            for line in lines:
                fields = line.split()
                assert len(fields) == 5 and fields[0] in {str(i) for i in range(len(ms.CLASSES))}
                cx, cy, w, h = map(float, fields[1:])
                assert all(0 < v <= 1 for v in (cx, cy, w, h))
                assert cx - w / 2 >= -1e-6 and cx + w / 2 <= 1 + 1e-6 and cy - h / 2 >= -1e-6 and cy + h / 2 <= 1 + 1e-6
    assert (detection_set / "backup").is_dir()


def test_label_files_are_the_rendered_scenes(detection_set):
    image = (detection_set / "train.txt").read_text().splitlines()[5]
    scene = ms.detection_scene(3, "train", 5, SIZES)
    assert Path(label_path(image)).read_text() == scene.label_text()
    assert cv2.imread(image).shape == scene.image.shape


@pytest.mark.parametrize("index", range(6))
def test_boxes_hold_their_visible_shapes(index):
    scene = ms.detection_scene(11, "train", index, (160, 320))
    h, w = scene.owner.shape
    assert scene.shapes
    for k, shape in enumerate(scene.shapes):
        x0, y0, x1, y1 = shape.box
        ys, xs = np.nonzero(shape.mask)
        assert (xs.min(), ys.min(), xs.max(), ys.max()) == (x0, y0, x1, y1)  # tight box
        min_side = min(w, h) * ms.SIZE_FRACTION[0] * np.sqrt(ms.ASPECT[0]) - 2
        assert max(x1 - x0, y1 - y0) + 1 >= min_side
        visible = scene.owner == k
        assert visible.sum() >= ms.MIN_VISIBLE * shape.mask.sum()  # the occlusion rule
        # the box interior shows the shape's colour (blur and noise aside)
        inside = scene.image[y0 : y1 + 1, x0 : x1 + 1].reshape(-1, 3).astype(float)
        close = np.linalg.norm(inside - np.array(shape.color, float), axis=1) < 40
        assert close.sum() >= 0.5 * visible.sum()


def test_classification_paths_carry_exactly_their_class(classification_set):
    data = read_data_file(classification_set / "shapes.data")
    assert data.get_int("classes") == len(ms.CLASSES) and data.get_int("top") == 2
    labels = tuple(data.get_path("labels").read_text().split())
    assert labels == ms.CLASSES and data.get_path("names").read_text().split() == list(labels)
    for split, n in (("train", 12), ("valid", 6)):
        paths = data.get_path(split).read_text().splitlines()
        assert len(paths) == n
        for i, path in enumerate(paths):
            assert ms.darknet_class_labels(path, labels) == [Path(path).parent.name]
            scene = ms.classification_scene(3, split, i, (48, 64))
            assert labels[scene.shapes[0].cls] == Path(path).parent.name
            assert np.array_equal(cv2.imread(path), scene.image)  # PNG: lossless


def test_paths_darknet_would_misread_are_refused(tmp_path):
    with pytest.raises(DarknetError, match="class name 'star'"):
        ms.make_classification_set(tmp_path / "stars", seed=0, n_train=1, n_valid=0)
    with pytest.raises(DarknetError, match="labels"):
        ms.make_detection_set(tmp_path / "images", seed=0, n_train=1, n_valid=0)
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "make_shapes.py"), str(tmp_path / "raw"), "--train", "1", "--valid", "0"], capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "raw").exists()


def test_shapes_cfg_builds_small():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = Darknet(cfg_path("yolov2-tiny-shapes.cfg"), strict=True)
    region = net.layers[-1]
    assert region.kind == "region" and (region.num, region.classes, region.random) == (5, 6, 1)
    assert net.input_shape == (3, 544, 544) and net.options.burn_in == 200
    assert net.layers[-2].filters == region.num * (region.coords + 1 + region.classes)
    assert len(weights_bytes(net)) < 20 * 2**20


def test_shipped_names_are_the_generators_classes():
    assert read_names(ROOT / "data" / "shapes.names") == list(ms.CLASSES)


# --- the hierarchy set (YOLO9000 joint training, issue #19) -------------------------------

HIER_SIZES = (64, 96)
HIER_COUNTS = {"n_train": 12, "n_class_only": 6, "n_valid": 18}


@pytest.fixture(scope="module")
def hierarchy_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tree") / "a"
    ms.make_hierarchy_set(out, seed=3, size_range=HIER_SIZES, **HIER_COUNTS)
    return out


def _labels(list_file: Path) -> list[list[list[str]]]:
    """Each listed image's label lines, split (through Darknet's label path)."""
    return [[line.split() for line in Path(label_path(image)).read_text().splitlines()] for image in list_file.read_text().splitlines()]


def test_hierarchy_tree_and_names_agree(hierarchy_set):
    tree = read_tree(hierarchy_set / "shapes9k.tree")
    names = read_names(hierarchy_set / "shapes9k.names")
    assert tree.names == names and len(names) == len(ms.CLASSES) * (1 + len(ms.COLOURS))
    for k, (name, parent) in enumerate(zip(tree.names, tree.parent)):
        if k < len(ms.CLASSES):
            assert name == ms.CLASSES[k] and parent == -1
        else:  # a leaf: `colour_shape` under its shape
            colour, shape = name.split("_")
            assert colour in ms.COLOURS and tree.names[parent] == shape and tree.child[k] == -1
    assert tree.groups == 1 + len(ms.CLASSES) and set(tree.group_size[1:]) == {len(ms.COLOURS)}
    # the shipped copy the cfg reads, and the names `detect` finds for the cfg
    assert (ROOT / "data" / "shapes9k.tree").read_bytes() == (hierarchy_set / "shapes9k.tree").read_bytes()
    assert (ROOT / "data" / "shapes9k.names").read_bytes() == (hierarchy_set / "shapes9k.names").read_bytes()
    assert find_names(cfg_path("yolo9000-shapes.cfg"), len(names)) == ROOT / "data" / "shapes9k.names"


def test_hierarchy_leaf_split():
    class_only = {ms.tree_index(*leaf) for leaf in ms.CLASS_ONLY}
    boxed = {ms.tree_index(*leaf) for leaf in ms.BOXED}
    assert len(class_only) == len(ms.CLASSES) and not class_only & boxed
    assert class_only | boxed == set(range(len(ms.CLASSES), len(ms.CLASSES) * (1 + len(ms.COLOURS))))
    assert {s for s, _ in ms.CLASS_ONLY} == set(range(len(ms.CLASSES)))  # one box-less colour per shape
    assert {c for _, c in ms.CLASS_ONLY} == set(range(len(ms.COLOURS)))  # each colour box-less for some shape


def test_hierarchy_lists_labels_and_data(hierarchy_set):
    data = read_data_file(hierarchy_set / "shapes9k.data")
    assert data.get_int("classes") == 24 and data.get_path("names") == hierarchy_set / "shapes9k.names"
    assert (hierarchy_set / "backup").is_dir()
    boxed = {str(ms.tree_index(*leaf)) for leaf in ms.BOXED}
    class_only = {str(ms.tree_index(*leaf)) for leaf in ms.CLASS_ONLY}
    detection, classification = hierarchy_set / "train-det.txt", hierarchy_set / "train-cls.txt"
    assert data.get_path("train").read_text() == detection.read_text() + classification.read_text()

    det = _labels(detection)
    assert len(det) == HIER_COUNTS["n_train"] and all(det)
    for lines in det:
        for fields in lines:
            assert len(fields) == 5 and fields[0] in boxed and all(0 < float(v) <= 1 for v in fields[1:])
    assert {lines[0][0] for lines in det} == boxed  # image N's first shape: boxed leaf N mod 12

    cls = _labels(classification)
    assert len(cls) == HIER_COUNTS["n_class_only"]
    for lines in cls:
        assert len(lines) == 1 and lines[0][0] in class_only and lines[0][1:] == ["0", "0", "0", "0"]
    assert {lines[0][0] for lines in cls} == class_only

    valid = _labels(data.get_path("valid"))
    assert len(valid) == HIER_COUNTS["n_valid"]
    assert all(len(fields) == 5 and float(fields[3]) > 0 for lines in valid for fields in lines)
    assert {fields[0] for lines in valid for fields in lines} == boxed | class_only  # every leaf has boxes


def test_hierarchy_shapes_wear_their_leafs_colour():
    hues = {}
    for split, n in (("train", 6), ("classify", 6), ("valid", 6)):
        for i in range(n):
            scene = ms.hierarchy_scene(5, split, i, HIER_SIZES)
            for k, shape in enumerate(scene.shapes):
                visible = scene.owner == k
                mean = scene.image[visible].mean(axis=0).astype(np.uint8).reshape(1, 1, 3)
                hue = int(cv2.cvtColor(mean, cv2.COLOR_BGR2HSV)[0, 0, 0])
                colour = (shape.label - len(ms.CLASSES)) % len(ms.COLOURS)
                assert (shape.label - len(ms.CLASSES)) // len(ms.COLOURS) == shape.cls
                centre = list(ms.COLOURS.values())[colour]
                assert min(abs(hue - centre), 180 - abs(hue - centre)) <= 15, (split, i, k, hue)
                hues[colour] = True
    assert len(hues) == len(ms.COLOURS)


def test_hierarchy_same_seed_same_bytes(hierarchy_set, tmp_path):
    again = tmp_path / "b"
    ms.make_hierarchy_set(again, seed=3, size_range=HIER_SIZES, workers=2, **HIER_COUNTS)
    assert _files(again) == _files(hierarchy_set)
    other = tmp_path / "c"
    ms.make_hierarchy_set(other, seed=4, size_range=HIER_SIZES, n_train=1, n_class_only=1, n_valid=0)
    for image in ("images/train/000000.jpg", "images/classify/000000.jpg"):
        assert _files(other)[image] != _files(hierarchy_set)[image]


def test_hierarchy_cli(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "make_shapes.py"), str(tmp_path / "h"), "--hierarchy",
                             "--train", "2", "--class-only", "1", "--valid", "1", "--size-range", "48", "64", "--jobs", "1"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == str(tmp_path / "h" / "shapes9k.data")
    assert [len((tmp_path / "h" / f).read_text().splitlines()) for f in ("train-det.txt", "train-cls.txt", "train.txt", "valid.txt")] == [2, 1, 3, 1]


def test_yolo9000_shapes_cfg_builds_and_trains(hierarchy_set, tmp_path):
    """The cfg builds strict, the trainer accepts it, and 2 iterations run on the combined list."""
    cfg = cfg_path("yolo9000-shapes.cfg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = Darknet(cfg, strict=True)
    check_training_cfg(cfg)
    region = net.layers[-1]
    assert region.kind == "region" and region.tree is not None and region.classes == region.tree.n == 24
    assert net.layers[-2].filters == region.num * (region.classes + 5) and net.input_shape == (3, 128, 128)
    small = tmp_path / "yolo9000-shapes.cfg"  # batch 4: a fast test
    small.write_text(cfg.read_text().replace("batch=16", "batch=4").replace("tree=data/", f"tree={ROOT}/data/"))
    data = tmp_path / "small.data"
    data.write_text((hierarchy_set / "shapes9k.data").read_text().replace(f"backup={hierarchy_set / 'backup'}", f"backup={tmp_path / 'backup'}"))
    final = train_detector(TrainRun(data=data, cfg=small, workers=0, quiet=True, seed=1, max_batches=2))
    assert final.is_file()
    log = (final.parent / "yolo9000-shapes_log.csv").read_text().splitlines()
    assert len(log) == 3 and all(np.isfinite(float(row.split(",")[2])) for row in log[1:])


def test_yolo9000_shapes_classifier_cut_starts_the_detector(tmp_path):
    """The joint-training recipe: `partial` of the classifier's first 9 layers loads into cfg/yolo9000-shapes.cfg."""
    classifier = Darknet(cfg_path("yolo9000-shapes-classifier.cfg"), strict=True)
    assert classifier.layers[-1].kind == "softmax" and classifier.layers[-3].filters == len(ms.CLASSES)
    torch.manual_seed(0)
    for p in classifier.parameters():
        p.data.normal_()
    cut = tmp_path / "yolo9000-shapes.conv.9"
    cut.write_bytes(weights_bytes(classifier, cutoff=9))
    detector = Darknet(cfg_path("yolo9000-shapes.cfg"), strict=True)
    detector.load_weights(cut, partial=True)
    assert weights_bytes(detector, cutoff=9)[20:] == weights_bytes(classifier, cutoff=9)[20:]


def test_plot_ap_tool(tmp_path):
    """tools/plot_ap.py (docs/yolo9000-joint-training.png) draws `map --json` files; a bad one is one line."""
    result = {"classes": [{"name": "a", "ap": {"0": 0.5}, "ground_truth": 3}, {"name": "b", "ap": {"0": None}, "ground_truth": 2},
                          {"name": "parent", "ap": {"0": None}, "ground_truth": 0}]}
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(result))
    bad.write_text("not json")
    tool = [sys.executable, str(ROOT / "tools" / "plot_ap.py"), str(tmp_path / "ap.png")]
    ok = subprocess.run([*tool, f"joint={good}", f"baseline={good}", "--mark", "b"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert cv2.imread(str(tmp_path / "ap.png")) is not None and not list(tmp_path.glob("*.tmp.png"))
    failed = subprocess.run([*tool, f"x={bad}"], capture_output=True, text=True)
    assert failed.returncode == 1 and failed.stderr.count("\n") == 1 and str(bad) in failed.stderr
    typo = subprocess.run([*tool, f"x={good}", "--mark", "c"], capture_output=True, text=True)
    assert typo.returncode == 1 and typo.stderr.count("\n") == 1 and "c" in typo.stderr
