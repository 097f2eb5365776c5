"""Darknet's training label path against the C (tests/golden/labels/), and YOLO9000's class-only labels.

src/data.c `fill_truth_detection` without its shuffle: `read_boxes`, `correct_boxes` (a line with x == 0
and y == 0 becomes the class-only box 999999, 999999, 999999, 999999, class, never moved, flipped, clipped
or dropped), cut to `num_boxes`, drop w or h < .001.  Then those boxes through the loader into the
[region] layer's `softmax_tree` branch (region_layer.c `forward_region_layer`), and the classes a head
with `map=` can train.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import GOLDEN, MANIFEST, ROOT
from pydarknet import Darknet
from pydarknet.data import BadSampleWarning, DetectionLoader, label_path, read_training_labels
from pydarknet.data.augment import CLASS_ONLY, truth_from_labels
from pydarknet.errors import DarknetError
from pydarknet.layers.region import Region

CASES = [(case, k) for case in MANIFEST["labels"] for k in range(len(case["params"]))]

# tests/golden/region's small tree (our own, in Darknet's tree format): 16 nodes, 6 groups.
TREE = """animal -1\nvehicle -1\nplant -1\ndog 0\ncat 0\nbird 0\nfish 0\ncar 1\nbike 1\nboat 1
terrier 3\nretriever 3\nhusky 3\nsedan 7\ntruck 7\nflower 2\n"""
TERRIER, VEHICLE = 10, 1


@pytest.mark.parametrize("case, k", CASES, ids=[f"{case['name']}-{k}" for case, k in CASES])
def test_truth_from_label_file_matches_darknet(case: dict, k: int) -> None:
    folder = GOLDEN / "labels" / case["name"]
    p = case["params"][k]
    labels = read_training_labels(folder / "label.txt", class_only=True)
    ours = truth_from_labels(labels, case["num_boxes"], p["dx"], p["dy"], p["sx"], p["sy"], bool(p["flip"]))
    theirs = np.load(folder / "truth.npy")[k]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    assert int((ours[:, 2] > 0).sum()) == case["boxes_kept"][k]
    only = labels[(labels[:, 1] == 0) & (labels[:, 2] == 0)][:, 0]
    assert sorted(ours[ours[:, 0] == CLASS_ONLY, 4]) == sorted(only[: case["num_boxes"]])


def tree_region(folder: Path, extra: str = "") -> Darknet:
    """A [region] over a 7x7 grid with the small tree (region_layer.c's softmax_tree branch)."""
    (folder / "tree.txt").write_text(TREE)
    cfg = folder / "region.cfg"
    cfg.write_text(f"[net]\nbatch=4\nwidth=7\nheight=7\nchannels=63\n\n[region]\nanchors=0.77871, 1.14074, 3.00525, "
                   f"4.31277, 9.22725, 9.61974\ntree={folder / 'tree.txt'}\nclasses=16\nnum=3\nbias_match=1\n"
                   f"softmax=1\nrescore=1\nobject_scale=5\nthresh=.6\n{extra}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Darknet(cfg)


def image_set(folder: Path, labels: dict[str, str]) -> list[Path]:
    """Images (random pixels) under folder/images with these label files."""
    (folder / "images").mkdir()
    (folder / "labels").mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for name, text in labels.items():
        path = folder / "images" / f"{name}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
        label_path(path).write_text(text)
        paths.append(path)
    return paths


def test_class_only_labels_reach_the_region_layer_unchanged(tmp_path: Path) -> None:
    """Jitter, flips and crops leave a class-only box as Darknet's 999999 box; the tree [region] then
    trains such an image's classes at one anchor only, and its objectness towards 0 everywhere else."""
    layer: Region = tree_region(tmp_path).layers[0]
    paths = image_set(tmp_path, {"terrier": f"{TERRIER} 0 0 0 0\n",
                                 "mixed": f"5 0.4 0.6 0.3 0.3\n{VEHICLE} 0 0 0.5 0.5\n14 0.7 0.2 0.2 0.3\n",
                                 "boxes": "4 0.5 0.5 0.4 0.4\n"})
    loader = DetectionLoader(paths, lambda i: (64, 64), 8, 0.3, 0.1, 1.5, 1.5, layer.max_boxes, workers=0, seed=1,
                             classes=layer.classes, class_only=True)
    _, _, truth = next(iter(loader))
    only = truth[:, :, 0] == CLASS_ONLY
    assert torch.equal(only, (truth[:, :, :4] == CLASS_ONLY).all(dim=2))  # all four coordinates, exactly
    assert set(truth[only][:, 4].tolist()) == {TERRIER, VEHICLE}
    images = only.any(dim=1)
    assert 0 < int(images.sum()) < len(truth)
    raw = torch.randn(len(truth), 63, 7, 7, generator=torch.Generator().manual_seed(0))
    output, delta, _ = layer.delta(raw, truth, 0)  # seen 0: every detection image also gets the prior term
    o, d = output.view(-1, 3, 21, 7, 7), delta.view(-1, 3, 21, 7, 7)
    assert torch.all(d[~images, :, :4] != 0)
    for b in images.nonzero()[:, 0]:
        cls = int(truth[b][only[b]][0, 4])
        trained = (d[b, :, 5:] != 0).any(dim=1)
        assert int(trained.sum()) == 1 and torch.all(d[b, :, :4] == 0)  # one anchor of one cell, no box terms
        assert torch.allclose(d[b, :, 4][~trained], -o[b, :, 4][~trained]) and torch.all(d[b, :, 4][trained] == 0)
        assert float(d[b, :, 5 + cls][trained]) == pytest.approx(float(1 - o[b, :, 5 + cls][trained]))


@pytest.mark.parametrize("text, line", [("3 0 0 0.5 0.5\n", 1), ("0 0.5 0.5 0.2 0.2\n3 -0 0.0 0 0\n", 2)])
def test_class_only_lines_need_a_tree(tmp_path: Path, text: str, line: int) -> None:
    """Without tree= Darknet's [region] and [yolo] index their output with x = 999999 (out of bounds)."""
    (tmp_path / "a.txt").write_text(text)
    words = f"a.txt:{line}: x = y = 0 is a class-only label (YOLO9000), which only a [region] with tree= trains"
    with pytest.raises(DarknetError, match=re.escape(words)):
        read_training_labels(tmp_path / "a.txt", 16)


@pytest.fixture(scope="module")
def yolo9000_region(tmp_path_factory: pytest.TempPathFactory) -> Region:
    """yolo9000.cfg's [region] tree and map: data/9k.tree (9418 classes), data/coco9k.map (80 entries)."""
    folder = tmp_path_factory.mktemp("yolo9000")
    cfg = folder / "region.cfg"
    cfg.write_text(f"[net]\nwidth=2\nheight=2\nchannels={3 * 9423}\n\n[region]\nclasses=9418\nnum=3\nsoftmax=1\n"
                   f"tree={ROOT / 'data/9k.tree'}\nmap={ROOT / 'data/coco9k.map'}\n")
    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        return Darknet(cfg).layers[0]


def read_for(layer: Region, path: Path) -> np.ndarray:
    return read_training_labels(path, layer.classes, layer.map, layer.tree is not None)


def test_a_box_class_the_map_does_not_cover_names_file_line_and_class(tmp_path: Path, yolo9000_region: Region) -> None:
    """coco9k.map maps COCO's 80 classes into the 9k tree; a box label with a 9k index has no entry
    (Darknet: `l.map[class]` reads past the map)."""
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n\n79 0.5 0.5 0.2 0.2\n500 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DarknetError) as err:
        read_for(yolo9000_region, tmp_path / "a.txt")
    assert str(err.value).startswith(f"{tmp_path / 'a.txt'}:4: class 500 has no entry in the head's map= (80 entries, "
                                     "mapping label classes 0-79 to the layer's 9418 classes)")
    assert "9k tree index" in str(err.value) and str(err.value).endswith("needs a cfg without map=")


def test_a_class_only_label_is_not_mapped(tmp_path: Path, yolo9000_region: Region) -> None:
    """region_layer.c: the class-only branch takes the truth's class as a tree index; only boxes go through map."""
    (tmp_path / "a.txt").write_text("5177 0 0 0 0\n3 0.5 0.5 0.2 0.2\n")
    truth = truth_from_labels(read_for(yolo9000_region, tmp_path / "a.txt"), 30, 0.1, 0.1, 0.8, 0.8, True)
    assert truth[0].tolist() == [CLASS_ONLY] * 4 + [5177] and truth[1, 4] == 3  # the label's classes, as they are
    (tmp_path / "b.txt").write_text("9418 0 0 0 0\n")
    with pytest.raises(DarknetError, match=r"b\.txt:1: class 9418 out of range \(classes=9418\) \(a class-only label's "
                                           r"class is the layer's, not mapped\)"):
        read_for(yolo9000_region, tmp_path / "b.txt")


def test_the_loader_reports_an_unmapped_class_with_its_file_and_line(tmp_path: Path, yolo9000_region: Region) -> None:
    paths = image_set(tmp_path, {"good": "3 0.5 0.5 0.2 0.2\n", "bad": "3 0.5 0.5 0.2 0.2\n85 0.5 0.5 0.2 0.2\n"})
    loader = DetectionLoader(paths, lambda i: (32, 32), 4, 0.2, 0, 1, 1, 30, workers=0, seed=0,
                             classes=yolo9000_region.classes, class_map=yolo9000_region.map, class_only=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, _, truth = next(iter(loader))
    assert set(truth[:, 0, 4].tolist()) == {3}
    [message] = [str(w.message) for w in caught if issubclass(w.category, BadSampleWarning)]
    assert message.startswith(f"{paths[1]}: {tmp_path / 'labels' / 'bad.txt'}:2: class 85 has no entry in the head's map=")
