"""Darknet's detection data pipeline: .data files, labels, augmentation, loader.

There are no golden files for augmentation (it is random in Darknet), so the
vectorised pixel code is checked against line-by-line transliterations of
Darknet's C (`place_image`, `rgb_to_hsv`/`hsv_to_rgb`/`distort_image`, in
float32 like the C), and the geometry end to end: a box drawn into an
image must be found again, after the transform, where the truth says.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pydarknet.data import (BadSampleWarning, DataFile, DetectionLoader, augment_detection, label_path, read_labels, read_list, read_names,
                            read_training_labels)
from pydarknet.data.augment import correct_boxes, distort_image, fill_truth_detection, place_image
from pydarknet.errors import DarknetError

F32 = np.float32
ROOT = Path(__file__).resolve().parent.parent


# --- label path rule and label files -------------------------------------------------------


@pytest.mark.parametrize(
    "image, label",
    [
        ("/voc/VOCdevkit/VOC2007/JPEGImages/000001.jpg", "/voc/VOCdevkit/VOC2007/labels/000001.txt"),
        ("coco/images/train2014/COCO_1.jpg", "coco/labels/train2014/COCO_1.txt"),
        ("data/raw/a.png", "data/labels/a.txt"),
        ("x/images/b.JPEG", "x/labels/b.txt"),
        ("x/images/b.JPG", "x/labels/b.txt"),
        ("x/images/c.jpeg", "x/labels/c.txt"),
        ("x/images/d.bmp", "x/labels/d.txt"),
        # find_replace replaces the first occurrence only, anywhere in the path
        ("images/images/e.jpg", "labels/images/e.txt"),
        ("/data/drawings/images/f.jpg", "/data/dlabelsings/labels/f.txt"),
        ("/a.jpg.d/images/g.jpg", "/a.txt.d/labels/g.jpg"),
        # images -> labels first, so a JPEGImages folder under an images folder keeps its name
        ("images/JPEGImages/h.png", "labels/labels/h.txt"),
    ],
)
def test_label_path_follows_darknets_find_replace_chain(image: str, label: str) -> None:
    assert label_path(image) == Path(label)


def test_read_labels_parses_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("0 0.5 0.5 0.2 0.3\n\n  14 0.1 0.2 0.05 0.06  \r\n7 1 0 0.5 0.5")
    labels = read_labels(path)
    assert labels.dtype == np.float32 and labels.shape == (3, 5)
    np.testing.assert_allclose(labels[1], [14, 0.1, 0.2, 0.05, 0.06], rtol=1e-6)
    assert read_labels(path).shape == (3, 5)
    (tmp_path / "empty.txt").write_text("")
    assert read_labels(tmp_path / "empty.txt").shape == (0, 5)


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("0 .5 .5 .2 .2\n0 .5 .5 .2\n", 2, "4 fields"),
        ("0 .5 .5 .2 .2\n\n1.5 .5 .5 .2 .2\n", 3, "not a whole number"),
        ("-1 .5 .5 .2 .2\n", 1, "out of range"),
        ("2147483648 .5 .5 .2 .2\n", 1, "class 2147483648 out of range"),  # Darknet reads a C int
        ("3 .5 .5 .2 .2\n", 1, "out of range (classes=3)"),
        ("0 .5 nan .2 .2\n", 1, "y 'nan' is not a number"),
        ("0 .5 .5 w .2\n", 1, "w 'w' is not a number"),
    ],
)
@pytest.mark.parametrize("reader", [read_labels, read_training_labels])
def test_read_labels_names_file_and_line(tmp_path: Path, text: str, line: int, words: str, reader: Callable) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(DarknetError, match=rf"^{path}:{line}: .*{words}".replace("(", r"\(").replace(")", r"\)")):
        reader(path, classes=3)


def test_read_labels_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DarknetError, match="no such label file"):
        read_labels(tmp_path / "none.txt")


# --- .data, list and names files ------------------------------------------------------------


def test_data_file_of_darknet_resolves_against_its_parent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # not Darknet's root: names=data/coco.names is found next to cfg/
    data = DataFile.read(ROOT / "cfg" / "coco.data")
    assert data.classes == 80 and data.eval == "coco" and len(data.names) == 80 and data.names[0] == "person"
    assert data.names_path == ROOT / "data" / "coco.names"
    assert data.train == Path("/home/pjreddie/data/coco/trainvalno5k.txt")  # kept as written: not needed
    assert data.backup == Path("/home/pjreddie/backup/")
    nine = DataFile.read(ROOT / "cfg" / "combine9k.data")
    assert (nine.classes, len(nine.names), nine.eval, nine.results) == (9418, 9418, "imagenet", Path("results"))
    assert nine.map == Path("data/inet9k.map") and nine.top is None


def test_data_file_keys_and_errors(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "backup").mkdir()
    (tmp_path / "data" / "two.names").write_text("cat\ndog\n")
    (tmp_path / "cfg" / "train.txt").write_text("a.jpg\n\n  b.png \r\n")
    path = tmp_path / "cfg" / "two.data"
    path.write_text("classes = 2\ntrain = train.txt\nnames = data/two.names\nbackup = backup/\ntop=5\n")
    data = DataFile.read(path, need=("train",))
    assert data.train == tmp_path / "cfg" / "train.txt"
    assert data.names == ["cat", "dog"] and data.backup == tmp_path / "backup" and data.top == 5
    assert data.valid is None and data.eval is None
    assert read_list(data.train) == [Path("a.jpg"), Path("b.png")]

    with pytest.raises(DarknetError, match=r"two.data: needs 'valid='"):
        DataFile.read(path, need=("valid",))
    path.write_text("classes = 2\ntrain = nowhere.txt\nnames = data/two.names\n")
    with pytest.raises(DarknetError, match=r"two.data:2:\d+: \[data\] train=nowhere.txt: file not found \(tried nowhere.txt, .*cfg/nowhere.txt, .*/nowhere.txt\)"):
        DataFile.read(path, need=("train",))
    path.write_text("classes = 3\nnames = data/two.names\n")
    with pytest.raises(DarknetError, match=r"two.data:2:\d+: \[data\] names=data/two.names: 2 names for classes=3"):
        DataFile.read(path)
    path.write_text("classes = x\n")
    with pytest.raises(DarknetError, match=r"two.data:1:\d+: \[data\] classes: 'x' is not a whole number"):
        DataFile.read(path)
    with pytest.raises(DarknetError, match="no such list file"):
        read_list(tmp_path / "none.txt")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(DarknetError, match="no image paths"):
        read_list(tmp_path / "empty.txt")
    assert read_names(tmp_path / "data" / "two.names") == ["cat", "dog"]


# --- pixels: vectorised code against transliterations of the C ------------------------------


def c_place_image(im: np.ndarray, w: int, h: int, dx: int, dy: int, canvas: np.ndarray) -> None:
    """src/image.c place_image + bilinear_interpolate + get_pixel_extend, line by line."""
    c_, im_h, im_w = im.shape

    def extend(x: int, y: int, c: int) -> np.float32:
        return F32(0) if x < 0 or x >= im_w or y < 0 or y >= im_h else im[c, y, x]

    for c in range(c_):
        for y in range(h):
            for x in range(w):
                rx = F32(F32(x) / F32(w)) * F32(im_w)
                ry = F32(F32(y) / F32(h)) * F32(im_h)
                ix, iy = math.floor(rx), math.floor(ry)
                fx, fy = F32(rx - F32(ix)), F32(ry - F32(iy))
                one = F32(1)
                val = (one - fy) * (one - fx) * extend(ix, iy, c)
                val = val + fy * (one - fx) * extend(ix, iy + 1, c)
                val = val + (one - fy) * fx * extend(ix + 1, iy, c)
                val = val + fy * fx * extend(ix + 1, iy + 1, c)
                if 0 <= x + dx < canvas.shape[2] and 0 <= y + dy < canvas.shape[1]:
                    canvas[c, y + dy, x + dx] = val


@pytest.mark.parametrize("w, h, dx, dy", [(9, 8, 0, 0), (13, 6, -3, 2), (4, 3, 5, 4), (20, 17, -4, -5), (7, 5, 2, -1)])
def test_place_image_equals_darknets(w: int, h: int, dx: int, dy: int) -> None:
    rng = np.random.default_rng(w * 100 + h)
    im = rng.random((3, 5, 7), dtype=np.float32)
    ours = np.full((3, 8, 9), 0.5, dtype=np.float32)
    theirs = ours.copy()
    place_image(im, w, h, dx, dy, ours)
    c_place_image(im, w, h, dx, dy, theirs)
    np.testing.assert_array_equal(ours, theirs)


def c_distort_pixel(r: float, g: float, b: float, hue: float, sat: float, val: float) -> tuple[float, float, float]:
    """src/image.c rgb_to_hsv, scale_image_channel, the hue wrap, hsv_to_rgb, constrain_image."""
    r, g, b, hue, sat, val = map(F32, (r, g, b, hue, sat, val))
    mx, mn = max(r, g, b), min(r, g, b)
    delta = F32(mx - mn)
    v = mx
    with np.errstate(all="ignore"):
        if mx == 0:
            s = h = F32(0)
        else:
            s = F32(delta / mx)
            if r == mx:
                h = F32((g - b) / delta)
            elif g == mx:
                h = F32(2) + F32((b - r) / delta)
            else:
                h = F32(4) + F32((r - g) / delta)
            if h < 0:
                h = F32(h + F32(6))
            h = F32(float(h) / 6.0)
    s, v = F32(s * sat), F32(v * val)
    h = F32(h + hue)
    if h > 1:
        h = F32(h - F32(1))
    if h < 0:
        h = F32(h + F32(1))
    h = F32(F32(6) * h) if s != 0 else h
    if s == 0:
        out = (v, v, v)
    else:
        index = math.floor(h)
        f = F32(h - F32(index))
        one = F32(1)
        p, q, t = F32(v * (one - s)), F32(v * (one - s * f)), F32(v * (one - s * (one - f)))
        out = {0: (v, t, p), 1: (q, v, p), 2: (p, v, t), 3: (p, q, v), 4: (t, p, v)}.get(index, (v, p, q))
    return tuple(min(max(float(c), 0.0), 1.0) for c in out)


@pytest.mark.parametrize("hue, sat, val", [(0.0, 1.0, 1.0), (0.1, 1.5, 1.5), (-0.1, 1 / 1.5, 1.2), (0.5, 2.0, 0.5), (-0.45, 0.7, 0.8)])
def test_distort_image_equals_darknets(hue: float, sat: float, val: float) -> None:
    rng = np.random.default_rng(7)
    im = rng.random((3, 6, 7), dtype=np.float32)
    im[:, 0, 0] = 0  # black: max == 0
    im[:, 0, 1] = 0.5  # grey: hue 0/0 = NaN in Darknet, saturation 0
    im[:, 0, 2] = (0.25, 0.75, 0.75)  # ties between channels
    im[:, 0, 3] = (1.0, 0.0, 0.0)
    ours = distort_image(im, hue, sat, val)
    theirs = np.array(
        [[c_distort_pixel(*im[:, y, x], hue, sat, val) for x in range(7)] for y in range(6)], dtype=np.float32
    ).transpose(2, 0, 1)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-7)


# --- boxes ---------------------------------------------------------------------------------------


def test_correct_boxes_moves_clips_and_flips() -> None:
    boxes = np.array([[0.5, 0.5, 0.2, 0.4], [0.95, 0.1, 0.3, 0.3]], dtype=np.float32)
    # image scaled to half width, shifted right by a quarter (dx = -0.25 in Darknet's sign)
    moved = correct_boxes(boxes, -0.25, 0.0, 0.5, 1.0, False)
    np.testing.assert_allclose(moved[0], [0.5, 0.5, 0.1, 0.4], atol=1e-6)
    np.testing.assert_allclose(moved[1], [0.725, 0.125, 0.15, 0.25], atol=1e-6)  # top clipped at 0
    flipped = correct_boxes(boxes, -0.25, 0.0, 0.5, 1.0, True)
    np.testing.assert_allclose(flipped[:, 0], 1 - moved[:, 0], atol=1e-6)
    np.testing.assert_allclose(flipped[:, 1:], moved[:, 1:], atol=1e-6)


def test_fill_truth_cuts_then_drops_like_darknet() -> None:
    rng = np.random.default_rng(0)
    # 3 boxes, 2 of them pushed out of the image by the shift (w becomes 0 after clipping)
    labels = np.array([[5, 0.5, 0.5, 0.2, 0.2], [6, 0.05, 0.5, 0.05, 0.1], [7, 0.02, 0.5, 0.02, 0.1]], dtype=np.float32)
    truth = fill_truth_detection(labels, 30, 0.5, 0.0, 1.0, 1.0, False, rng)
    assert truth.shape == (30, 5)
    kept = truth[truth[:, 2] > 0]
    assert len(kept) == 1 and kept[0, 4] == 5 and np.all(truth[1:] == 0)
    np.testing.assert_allclose(kept[0, :4], [0.05, 0.5, 0.1, 0.2], atol=1e-6)  # left half cut off by the shift
    # Darknet cuts to max_boxes before dropping: with max 1, the one kept may be a dropped one
    counts = {int((fill_truth_detection(labels, 1, 0.5, 0.0, 1.0, 1.0, False, rng)[:, 2] > 0).sum()) for _ in range(50)}
    assert counts == {0, 1}


def draw_scene(rng: np.random.Generator, width: int, height: int, boxes: int) -> tuple[np.ndarray, np.ndarray]:
    """A black image with saturated rectangles, and their labels (class, x, y, w, h)."""
    image = np.zeros((3, height, width), dtype=np.float32)
    labels = []
    colours = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0)]
    for k in range(boxes):
        bw, bh = rng.integers(width // 8, width // 3), rng.integers(height // 8, height // 3)
        x0, y0 = rng.integers(0, width - bw), rng.integers(0, height - bh)
        image[:, y0 : y0 + bh, x0 : x0 + bw] = np.array(colours[k], dtype=np.float32)[:, None, None]
        labels.append([k, (x0 + bw / 2) / width, (y0 + bh / 2) / height, bw / width, bh / height])
    return image, np.array(labels, dtype=np.float32)


@pytest.mark.parametrize("net_w, net_h", [(96, 96), (128, 64)])
def test_augmented_boxes_are_where_the_truth_says(net_w: int, net_h: int) -> None:
    """Each drawn rectangle, found by its colour after augmentation, matches its truth row."""
    rng = np.random.default_rng(net_w + net_h)
    flips = set()
    for trial in range(40):
        image, labels = draw_scene(rng, int(rng.integers(60, 200)), int(rng.integers(60, 200)), 1)
        out, truth = augment_detection(image, labels, net_w, net_h, 0.3, 0.1, 1.5, 1.5, True, 30, rng)
        assert out.shape == (3, net_h, net_w) and truth.shape == (30, 5) and out.dtype == np.float32
        assert 0 <= out.min() and out.max() <= 1
        # chroma: the rectangle stays saturated (any hue); black background and grey padding have none
        chroma = out.max(axis=0) - out.min(axis=0)
        rows, cols = np.nonzero(chroma > 0.25)
        if truth[0, 2] == 0:
            assert rows.size == 0  # box dropped: nothing of it visible
            continue
        x, y, w, h = truth[0, :4]
        left, right, top, bottom = (x - w / 2) * net_w, (x + w / 2) * net_w, (y - h / 2) * net_h, (y + h / 2) * net_h
        assert truth[0, 4] == 0 and np.all(truth[1:] == 0)
        # place_image truncates size and offset to whole pixels: up to 2 pixels of slack per edge
        assert abs(cols.min() - left) <= 2 and abs(cols.max() + 1 - right) <= 2, (trial, cols.min(), cols.max(), left, right)
        assert abs(rows.min() - top) <= 2 and abs(rows.max() + 1 - bottom) <= 2, (trial, rows.min(), rows.max(), top, bottom)
        flips.add(bool(np.argmax(chroma.sum(axis=0)) > net_w / 2))
    assert flips == {True, False}


def test_augmentation_keeps_the_picture_and_its_aspect_without_jitter() -> None:
    """jitter 0, no colour change: the image is scaled to fit (longer side = net side), nothing else."""
    rng = np.random.default_rng(3)
    image = rng.random((3, 50, 100), dtype=np.float32)
    out, truth = augment_detection(image, np.zeros((0, 5), np.float32), 80, 80, 0.0, 0.0, 1.0, 1.0, False, 5, rng)
    grey = np.all(np.abs(out - 0.5) < 1e-6, axis=0)
    picture_rows = np.nonzero(~grey.all(axis=1))[0]
    assert picture_rows.size == 40 and np.all(np.diff(picture_rows) == 1)  # 100x50 -> 80x40
    assert np.all(truth == 0)


def test_jitter_draws_darknets_aspect_range_and_placements() -> None:
    """new_ar = (ow + U(-dw, dw)) / (oh + U(-dh, dh)); the longer side fills the net; U placement."""
    rng = np.random.default_rng(11)
    image = np.zeros((3, 40, 40), dtype=np.float32)  # black on the grey canvas
    ratios, lefts = [], []
    for _ in range(300):
        out, _ = augment_detection(image, np.zeros((0, 5), np.float32), 64, 64, 0.3, 0.0, 1.0, 1.0, False, 1, rng)
        rows, cols = np.nonzero(out[0] < 0.25)
        width, height = cols.max() + 1 - cols.min(), rows.max() + 1 - rows.min()
        assert max(width, height) == 64
        ratios.append(width / height)
        lefts.append(cols.min())
    ratios = np.array(ratios)
    assert ratios.min() >= 0.7 / 1.3 - 0.02 and ratios.max() <= 1.3 / 0.7 + 0.04
    assert ratios.min() < 0.65 and ratios.max() > 1.5
    assert min(lefts) == 0 and max(lefts) > 15


def test_max_boxes_and_truth_layout() -> None:
    rng = np.random.default_rng(1)
    image = rng.random((3, 40, 40), dtype=np.float32)
    labels = np.array([[k % 3, 0.1 + 0.02 * k, 0.5, 0.05, 0.05] for k in range(40)], dtype=np.float32)
    _, truth = augment_detection(image, labels, 64, 64, 0.2, 0.0, 1.0, 1.0, True, 30, rng)
    assert truth.shape == (30, 5) and np.all(truth[:, 2] > 0)  # 40 boxes, the first 30 after the shuffle
    _, truth = augment_detection(image, labels[:3], 64, 64, 0.2, 0.0, 1.0, 1.0, True, 30, rng)
    assert np.all(truth[:3, 2] > 0) and np.all(truth[3:] == 0)
    assert sorted(truth[:3, 4].tolist()) == [0.0, 1.0, 2.0]


# --- the loader --------------------------------------------------------------------------


@pytest.fixture()
def tiny_dataset(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    paths = []
    for k in range(4):
        image, labels = draw_scene(rng, 48 + 8 * k, 40, 2)
        path = tmp_path / "images" / f"good{k}.png"
        cv2.imwrite(str(path), (image.transpose(1, 2, 0)[:, :, ::-1] * 255).astype(np.uint8))
        np.savetxt(label_path(path), labels, fmt="%d %.6f %.6f %.6f %.6f")
        paths.append(path)
    bad_label = tmp_path / "images" / "badlabel.png"
    cv2.imwrite(str(bad_label), np.zeros((20, 20, 3), np.uint8))
    label_path(bad_label).write_text("0 0.5 0.5 0.2 0.2\n0 0.5 0.5\n")
    broken = tmp_path / "images" / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    label_path(broken).write_text("0 0.5 0.5 0.2 0.2\n")
    unlabelled = tmp_path / "images" / "unlabelled.png"
    cv2.imwrite(str(unlabelled), np.zeros((20, 20, 3), np.uint8))
    return paths + [bad_label, broken, unlabelled]


def sizes(i: int) -> tuple[int, int]:
    return (64, 64) if i % 2 == 0 else (96, 64)


def take(loader: DetectionLoader, n: int) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    out = []
    for item in loader:
        out.append(item)
        if len(out) == n:
            return out
    raise AssertionError("the loader ended")


def test_loader_batches_skip_bad_files_and_are_reproducible(tiny_dataset: list[Path]) -> None:
    args = dict(batch_size=3, jitter=0.2, hue=0.1, saturation=1.5, exposure=1.5, max_boxes=30, seed=5, classes=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = take(DetectionLoader(tiny_dataset, sizes, workers=0, **args), 6)
    for index, (i, images, truth) in enumerate(first):
        assert i == index and images.dtype == torch.float32 and truth.shape == (3, 30, 5)
        assert images.shape == (3, 3, 64, sizes(i)[0])
        assert torch.all(truth[:, 2:] == 0) and torch.all(truth[:, :, 4] < 2)  # good images only: 2 boxes each
        assert torch.all(truth[:, 0, 2] > 0) or i % 2  # a 64x64 net shows the whole image: nothing dropped
    messages = [str(w.message) for w in caught if issubclass(w.category, BadSampleWarning)]
    assert len(messages) == len(set(messages)) == 3, messages  # each bad file once
    assert any("badlabel.txt:2: expected 'class x y w h'" in m for m in messages)
    assert any("broken.jpg: cannot decode image" in m for m in messages)
    assert any("unlabelled.txt: no such label file" in m for m in messages)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadSampleWarning)
        resumed = take(DetectionLoader(tiny_dataset, sizes, workers=2, start_batch=2, **args), 4)
        other_rank = take(DetectionLoader(tiny_dataset, sizes, workers=0, rank=1, **args), 1)
    for (i, images, truth), (j, images2, truth2) in zip(first[2:], resumed):
        assert i == j and torch.equal(images, images2) and torch.equal(truth, truth2)
    assert not torch.equal(first[0][1], other_rank[0][1])


def test_loader_gives_up_on_a_list_of_bad_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"")
    (tmp_path / "broken.txt").write_text("")
    loader = DetectionLoader([broken], sizes, 2, 0.2, 0, 1, 1, 30, workers=0, seed=0)
    with warnings.catch_warnings(record=True), pytest.raises(DarknetError, match="unusable images in a row"):
        take(loader, 1)
