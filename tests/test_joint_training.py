"""YOLO9000's joint training, end to end on a data set made here (issue #19).

Darknet's `combine9k.data` trains one list that mixes detection images (label
lines `class x y w h`) and classification images (one class-only line, x = 0
and y = 0, which data.c `correct_boxes` turns into a box at 999999).  The
[region] with `tree=` (region_layer.c `forward_region_layer`, the
`softmax_tree` branch) trains a class-only image at one box only: over all
anchors and cells the one with the highest obj * P(class), P the product of
the class's and its ancestors' tree outputs (`get_hierarchy_probability`).
That box gets the tree class delta (`delta_region_class` with the hierarchy)
and objectness delta 0; every other box only its noobject delta; no
coordinate term, no prior term, whatever `seen`.  A detection image trains as
usual: coordinates, objectness and classes at the anchor of each box.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pydarknet import Darknet
from pydarknet.data import DetectionLoader
from pydarknet.layers.region import Region
from pydarknet.train.trainer import TrainRun, train_detector
from pydarknet.tree import read_tree

SIZE = 32
# Two shapes (the root group), each with coloured leaves: `name parent_index` (src/tree.c read_tree).
TREE = ["square -1", "disc -1", "red_square 0", "green_square 0", "red_disc 1", "green_disc 1", "blue_disc 1"]
COLOURS = {"red": (0, 0, 255), "green": (0, 255, 0), "blue": (255, 0, 0)}
CLASSES = len(TREE)
NUM = 3

CFG_TEXT = f"""[net]
batch=4
subdivisions=1
width={SIZE}
height={SIZE}
channels=3
momentum=0.9
decay=0.0005
learning_rate=0.001
max_batches=2
policy=constant

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters={NUM * (CLASSES + 5)}
size=1
stride=1
pad=1
activation=linear

[region]
anchors=1,1, 3,3, 6,6
bias_match=1
classes={CLASSES}
coords=4
num={NUM}
softmax=1
jitter=.2
rescore=1
object_scale=5
noobject_scale=1
class_scale=1
coord_scale=1
thresh=.6
absolute=1
random=0
tree=joint.tree
"""


def _draw(leaf: str, box: tuple[int, int, int, int]) -> np.ndarray:
    """A grey image with one shape of the leaf's colour inside `box` (x0, y0, x1, y1 in pixels)."""
    colour, shape = leaf.split("_")
    im = np.full((SIZE, SIZE, 3), 60, np.uint8)
    x0, y0, x1, y1 = box
    if shape == "square":
        cv2.rectangle(im, (x0, y0), (x1, y1), COLOURS[colour], -1)
    else:
        cv2.ellipse(im, ((x0 + x1) // 2, (y0 + y1) // 2), ((x1 - x0) // 2, (y1 - y0) // 2), 0, 0, 360, COLOURS[colour], -1)
    return im


def make_joint_set(root: Path) -> dict[str, Path]:
    """combine9k-style: detection images with boxes of the red leaves, classification images of the
    others with one class-only line (`c 0 0 0 0`, or Darknet's imagenet form with w = h = 1); the
    cfg, tree, names, list and .data beside them."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    names = [line.split()[0] for line in TREE]
    detection, classification = [], []
    for k, leaf in enumerate(["red_square", "red_disc"] * 2):
        x0, y0 = 2 + 3 * k, 4 + 2 * k
        box = (x0, y0, x0 + 20, y0 + 18)
        path = root / "images" / f"det{k}.png"
        cv2.imwrite(str(path), _draw(leaf, box))
        cx, cy, w, h = (box[0] + box[2]) / 2 / SIZE, (box[1] + box[3]) / 2 / SIZE, 20 / SIZE, 18 / SIZE
        (root / "labels" / f"det{k}.txt").write_text(f"{names.index(leaf)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
        detection.append(path)
    for k, leaf in enumerate(["green_square", "green_disc", "blue_disc"]):
        path = root / "images" / f"cls{k}.png"
        cv2.imwrite(str(path), _draw(leaf, (4, 4, 28, 28)))
        size = "1 1" if k % 2 else "0 0"
        (root / "labels" / f"cls{k}.txt").write_text(f"{names.index(leaf)} 0 0 {size}\n")
        classification.append(path)
    (root / "joint.tree").write_text("\n".join(TREE) + "\n")
    (root / "joint.names").write_text("\n".join(names) + "\n")
    (root / "joint.cfg").write_text(CFG_TEXT)
    (root / "train.txt").write_text("\n".join(map(str, detection + classification)) + "\n")
    data = root / "joint.data"
    data.write_text(f"classes={CLASSES}\ntrain={root}/train.txt\nbackup={root}/backup\nnames={root}/joint.names\n")
    return {"data": data, "cfg": root / "joint.cfg", "tree": root / "joint.tree",
            "detection": detection[0], "classification": classification[0]}


@pytest.fixture(scope="module")
def joint_set(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_joint_set(tmp_path_factory.mktemp("joint"))


def _loaded(net: Darknet, image: Path, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch of `image` as the trainer loads it (its DetectionLoader arguments for this head)."""
    head = net.layers[-1]
    loader = DetectionLoader(
        [image], lambda i: (SIZE, SIZE), 1, head.jitter, net.options.hue, net.options.saturation,
        net.options.exposure, head.max_boxes, workers=0, seed=seed, classes=head.classes,
        class_map=head.map, class_only=head.tree is not None,
    )
    _, images, truth = next(iter(loader))
    return images, truth


def _head_delta(net: Darknet, image: Path, seen: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(output, delta, first truth box) of the [region] for `image`, viewed (anchor, entry, row, column):
    the layer's input is the network's own forward, as in a training step."""
    head = net.layers[-1]
    images, truth = _loaded(net, image)
    with torch.no_grad():
        raw = net.forward_layers(images)[head.sources[0]]
    output, delta, _ = head.delta(raw, truth, seen)
    shape = (head.num, head.entries, *raw.shape[-2:])
    return output.view(shape), delta.view(shape), truth[0, 0]


def _hierarchy_probability(out: torch.Tensor, cls: int, parent: list[int]) -> torch.Tensor:
    """get_hierarchy_probability at every (anchor, row, column): the class's and its ancestors' outputs multiplied."""
    p = torch.ones_like(out[:, 0])
    while cls >= 0:
        p = p * out[:, 5 + cls]
        cls = parent[cls]
    return p


@pytest.fixture(scope="module")
def net(joint_set: dict[str, Path]) -> Darknet:
    torch.manual_seed(0)
    return Darknet(joint_set["cfg"])


def test_class_only_label_reaches_the_head_as_darknets_999999_box(net: Darknet, joint_set: dict[str, Path]) -> None:
    """correct_boxes: a `c 0 0 0 0` line is (999999, 999999, 999999, 999999, c), never flipped or cropped away."""
    _, truth = _loaded(net, joint_set["classification"])
    assert truth[0, 0].tolist() == [999999.0, 999999.0, 999999.0, 999999.0, 3.0]
    assert not truth[0, 1:].any()


@pytest.mark.parametrize("seen", [0, 20000], ids=["with_prior", "after_12800"])
def test_class_only_image_trains_one_anchors_classes_and_every_objectness(net: Darknet, joint_set: dict[str, Path], seen: int) -> None:
    """A class-only image: noobject delta at every box but the best, where objectness is 0 and the class
    entries get the tree delta along the class's path to the root; nothing else, not even the prior term."""
    head = net.layers[-1]
    out, delta, truth = _head_delta(net, joint_set["classification"], seen)
    tree = read_tree(joint_set["tree"])
    cls = int(truth[4])
    score = out[:, 4] * _hierarchy_probability(out, cls, tree.parent)
    best = np.unravel_index(int(score.flatten().argmax()), score.shape)  # Darknet: first maximum, `p > maxp`
    n, j, i = best

    assert not delta[:, :4].any(), "a class-only image has no coordinate (or prior) delta"
    expected_obj = head.noobject_scale * (0 - out[:, 4])
    expected_obj[n, j, i] = 0
    assert torch.equal(delta[:, 4], expected_obj)

    classes = delta[:, 5:]
    others = torch.ones_like(classes, dtype=torch.bool)
    others[n, :, j, i] = False
    assert not classes[others].any(), "class deltas at one anchor of one cell only"
    expected = torch.zeros(CLASSES)
    node = cls
    while node >= 0:  # delta_region_class with hier: the node's group toward 0, the node toward 1
        g = tree.group[node]
        group = slice(tree.group_offset[g], tree.group_offset[g] + tree.group_size[g])
        expected[group] = head.class_scale * (0 - out[n, 5:, j, i][group])
        expected[node] = head.class_scale * (1 - out[n, 5 + node, j, i])
        node = tree.parent[node]
    assert torch.allclose(classes[n, :, j, i], expected, atol=1e-7)
    assert expected[cls] > 0 and expected[tree.parent[cls]] > 0
    off_path = [k for k in range(CLASSES) if tree.group[k] not in (tree.group[cls], tree.group[tree.parent[cls]])]
    assert off_path and not classes[n, off_path, j, i].any()  # the other shape's leaves are left alone


def test_detection_image_trains_coordinates_at_its_box(net: Darknet, joint_set: dict[str, Path]) -> None:
    """A box label: coordinate deltas at the best anchor of the box's cell (after the 12800-image prior
    phase, only there) and the tree class delta there, the leaf and its parent pushed up."""
    out, delta, truth = _head_delta(net, joint_set["detection"], 20000)
    assert truth[0] < 1 and truth[4] == 2
    h, w = out.shape[-2:]
    j, i = int(truth[1] * h), int(truth[0] * w)
    coords = delta[:, :4].abs().sum(dim=1)
    assert coords[:, j, i].count_nonzero() == 1 and coords.count_nonzero() == 1
    n = int(coords[:, j, i].argmax())
    assert delta[n, 5 + 2, j, i] > 0 and delta[n, 5 + 0, j, i] > 0  # red_square and its parent square pushed up


def test_trainer_runs_the_mixed_list(joint_set: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """`detector train` on the combined list: both kinds of image go through the real training step,
    and every class-only image in it reaches the head with no coordinate delta."""
    seen_kinds = {"class_only": 0, "detection": 0}
    real = Region.delta

    def spy(self, raw, truth, seen, log=None):  # type: ignore[no-untyped-def]
        output, delta, cost = real(self, raw, truth, seen, log)
        d = delta.view(raw.shape[0], self.num, self.entries, *raw.shape[-2:])
        for b in range(raw.shape[0]):
            if truth[b, 0, 0] > 100000:
                seen_kinds["class_only"] += 1
                assert not d[b, :, :4].any() and int((d[b, :, 5:] != 0).any(dim=1).sum()) == 1  # one anchor of one cell
            else:
                seen_kinds["detection"] += 1
                assert d[b, :, :4].any()
        return output, delta, cost

    monkeypatch.setattr(Region, "delta", spy)
    final = train_detector(TrainRun(data=joint_set["data"], cfg=joint_set["cfg"], workers=0, quiet=True, seed=1, max_batches=2))
    assert final.is_file()
    assert seen_kinds["class_only"] and seen_kinds["detection"] and sum(seen_kinds.values()) == 8
    log = (final.parent / "joint_log.csv").read_text().splitlines()
    assert len(log) == 3 and all(np.isfinite(float(row.split(",")[2])) for row in log[1:])
