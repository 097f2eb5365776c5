"""AlexeyAB's mosaic (`[net] mosaic=1`): four augmented images cut together around a random point.

AlexeyAB/darknet src/data.c `load_data_detection` (OpenCV build, `use_mixup == 3`): with p = .5 (its
`random_gen() % 2`) the images of a load are mosaics.  A mosaic draws a cut point `cut_x` in
[0.2 w, 0.8 w] and `cut_y` in [0.2 h, 0.8 h] (`rand_int`, bounds truncated), then augments four images
(pydarknet.data.augment_alexeyab, each with its own draws, and `draws.corner` moving its crop to the
mosaic's corner).  Image k (0: top left, 1: top right, 2: bottom left, 3: bottom right) gives the part of
its augmented picture next to the cut point, shifted by what its crop added past the image's edges
(`left_shift`..`bot_shift`, after swapping pleft and pright when flipped); its boxes move the same way and
are cut at the mosaic's edges (`blend_truth_mosaic`), or with `mosaic_bound=1` at its quarter's edges; a box
then outside or under one network pixel is dropped, and the boxes of image k follow those of the images
before it, up to `max_boxes` in all.

The C decides mosaic-or-not once per call of load_data_detection (one load thread's share of a batch);
here it is decided per image.  `letter_box=1` with mosaic stops the C ("isn't supported"): refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pydarknet.data.augment_alexeyab import Crop, ImageDraws, augment_image

F32 = np.float32
MIN_OFFSET = F32(0.2)  # load_data_detection: the cut point keeps 20% of the width and height on each side


@dataclass(frozen=True)
class MosaicDraws:
    """A mosaic's cut point (drawn first) and its four images' draws."""

    cut_x: int
    cut_y: int
    images: tuple[ImageDraws, ImageDraws, ImageDraws, ImageDraws]


def cut_range(size: int) -> tuple[int, int]:
    """rand_int's bounds for cut_x (size = w) or cut_y (size = h): `size * 0.2f`, `size * (1 - 0.2f)`, truncated."""
    return int(F32(size) * MIN_OFFSET), int(F32(size) * (F32(1) - MIN_OFFSET))


def draw_cut(rng: np.random.Generator, w: int, h: int) -> tuple[int, int]:
    """load_data_detection's `cut_x = rand_int(..)`, `cut_y = rand_int(..)`: uniform, bounds included."""
    (x0, x1), (y0, y1) = cut_range(w), cut_range(h)
    return int(rng.integers(x0, x1 + 1)), int(rng.integers(y0, y1 + 1))


@dataclass(frozen=True)
class Shifts:
    """What a crop added past the image's edges, in network pixels, capped by the quarter (src/data.c)."""

    left: int
    right: int
    top: int
    bot: int

    @classmethod
    def of(cls, crop: Crop, flip: bool, w: int, h: int, cut_x: int, cut_y: int) -> Shifts:
        """`left_shift = min(cut_x, max(0, -pleft * w / ow))`, ...; pleft and pright swapped when flipped."""
        pleft, pright = (crop.pright, crop.pleft) if flip else (crop.pleft, crop.pright)
        # C's int division truncates toward zero; a negative numerator ends at max(0, ..) = 0 either way
        return cls(
            min(cut_x, max(0, -pleft * w // crop.ow)),
            min(w - cut_x, max(0, -pright * w // crop.ow)),
            min(cut_y, max(0, -crop.ptop * h // crop.oh)),
            min(h - cut_y, max(0, -crop.pbot * h // crop.oh)),
        )


def place_quarter(canvas: np.ndarray, image: np.ndarray, slot: int, cut_x: int, cut_y: int, s: Shifts) -> None:
    """Copy slot `slot`'s part of an augmented (3, h, w) image into the mosaic `canvas` (the C's memcpy rows)."""
    _, h, w = canvas.shape
    x0 = w - cut_x - s.right if slot in (0, 2) else s.left
    cols = slice(0, cut_x) if slot in (0, 2) else slice(cut_x, w)
    width = cols.stop - cols.start
    if slot < 2:
        canvas[:, :cut_y, cols] = image[:, h - cut_y - s.bot : h - s.bot, x0 : x0 + width]
    else:
        canvas[:, cut_y:, cols] = image[:, s.top : s.top + h - cut_y, x0 : x0 + width]


def _mosaic_axis(
    centre: np.float32, size: np.float32, first: bool, cut: int, extent: int, near: int, far: int, bound: bool,
) -> tuple[np.float32, np.float32, int, int]:
    """blend_truth_mosaic on one axis of a box (x with w, or y with h): moved by its quarter's offset (`first`:
    the quarter before the cut; `near`/`far`: the shifts on that side, left/right or top/bot), its edges in
    network pixels clamped to the quarter (`bound`, mosaic_bound) or the box cut at the mosaic's edges.
    Returns the centre, size and the two edges, in the C's float32 and int truncation."""
    f, two = F32(extent), F32(2)
    centre = centre - (f - F32(cut) - F32(far)) / f if first else centre + (F32(cut) - F32(near)) / f
    low, high = int((centre - size / two) * f), int((centre + size / two) * f)
    if bound:
        low, high = (max(low, 0), min(high, cut)) if first else (max(low, cut), min(high, extent))
        return (F32(high + low) / two) / f, F32(high - low) / f, low, high
    if low < 0:
        diff = F32(low) / f
        centre, size = centre - diff / two, size + diff
    if high > extent:
        diff = F32(high - extent) / f
        centre, size = centre - diff / two, size - diff
    return centre, size, int((centre - size / two) * f), int((centre + size / two) * f)


def blend_truth_mosaic(
    truth: np.ndarray, boxes: np.ndarray, slot: int, cut_x: int, cut_y: int, s: Shifts, w: int, h: int,
    mosaic_bound: bool,
) -> None:
    """AlexeyAB's blend_truth_mosaic (src/data.c): append one image's (max_boxes, 5) truth to the mosaic's.

    In float32 and C int truncation as the C: each box moves by its quarter's offset; its edges in network
    pixels (`int left = (x - w / 2) * net_w`, ...) are clamped to the quarter with `mosaic_bound`, else the box is
    cut at the mosaic's edges (`_mosaic_axis`); it is kept if inside, with 0 < w, h < 1, 0 < x, y < 1 and w, h
    above one pixel.
    """
    filled = truth[:, 0] != 0
    count = len(truth) if filled.all() else int(np.argmin(filled))  # the C: rows up to the first x == 0
    new_t = count
    for t in range(len(truth) - count):  # the C reads at most boxes - count of the image's rows
        xb, yb, wb, hb = (F32(v) for v in boxes[t, :4])
        if not xb:
            break
        xb, wb, left, right = _mosaic_axis(xb, wb, slot in (0, 2), cut_x, w, s.left, s.right, mosaic_bound)
        yb, hb, top, bot = _mosaic_axis(yb, hb, slot < 2, cut_y, h, s.top, s.bot, mosaic_bound)
        if (left >= 0 and right <= w and top >= 0 and bot <= h and 0 < wb < 1 and 0 < hb < 1 and 0 < xb < 1
                and 0 < yb < 1 and wb > F32(1) / F32(w) and hb > F32(1) / F32(h)):
            truth[new_t] = (xb, yb, wb, hb, boxes[t, 4])
            new_t += 1

def mosaic(
    images: Sequence[np.ndarray], labels: Sequence[np.ndarray], crops: Sequence[Crop], w: int, h: int,
    draws: MosaicDraws, max_boxes: int, mosaic_bound: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """A mosaic on given draws: four uint8 RGB images, their (K, 5) labels and crops (`crop_of` with
    `mosaic_slot` 0..3) -> float32 (3, h, w) image and (max_boxes, 5) truth (rows x, y, w, h, class)."""
    canvas = np.zeros((3, h, w), dtype=F32)
    truth = np.zeros((max_boxes, 5), dtype=F32)
    for slot, (image, boxes, crop, image_draws) in enumerate(zip(images, labels, crops, draws.images)):
        pixels, image_truth = augment_image(image, boxes, crop, w, h, image_draws, max_boxes)
        shifts = Shifts.of(crop, image_draws.flip, w, h, draws.cut_x, draws.cut_y)
        place_quarter(canvas, pixels, slot, draws.cut_x, draws.cut_y, shifts)
        blend_truth_mosaic(truth, image_truth, slot, draws.cut_x, draws.cut_y, shifts, w, h, mosaic_bound)
    return canvas, truth
