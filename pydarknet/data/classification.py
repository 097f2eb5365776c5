"""Darknet's classification data: labels from paths, and `load_data_augment`.

Labels (src/data.c): an image's truth is found in its *path*.  For training,
`fill_truth` sets a 1 for every label string of the `labels=` list that
occurs anywhere in the path (strstr; Darknet only prints "Too many or too
few labels" otherwise), and with a tree `fill_hierarchy` also sets every
ancestor and fills each group holding no label with SECRET_NUM.  For
validation the class is the first label found (`validate_classifier_*`),
-1 if none.

Augmentation (`CLASSIFICATION_DATA` -> load_data_augment ->
load_image_augment_paths, pjreddie HEAD), per image:

1. `random_augment_image(im, angle, aspect, min, max, size, size)`: aspect
   `a = rand_scale(aspect)`, shorter-side target `r = rand_int(min, max)`,
   `scale = r / (int)min(im.h, im.w * a)`, rotation `U(-angle, angle)`
   degrees, offsets `dx = U(+-(im.w * scale / a - size) / 2)`,
   `dy = U(+-(im.h * scale - size) / 2)` (Darknet subtracts the width
   there too), then `rotate_crop_image`: every output pixel sampled
   bilinearly, taps outside the image reading 0 (black);
2. flip with p = .5 (`rand() % 2`);
3. `random_distort_image` (hue, saturation, exposure), as for detection.

`train_classifier` passes `min = min_ratio * size`, `max = max_ratio * size`
(ints; `[net] min_crop/max_crop` give the ratios' defaults) and
`size = [net] width`, so crops are square.  It never sets `center`.

Every pixel operation is vectorised numpy in float32 (the coordinates in
double, as C computes them); the random draws come from a numpy Generator
in Darknet's order, not from C's rand().
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pydarknet.data.augment import F32, rand_scale, rand_uniform, random_distort_image
from pydarknet.image import load_image, resize_image
from pydarknet.layers.softmax import SECRET_NUM
from pydarknet.tree import Tree

TWO_PI = F32(6.2831853071795864769252866)  # Darknet: TWO_PI (a float literal)


def fill_truth(path: str | Path, labels: list[str], classes: int) -> np.ndarray:
    """Darknet's fill_truth: (classes,) float32, 1 for every label found in `path`."""
    text = str(path)
    truth = np.zeros(classes, dtype=F32)
    for i, label in enumerate(labels[:classes]):
        if label in text:  # Darknet: strstr(path, labels[i])
            truth[i] = 1
    return truth


def fill_hierarchy(truth: np.ndarray, tree: Tree) -> np.ndarray:
    """Darknet's fill_hierarchy: ancestors of labelled nodes set, unlabelled groups SECRET_NUM."""
    truth = truth.copy()
    parent = np.asarray(tree.parent)
    frontier = np.flatnonzero(truth[: tree.n])
    while frontier.size:
        frontier = parent[frontier]
        frontier = frontier[frontier >= 0]
        truth[frontier] = 1
    group = np.asarray(tree.group)
    labelled_groups = np.zeros(tree.groups, dtype=bool)
    labelled_groups[group[truth[: tree.n] != 0]] = True
    head = truth[: tree.n]
    head[~labelled_groups[group]] = SECRET_NUM
    return truth


def class_of(path: str | Path, labels: list[str]) -> int:
    """The class validate_classifier_* gives an image: the first label in its path, or -1."""
    text = str(path)
    return next((i for i, label in enumerate(labels) if label in text), -1)


def crop_image(im: np.ndarray, dx: int, dy: int, w: int, h: int) -> np.ndarray:
    """Darknet's crop_image: a w x h window at (dx, dy), coordinates clamped into the image."""
    _, ih, iw = im.shape
    rows = np.clip(np.arange(h) + dy, 0, ih - 1)
    cols = np.clip(np.arange(w) + dx, 0, iw - 1)
    return np.ascontiguousarray(im[:, rows][:, :, cols])


def resize_min(im: np.ndarray, size: int) -> np.ndarray:
    """Darknet's resize_min: the shorter side to `size`, the other in proportion (C int division)."""
    _, h, w = im.shape
    if w < h:
        h, w = (h * size) // w, size
    else:
        w, h = (w * size) // h, size
    return im if (w, h) == (im.shape[2], im.shape[1]) else resize_image(im, w, h)


def center_crop_image(im: np.ndarray, w: int, h: int) -> np.ndarray:
    """Darknet's center_crop_image: the central square of the shorter side, resized to w x h."""
    _, ih, iw = im.shape
    m = min(iw, ih)
    return resize_image(crop_image(im, (iw - m) // 2, (ih - m) // 2, m, m), w, h)


def bilinear_interpolate(im: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Darknet's bilinear_interpolate at float32 points (any shape): taps outside the image read 0."""
    _, ih, iw = im.shape
    ix = np.floor(x).astype(np.intp)
    iy = np.floor(y).astype(np.intp)
    fx = x - ix.astype(F32)
    fy = y - iy.astype(F32)

    def tap(cx: np.ndarray, cy: np.ndarray) -> np.ndarray:  # Darknet: get_pixel_extend
        inside = (cx >= 0) & (cx < iw) & (cy >= 0) & (cy < ih)
        return np.where(inside, im[:, np.clip(cy, 0, ih - 1), np.clip(cx, 0, iw - 1)], F32(0))

    one = F32(1)
    val = (one - fy) * (one - fx) * tap(ix, iy)
    val += fy * (one - fx) * tap(ix, iy + 1)
    val += (one - fy) * fx * tap(ix + 1, iy)
    val += fy * fx * tap(ix + 1, iy + 1)
    return val.astype(F32)


def rotate_crop_image(im: np.ndarray, rad: float, s: float, w: int, h: int, dx: float, dy: float, aspect: float) -> np.ndarray:
    """Darknet's rotate_crop_image: a w x h view of `im` rotated by `rad`, scaled by `s`, moved by (dx, dy)."""
    _, ih, iw = im.shape
    rad, s, dx, dy, aspect = (float(F32(v)) for v in (rad, s, dx, dy, aspect))
    cx, cy = iw / 2.0, ih / 2.0
    u = ((np.arange(w) - w / 2.0) / s * aspect + dx / s * aspect)[None, :]  # C: double arithmetic
    v = ((np.arange(h) - h / 2.0) / s + dy / s)[:, None]
    cos, sin = math.cos(rad), math.sin(rad)
    rx = (cos * u - sin * v + cx).astype(F32)
    ry = (sin * u + cos * v + cy).astype(F32)
    return bilinear_interpolate(im, rx, ry)


def rand_int(rng: np.random.Generator, low: int, high: int) -> int:
    """Darknet's rand_int: uniform over [low, high], bounds swapped if high < low."""
    low, high = min(low, high), max(low, high)
    return int(rng.integers(low, high + 1))


def random_augment_image(
    im: np.ndarray, angle: float, aspect: float, low: int, high: int, w: int, h: int, rng: np.random.Generator
) -> np.ndarray:
    """Darknet's random_augment_image (random_augment_args + rotate_crop_image), see the module doc."""
    _, ih, iw = im.shape
    aspect = rand_scale(rng, aspect)
    r = rand_int(rng, low, high)
    shorter = int(min(F32(ih), F32(iw) * aspect))  # Darknet: int min = (im.h < im.w*aspect) ? im.h : im.w*aspect
    scale = F32(F32(r) / F32(shorter))
    rad = F32(float(rand_uniform(rng, -angle, angle) * TWO_PI) / 360.0)
    half_w = F32((float(F32(iw) * scale / aspect) - w) / 2.0)
    half_h = F32((float(F32(ih) * scale) - w) / 2.0)  # Darknet: subtracts w, not h
    dx = rand_uniform(rng, -half_w, half_w)
    dy = rand_uniform(rng, -half_h, half_h)
    return rotate_crop_image(im, rad, scale, w, h, dx, dy, aspect)


def augment_classification(
    image: np.ndarray, size: int, low: int, high: int, angle: float, aspect: float,
    hue: float, saturation: float, exposure: float, rng: np.random.Generator,
) -> np.ndarray:
    """One image of Darknet's load_image_augment_paths: (3, size, size) float32."""
    crop = random_augment_image(image, angle, aspect or 1.0, low, high, size, size, rng)
    if rng.integers(2):  # Darknet: flip = rand() % 2
        crop = np.ascontiguousarray(crop[:, :, ::-1])
    # Darknet: load_thread turns saturation/exposure/aspect 0 into 1
    return random_distort_image(crop, hue, saturation or 1.0, exposure or 1.0, rng)


@dataclass(frozen=True)
class ClassificationAugmentation:
    """The `load_data_augment` parameters and the labels: one training sample per call."""

    labels: tuple[str, ...]
    classes: int
    min_ratio: float
    max_ratio: float
    angle: float
    aspect: float
    hue: float
    saturation: float
    exposure: float
    tree: Tree | None = None

    @property
    def truth_shape(self) -> tuple[int, ...]:
        return (self.classes,)

    def sample(self, path: Path, width: int, height: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(image (3, width, width), truth (classes,)); train_classifier's crops are `size` = width square."""
        truth = fill_truth(path, list(self.labels), self.classes)
        if self.tree is not None:
            truth = fill_hierarchy(truth, self.tree)
        image = load_image(path)
        low, high = int(self.min_ratio * width), int(self.max_ratio * width)  # Darknet: args.min = net->min_ratio*dim
        crop = augment_classification(
            image, width, low, high, self.angle, self.aspect, self.hue, self.saturation, self.exposure, rng
        )
        return crop, truth
