#!/usr/bin/env python3
"""Synthetic shapes datasets in Darknet's formats, deterministic by seed.

usage:
  python tools/make_shapes.py OUT_DIR --seed 0 --train 2000 --valid 200 [--size-range 160 480]
  python tools/make_shapes.py OUT_DIR --classify --seed 0 --train 3000 --valid 300
  python tools/make_shapes.py OUT_DIR --hierarchy --seed 0 --train 2000 --class-only 2000 --valid 300
  python tools/make_shapes.py data --demo --seed 7        # data/shapes-demo.jpg + .txt

Six classes (`CLASSES`): circle, square, triangle, star, cross, ring.  Squares,
triangles, stars and crosses are filled or outlined; a circle is always filled
and a ring is an annulus, so an outlined circle never stands for a ring.  Every
shape has a random size (12%-50% of the image's short side), aspect (0.75-1.33),
rotation and colour (chosen to contrast with what lies under it), over one of
four backgrounds (smooth noise, a gradient, stripes/checks, a blurred crop of a
photograph from `tests/golden/images/`), with unlabelled clutter (thin lines,
zigzags, open arcs) under the shapes and images of varied size and aspect.

Occlusion rule: shapes are drawn one over another; a new shape is placed only
if every shape already drawn keeps at least `MIN_VISIBLE` (70%) of its pixels
visible, otherwise another position is tried (and the shape is dropped after
`PLACEMENT_TRIES`).  So every drawn shape is labelled, and every label's shape
is at least 70% visible.  A label's box is the tight box of the whole shape's
pixels (visible or not), as VOC labels occluded objects.

Detection set (Darknet's `detector train` layout): `images/{train,valid}/N.jpg`,
`labels/{train,valid}/N.txt` (`class cx cy w h`, relative) and the same beside
each image (`images/{train,valid}/N.txt`, where AlexeyAB's Darknet looks), `train.txt`,
`valid.txt` (absolute image paths), `shapes.names`, `shapes.data`, `backup/`.
Darknet finds a label file by rewriting the image path (`fill_truth_detection`,
first "images" -> "labels", ".jpg" -> ".txt"...), so OUT_DIR itself must not
contain those words; the generator checks that every image maps to its label.

Classification set (`--classify`, Darknet's `classifier train`):
`{train,valid}/CLASS/N.png` crops of one shape, `train.list`, `valid.list`,
`shapes.labels`, `shapes.names`, `shapes.data` (top=2).  Darknet's classifier
takes as class every label that occurs in the image path (`fill_truth`:
strstr), so OUT_DIR must not contain a class name; the generator checks that
each path holds exactly its own class.

Hierarchy set (`--hierarchy`, YOLO9000's joint training as Darknet's
`combine9k.data`): a WordTree of the six shapes (roots, `parent -1`) each with
three colour leaves `red_<shape>`, `green_<shape>`, `blue_<shape>` (`LEAVES`),
24 nodes, written as `shapes9k.tree` (`name parent_index`, src/tree.c
read_tree; parents first, siblings consecutive) and `shapes9k.names` in the
same order.  The leaf split: leaf (shape s, colour c) is class-only iff
c == s mod 3 (red_circle, green_square, blue_triangle, red_star, green_cross,
blue_ring; `CLASS_ONLY`), every other leaf is boxed.  Every shape is drawn in
its leaf's colour over a desaturated background, so the colour is visible.
  - `images/train/N.jpg` (`train-det.txt`): detection images whose shapes are
    all boxed leaves, each labelled with its leaf; class-only leaves are never
    drawn there (so no object goes unlabelled).  Image N's first shape is
    boxed leaf N mod 12.
  - `images/classify/N.jpg` (`train-cls.txt`): one shape of class-only leaf
    N mod 6, at the detection images' shape sizes, its label file the one
    line `leaf 0 0 0 0` (data.c correct_boxes: x == 0 and y == 0 make a
    class-only truth).  Not a large centred crop: Darknet's class-only
    branch (region_layer.c) pushes objectness to 0 at every other cell,
    which on an object filling the image teaches that the leaf is no object.
  - `train.txt`: both lists, detection first (Darknet picks at random).
  - `images/valid/N.jpg` (`valid.txt`): detection images of every leaf, every
    shape boxed; image N's first shape is leaf N mod 18, so `--valid 18`
    or more covers every leaf.
  - `shapes9k.data` (classes=24, train, valid, names, backup) for
    `pydarknet detector train OUT/shapes9k.data cfg/yolo9000-shapes.cfg
    BACKBONE.conv.9` (docs/yolo9000-joint-training.md: the recipe);
    the cfg reads the same tree from `data/shapes9k.tree`.
  - `--demo --hierarchy`: `shapes9k-demo.jpg` (256x192, any leaves) and its labels.

Each image has its own random stream (seed, split, index), so the files do not
depend on the other counts nor on `--jobs`.  Anchors for a cfg come from
`pydarknet anchors OUT/shapes.data --cfg CFG` (the paper's IoU k-means).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydarknet.data.labels import label_path  # noqa: E402
from pydarknet.errors import DarknetError  # noqa: E402

CLASSES = ("circle", "square", "triangle", "star", "cross", "ring")
OUTLINABLE = {"square", "triangle", "star", "cross"}
MIN_VISIBLE = 0.7
PLACEMENT_TRIES = 8
SIZE_FRACTION = (0.12, 0.5)  # shape size / image short side
ASPECT = (0.75, 1.33)
MIN_CONTRAST = 90.0  # RGB distance between a shape and what lies under it
PHOTOS = ROOT / "tests" / "golden" / "images"
JPEG_QUALITY = 92
SPLITS = {"train": 0, "valid": 1}
HIER_SPLITS = {"train": 3, "classify": 4, "valid": 5}  # 2 and 6: the demo images
# The hierarchy: each shape's colour leaves, HSV hue centres in OpenCV's 0-180 units.
COLOURS = {"red": 0, "green": 60, "blue": 120}
LEAVES = tuple((s, c) for s in range(len(CLASSES)) for c in range(len(COLOURS)))  # tree order after the shapes
CLASS_ONLY = tuple(leaf for leaf in LEAVES if leaf[1] == leaf[0] % len(COLOURS))
BOXED = tuple(leaf for leaf in LEAVES if leaf not in CLASS_ONLY)
DESATURATE = 0.3  # hierarchy backgrounds keep 30% of their colour, so a shape's colour stands out
TREE_NAME = "shapes9k"
SUB = 16  # cv2 drawing with shift=4: coordinates in 1/16 pixel


@dataclass
class Shape:
    """One drawn shape: class index, colour (BGR), its whole mask and tight box."""

    cls: int
    color: tuple[int, int, int]
    mask: np.ndarray  # (H, W) bool, every pixel of the shape, occluded or not
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 inclusive
    label: int | None = None  # the class written to the label file, if not `cls` (a tree node)

    def label_line(self, width: int, height: int) -> str:
        """Darknet's label line: `class cx cy w h`, relative to the image."""
        x0, y0, x1, y1 = self.box
        return (
            f"{self.cls if self.label is None else self.label} {(x0 + x1 + 1) / 2 / width:.6f} {(y0 + y1 + 1) / 2 / height:.6f} "
            f"{(x1 - x0 + 1) / width:.6f} {(y1 - y0 + 1) / height:.6f}"
        )


@dataclass
class Scene:
    """A rendered image (BGR uint8), its shapes and which shape owns each pixel (-1: none)."""

    image: np.ndarray
    shapes: list[Shape]
    owner: np.ndarray

    def label_text(self) -> str:
        h, w = self.image.shape[:2]
        return "".join(s.label_line(w, h) + "\n" for s in self.shapes)


# --- shape outlines (unit frame, radius ~1) -------------------------------------------


def _regular(n: int, radius: float = 1.0, phase: float = -math.pi / 2) -> np.ndarray:
    angles = phase + np.arange(n) * 2 * math.pi / n
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def unit_polygon(name: str, rng: np.random.Generator) -> np.ndarray:
    """The outline of a class in a unit frame, (N, 2)."""
    if name in ("circle", "ring"):
        return _regular(72)
    if name == "square":
        return np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    if name == "triangle":
        return _regular(3)
    if name == "star":
        star = _regular(10)
        star[1::2] *= rng.uniform(0.38, 0.5)
        return star
    if name == "cross":
        t = rng.uniform(0.28, 0.4)  # half the arm's thickness
        return np.array([[-t, -1], [t, -1], [t, -t], [1, -t], [1, t], [t, t], [t, 1], [-t, 1], [-t, t], [-1, t], [-1, -t], [-t, -t]], dtype=float)
    raise ValueError(name)


def _transform(points: np.ndarray, rx: float, ry: float, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    scaled = points * np.array([rx, ry])
    return scaled @ np.array([[c, s], [-s, c]])


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(points * SUB).astype(np.int32).reshape(-1, 1, 2)


def shape_mask(name: str, filled: bool, points: np.ndarray, thickness: int, inner: float, size: tuple[int, int]) -> np.ndarray:
    """Rasterise a shape's outline `points` (pixels) into a bool (H, W) mask.

    A ring is the outline filled minus the outline scaled by `inner` about its
    centre; an outlined shape is a closed polyline of `thickness` pixels.
    """
    h, w = size
    mask = np.zeros((h, w), np.uint8)
    if filled:
        cv2.fillPoly(mask, [_fixed(points)], 1, cv2.LINE_8, shift=4)
    else:
        cv2.polylines(mask, [_fixed(points)], True, 1, thickness, cv2.LINE_8, shift=4)
    if name == "ring":
        centre = points.mean(axis=0)
        cv2.fillPoly(mask, [_fixed(centre + (points - centre) * inner)], 0, cv2.LINE_8, shift=4)
    return mask.astype(bool)


# --- backgrounds and clutter ----------------------------------------------------------


def _random_color(rng: np.random.Generator) -> np.ndarray:
    hsv = np.array([[[rng.integers(0, 180), rng.integers(60, 256), rng.integers(50, 256)]]], np.uint8)
    if rng.random() < 0.15:  # greys, black and white
        hsv[..., 1] = 0
        hsv[..., 2] = rng.integers(0, 256)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


@lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    """The photographs behind some backgrounds: without them a seed would give another dataset, so they are required."""
    photos = tuple(cv2.imread(str(p), cv2.IMREAD_COLOR) for p in sorted(PHOTOS.glob("*.png")))
    if not photos:
        raise DarknetError(f"{PHOTOS}: no background photographs; run tools/make_shapes.py from a pydarknet checkout")
    return photos


def _smooth_noise(rng: np.random.Generator, w: int, h: int, cells: int, channels: int) -> np.ndarray:
    grid = rng.random((cells, cells, channels)).astype(np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return out.reshape(h, w, channels)


def background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A float32 (H, W, 3) BGR background: noise, gradient, texture or blurred photo."""
    kinds = ["noise", "gradient", "texture", "photo"]
    kind = kinds[rng.integers(len(kinds))]
    c0, c1 = _random_color(rng), _random_color(rng)
    if kind == "photo":
        photo = _photos()[rng.integers(len(_photos()))]
        ph, pw = photo.shape[:2]
        cw, ch = int(pw * rng.uniform(0.3, 1.0)), int(ph * rng.uniform(0.3, 1.0))
        x, y = rng.integers(0, pw - cw + 1), rng.integers(0, ph - ch + 1)
        crop = cv2.resize(photo[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
        sigma = rng.uniform(2.0, 5.0)
        return cv2.GaussianBlur(crop, (0, 0), sigma)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "gradient":
        a = rng.uniform(0, 2 * math.pi)
        t = xs * math.cos(a) + ys * math.sin(a)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    elif kind == "texture":
        a, f = rng.uniform(0, math.pi), rng.uniform(0.05, 0.4)
        u = xs * math.cos(a) + ys * math.sin(a)
        v = -xs * math.sin(a) + ys * math.cos(a)
        t = np.sin(u * f) * (np.sin(v * f) if rng.random() < 0.5 else 1.0)
        t = (t + 1) / 2 * rng.uniform(0.3, 0.8)
    else:
        t = _smooth_noise(rng, w, h, int(rng.integers(3, 12)), 1)[..., 0]
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    return img + (_smooth_noise(rng, w, h, 24, 3) - 0.5) * rng.uniform(0, 50)


def draw_clutter(img: np.ndarray, rng: np.random.Generator) -> None:
    """Unlabelled distractors, drawn in place: thin lines, zigzags and open arcs."""
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(0, 7))):
        color = tuple(float(c) for c in _random_color(rng))
        thick = int(rng.integers(1, 4))
        kind = rng.integers(3)
        if kind == 0:
            p = _fixed(rng.random((2, 2)) * [w, h])
            cv2.line(img, tuple(p[0, 0]), tuple(p[1, 0]), color, thick, cv2.LINE_AA, shift=4)
        elif kind == 1:
            start = rng.random(2) * [w, h]
            walk = start + np.cumsum(rng.normal(0, 0.12 * min(w, h), (int(rng.integers(3, 7)), 2)), axis=0)
            cv2.polylines(img, [_fixed(walk)], False, color, thick, cv2.LINE_AA, shift=4)
        else:
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            axes = (int(rng.integers(5, max(6, w // 4))), int(rng.integers(5, max(6, h // 4))))
            start = float(rng.uniform(0, 360))
            cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), start, start + rng.uniform(30, 150), color, thick, cv2.LINE_AA)


# --- scenes ---------------------------------------------------------------------------


def _leaf_color(rng: np.random.Generator, colour: int) -> np.ndarray:
    """A saturated BGR colour of hue `COLOURS`[colour] (+-7 in OpenCV's 0-180 units)."""
    hue = (list(COLOURS.values())[colour] + int(rng.integers(-7, 8))) % 180
    hsv = np.array([[[hue, rng.integers(170, 256), rng.integers(130, 256)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _place_shape(img: np.ndarray, owner: np.ndarray, shapes: list[Shape], rng: np.random.Generator, cls: int, size_px: float, centred: bool, colour: int | None = None) -> bool:
    """Draw one shape of class `cls` somewhere it occludes nothing too much; False if no room.

    With `colour` (an index of `COLOURS`) the shape has that hue and is labelled
    with its leaf's tree index; never black or white then.
    """
    h, w = owner.shape
    name = CLASSES[cls]
    filled = name not in OUTLINABLE or rng.random() < 0.6
    aspect = math.exp(rng.uniform(math.log(ASPECT[0]), math.log(ASPECT[1])))
    rx, ry = size_px / 2 * math.sqrt(aspect), size_px / 2 / math.sqrt(aspect)
    points = _transform(unit_polygon(name, rng), rx, ry, rng.uniform(0, 2 * math.pi))
    thickness = max(2, int(round(size_px * rng.uniform(0.06, 0.12))))
    inner = rng.uniform(0.45, 0.7)
    pad = (0 if filled else thickness / 2) + 1
    lo, hi = points.min(axis=0) - pad, points.max(axis=0) + pad
    room = np.array([w, h]) - (hi - lo)
    if (room < 0).any():
        return False
    areas = np.array([s.mask.sum() for s in shapes], np.int64)
    for _ in range(PLACEMENT_TRIES):
        if centred:
            offset = -lo + room * rng.uniform(0.35, 0.65, 2)
        else:
            offset = -lo + room * rng.random(2)
        mask = shape_mask(name, filled, points + offset, thickness, inner, (h, w))
        if not mask.any():
            continue
        covered = owner[mask]
        lost = np.bincount(covered[covered >= 0], minlength=len(shapes))
        visible = np.bincount(owner[owner >= 0], minlength=len(shapes))
        if len(shapes) and ((visible - lost) < MIN_VISIBLE * areas).any():
            continue
        under = img[mask].mean(axis=0)
        if colour is None:
            colors = [_random_color(rng) for _ in range(6)]
        else:
            colors = [_leaf_color(rng, colour) for _ in range(6)]
        color = max(colors, key=lambda c: float(np.linalg.norm(c - under)))
        if colour is None and np.linalg.norm(color - under) < MIN_CONTRAST:
            color = np.where(under > 127, 0.0, 255.0).astype(np.float32)
        img[mask] = color
        owner[mask] = len(shapes)
        ys, xs = np.nonzero(mask)
        box = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
        label = None if colour is None else tree_index(cls, colour)
        shapes.append(Shape(cls, tuple(int(c) for c in color), mask, box, label))
        return True
    return False


def _finish(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Camera-ish degradation: a slight blur, pixel noise, then uint8."""
    sigma = rng.uniform(0, 0.8)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = img + rng.normal(0, rng.uniform(0, 6), img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _canvas(rng: np.random.Generator, w: int, h: int, desaturate: bool) -> tuple[np.ndarray, np.ndarray, list[Shape]]:
    """A background with clutter (washed out with `desaturate`, so that a leaf's colour stands out), float32,
    an empty owner map and no shapes yet."""
    img = background(rng, w, h).astype(np.float32)
    draw_clutter(img, rng)
    return (_desaturated(img) if desaturate else img), np.full((h, w), -1, np.int16), []


def _desaturated(img: np.ndarray) -> np.ndarray:
    grey = img.mean(axis=2, keepdims=True)
    return grey + (img - grey) * DESATURATE


def _scene_shape_size(rng: np.random.Generator, short: int) -> float:
    """A detection scene's shape size in pixels: log-uniform SIZE_FRACTION of the image's short side."""
    lo, hi = SIZE_FRACTION
    return short * math.exp(rng.uniform(math.log(lo), math.log(hi)))


def render_scene(rng: np.random.Generator, w: int, h: int, n_shapes: int) -> Scene:
    """An image with up to `n_shapes` labelled shapes (fewer if they do not fit)."""
    img, owner, shapes = _canvas(rng, w, h, desaturate=False)
    for _ in range(n_shapes):
        size = _scene_shape_size(rng, min(w, h))
        _place_shape(img, owner, shapes, rng, int(rng.integers(len(CLASSES))), size, centred=False)
    return Scene(_finish(img, rng), shapes, owner)


def render_crop(rng: np.random.Generator, side: int, cls: int) -> Scene:
    """A classification crop: one shape of class `cls` filling 45-85% of a square image."""
    img, owner, shapes = _canvas(rng, side, side, desaturate=False)
    size = side * rng.uniform(0.45, 0.85)
    while not _place_shape(img, owner, shapes, rng, cls, size, centred=True):
        size *= 0.9  # rotated corners did not fit
    return Scene(_finish(img, rng), shapes, owner)


def render_leaf_scene(rng: np.random.Generator, w: int, h: int, n_shapes: int, leaves: tuple[tuple[int, int], ...], first: tuple[int, int]) -> Scene:
    """A hierarchy image (detection, class-only or demo): up to `n_shapes` shapes of `leaves` (the first one `first`) over a desaturated background."""
    img, owner, shapes = _canvas(rng, w, h, desaturate=True)
    for k in range(n_shapes):
        size = _scene_shape_size(rng, min(w, h))
        cls, colour = first if k == 0 else leaves[int(rng.integers(len(leaves)))]
        while not _place_shape(img, owner, shapes, rng, cls, size, centred=False, colour=colour) and k == 0:
            size *= 0.9  # the first shape always fits: it alone makes the leaf's quota
    return Scene(_finish(img, rng), shapes, owner)


def image_size(rng: np.random.Generator, size_range: tuple[int, int]) -> tuple[int, int]:
    """Width and height in `size_range`, aspect ratio between 0.6 and 1.67."""
    lo, hi = size_range
    w = int(rng.integers(lo, hi + 1))
    h = int(np.clip(round(w * math.exp(rng.uniform(math.log(0.6), math.log(1.67)))), lo, hi))
    return w, h


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of one image: independent of every other image."""
    return np.random.default_rng([seed, SPLITS[split], index])


def detection_scene(seed: int, split: str, index: int, size_range: tuple[int, int]) -> Scene:
    rng = scene_rng(seed, split, index)
    w, h = image_size(rng, size_range)
    return render_scene(rng, w, h, int(rng.integers(1, 7)))


def classification_scene(seed: int, split: str, index: int, size_range: tuple[int, int]) -> Scene:
    rng = scene_rng(seed, split, index)
    return render_crop(rng, int(rng.integers(size_range[0], size_range[1] + 1)), index % len(CLASSES))


def tree_lines() -> list[str]:
    """The hierarchy's tree file lines, `name parent_index`: the shapes (roots), then each shape's colour leaves."""
    leaves = [f"{list(COLOURS)[c]}_{CLASSES[s]} {s}" for s, c in LEAVES]
    return [f"{name} -1" for name in CLASSES] + leaves


def tree_index(cls: int, colour: int) -> int:
    """The tree node (and class index) of shape `cls` in colour `colour`."""
    return len(CLASSES) + cls * len(COLOURS) + colour


def hierarchy_scene(seed: int, split: str, index: int, size_range: tuple[int, int]) -> Scene:
    """Image `index` of a hierarchy split: "train" (boxed leaves), "classify" (one class-only leaf), "valid" (every leaf)."""
    rng = np.random.default_rng([seed, HIER_SPLITS[split], index])
    w, h = image_size(rng, size_range)
    if split == "classify":
        leaf = CLASS_ONLY[index % len(CLASS_ONLY)]
        return render_leaf_scene(rng, w, h, 1, (leaf,), leaf)
    leaves = BOXED if split == "train" else LEAVES
    return render_leaf_scene(rng, w, h, int(rng.integers(1, 7)), leaves, leaves[index % len(leaves)])


# --- files ----------------------------------------------------------------------------


def encode(image: np.ndarray, suffix: str) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if suffix == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, data = cv2.imencode(suffix, image, params)
    assert ok
    return data.tobytes()


def darknet_class_labels(image_path: str, labels: tuple[str, ...] = CLASSES) -> list[str]:
    """The labels Darknet's classifier gives an image: those in its path (`fill_truth`, strstr)."""
    return [label for label in labels if label in image_path]


def write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary name and a rename, so no file is ever half-written.

    Unlike `pydarknet.weights.write_atomic`: no fsync (thousands of small
    files) and the umask's permissions (mkstemp's would be 0600).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_text(path: Path, text: str) -> None:
    write_atomic(path, text.encode())


def _image_path(out: Path, split: str, index: int) -> Path:
    """`images/SPLIT/NNNNNN.jpg` of a detection-layout set; its labels are at Darknet's label path `labels/SPLIT/NNNNNN.txt`."""
    return out / "images" / split / f"{index:06d}.jpg"


def _write_labelled(out: Path, split: str, index: int, image: np.ndarray, labels: str) -> None:
    """The image, its labels where pjreddie's Darknet looks (`labels/SPLIT/`) and where AlexeyAB's does (beside
    the image: its `replace_image_to_label` rewrites only COCO's and VOC's folder names)."""
    image_path = _image_path(out, split, index)
    write_atomic(image_path, encode(image, ".jpg"))
    _write_text(out / "labels" / split / f"{index:06d}.txt", labels)
    _write_text(image_path.with_suffix(".txt"), labels)


def _detection_job(job: tuple[Path, int, str, int, tuple[int, int]]) -> None:
    out, seed, split, index, size_range = job
    scene = detection_scene(seed, split, index, size_range)
    _write_labelled(out, split, index, scene.image, scene.label_text())


def _classification_job(job: tuple[Path, int, str, int, tuple[int, int]]) -> None:
    out, seed, split, index, size_range = job
    scene = classification_scene(seed, split, index, size_range)
    name = CLASSES[scene.shapes[0].cls]
    write_atomic(out / split / name / f"{index:05d}.png", encode(scene.image, ".png"))


def _hierarchy_job(job: tuple[Path, int, str, int, tuple[int, int]]) -> None:
    out, seed, split, index, size_range = job
    scene = hierarchy_scene(seed, split, index, size_range)
    if split == "classify":
        text = f"{scene.shapes[0].label} 0 0 0 0\n"  # class only: no box
    else:
        text = scene.label_text()
    _write_labelled(out, split, index, scene.image, text)


def _run(jobs: list, fn, workers: int) -> None:
    if workers <= 1:
        for job in jobs:
            fn(job)
        return
    with ProcessPoolExecutor(workers) as pool:
        for _ in pool.map(fn, jobs, chunksize=16):
            pass


def _check_out_dir(out: Path) -> Path:
    out = out.resolve()
    if out.exists() and not out.is_dir():
        raise DarknetError(f"{out}: exists and is not a directory")
    return out


def _image_and_label_folders(out: Path, splits: Iterable[str]) -> None:
    """`images/SPLIT`, `labels/SPLIT` and `backup/` in `out`, once Darknet's label path of an image in
    `images/SPLIT` is checked to be in `labels/SPLIT` (it rewrites the first 'images', 'raw'... anywhere)."""
    for split in splits:
        probe = str(_image_path(out, split, 0))
        if str(label_path(probe)) != str(out / "labels" / split / "000000.txt"):
            raise DarknetError(f"{out}: Darknet would look for labels at {label_path(probe)} (it rewrites the first 'images', 'raw'... in the path); choose a directory without those words")
    for split in splits:
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    (out / "backup").mkdir(exist_ok=True)


def _image_list(out: Path, split: str, n: int) -> str:
    """Darknet's list file of a split: its `n` image paths, one per line."""
    return "".join(f"{_image_path(out, split, i)}\n" for i in range(n))


def _write_detection_data(out: Path, stem: str, names: list[str]) -> Path:
    """`STEM.names` and `STEM.data` (classes, train.txt, valid.txt, names, backup/) in `out`; returns the .data path."""
    _write_text(out / f"{stem}.names", "".join(name + "\n" for name in names))
    data = f"classes={len(names)}\ntrain={out / 'train.txt'}\nvalid={out / 'valid.txt'}\nnames={out / f'{stem}.names'}\nbackup={out / 'backup'}\n"
    _write_text(out / f"{stem}.data", data)
    return out / f"{stem}.data"


def make_detection_set(out: str | Path, seed: int, n_train: int, n_valid: int, size_range: tuple[int, int] = (160, 480), workers: int = 1) -> Path:
    """Write the detection set into `out`; returns the path of `shapes.data`."""
    out = _check_out_dir(Path(out))
    counts = {"train": n_train, "valid": n_valid}
    _image_and_label_folders(out, counts)
    jobs = [(out, seed, split, i, tuple(size_range)) for split, n in counts.items() for i in range(n)]
    _run(jobs, _detection_job, workers)
    for split, n in counts.items():
        _write_text(out / f"{split}.txt", _image_list(out, split, n))
    return _write_detection_data(out, "shapes", list(CLASSES))


def make_classification_set(out: str | Path, seed: int, n_train: int, n_valid: int, size_range: tuple[int, int] = (64, 128), workers: int = 1) -> Path:
    """Write the classification set into `out`; returns the path of `shapes.data`."""
    out = _check_out_dir(Path(out))
    found = darknet_class_labels(str(out))
    if found:
        raise DarknetError(f"{out}: the path contains the class name '{found[0]}', and Darknet's classifier takes every class name found in an image path; choose another directory")
    counts = {"train": n_train, "valid": n_valid}
    for split in counts:
        for name in CLASSES:
            (out / split / name).mkdir(parents=True, exist_ok=True)
    (out / "backup").mkdir(exist_ok=True)
    jobs = [(out, seed, split, i, tuple(size_range)) for split, n in counts.items() for i in range(n)]
    _run(jobs, _classification_job, workers)
    for split, n in counts.items():
        paths = [out / split / CLASSES[i % len(CLASSES)] / f"{i:05d}.png" for i in range(n)]
        _write_text(out / f"{split}.list", "".join(f"{p}\n" for p in paths))
    names = "".join(c + "\n" for c in CLASSES)
    _write_text(out / "shapes.labels", names)
    _write_text(out / "shapes.names", names)
    data = (
        f"classes={len(CLASSES)}\ntrain={out / 'train.list'}\nvalid={out / 'valid.list'}\n"
        f"labels={out / 'shapes.labels'}\nnames={out / 'shapes.names'}\nbackup={out / 'backup'}\ntop=2\n"
    )
    _write_text(out / "shapes.data", data)
    return out / "shapes.data"


def make_hierarchy_set(out: str | Path, seed: int, n_train: int, n_class_only: int, n_valid: int, size_range: tuple[int, int] = (96, 192), workers: int = 1) -> Path:
    """Write the hierarchy (YOLO9000 joint training) set into `out`; returns the path of `shapes9k.data`."""
    out = _check_out_dir(Path(out))
    counts = {"train": n_train, "classify": n_class_only, "valid": n_valid}
    _image_and_label_folders(out, counts)
    jobs = [(out, seed, split, i, tuple(size_range)) for split, n in counts.items() for i in range(n)]
    _run(jobs, _hierarchy_job, workers)
    lists = {split: _image_list(out, split, n) for split, n in counts.items()}
    _write_text(out / "train-det.txt", lists["train"])
    _write_text(out / "train-cls.txt", lists["classify"])
    _write_text(out / "train.txt", lists["train"] + lists["classify"])
    _write_text(out / "valid.txt", lists["valid"])
    lines = tree_lines()
    _write_text(out / f"{TREE_NAME}.tree", "".join(line + "\n" for line in lines))
    return _write_detection_data(out, TREE_NAME, [line.split()[0] for line in lines])


def make_demo(out_dir: str | Path, seed: int, hierarchy: bool = False) -> Path:
    """`shapes-demo.jpg` and its label file `shapes-demo.txt` in `out_dir` (640x480, six shape attempts);
    with `hierarchy`, `shapes9k-demo.jpg`/`.txt`: 256x192, five attempts at any leaf, the first a box-less one."""
    out = _check_out_dir(Path(out_dir))
    out.mkdir(parents=True, exist_ok=True)
    if hierarchy:
        name, scene = "shapes9k-demo", render_leaf_scene(np.random.default_rng([seed, 6]), 256, 192, 5, LEAVES, CLASS_ONLY[0])
    else:
        name, scene = "shapes-demo", render_scene(np.random.default_rng([seed, 2]), 640, 480, 6)
    write_atomic(out / f"{name}.jpg", encode(scene.image, ".jpg"))
    _write_text(out / f"{name}.txt", scene.label_text())
    return out / f"{name}.jpg"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=2000, help="training images")
    parser.add_argument("--valid", type=int, default=200, help="validation images")
    parser.add_argument("--size-range", type=int, nargs=2, metavar=("MIN", "MAX"), help="image side range (default 160 480; 64 128 with --classify; 96 192 with --hierarchy)")
    parser.add_argument("--classify", action="store_true", help="write the classification set (crops of one shape)")
    parser.add_argument("--hierarchy", action="store_true", help="write the YOLO9000 joint-training set: colour leaves in a tree, boxes for some, class-only images of the others")
    parser.add_argument("--class-only", type=int, help="with --hierarchy: class-only training images (default: --train)")
    parser.add_argument("--demo", action="store_true", help="write OUT/shapes-demo.jpg (with --hierarchy: OUT/shapes9k-demo.jpg) and its label file only")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    args = parser.parse_args(argv)
    try:
        if args.demo:
            print(make_demo(args.out, args.seed, args.hierarchy))
            return 0
        if args.hierarchy:
            n_class_only = args.train if args.class_only is None else args.class_only
            data = make_hierarchy_set(args.out, args.seed, args.train, n_class_only, args.valid, tuple(args.size_range or (96, 192)), args.jobs)
            print(data)
            print(f"train it: pydarknet detector train {data} cfg/yolo9000-shapes.cfg BACKBONE.conv.9"
                  " (the backbone's recipe: docs/yolo9000-joint-training.md)")
            return 0
        if args.classify:
            data = make_classification_set(args.out, args.seed, args.train, args.valid, tuple(args.size_range or (64, 128)), args.jobs)
            print(data)
            return 0
        data = make_detection_set(args.out, args.seed, args.train, args.valid, tuple(args.size_range or (160, 480)), args.jobs)
        print(data)
        print(f"anchors for it: pydarknet anchors {data} --num 5 --width 320 --height 320 --cfg cfg/yolov2-tiny-shapes.cfg")
        return 0
    except DarknetError as err:
        print(f"make_shapes: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"make_shapes: {err.filename or args.out}: {err.strerror or err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
