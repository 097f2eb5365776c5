"""AlexeyAB's detection augmentation of one image: `load_data_detection` of its OpenCV build.

AlexeyAB/darknet (src/data.c `load_data_detection`, the `#ifdef OPENCV` branch, and src/image_opencv.cpp
`image_data_augmentation`), for each training image (uint8 RGB, as `load_image_mat_cv` reads it):

1. a random crop: `pleft, pright, ptop, pbot` each U(-dw, dw) or U(-dh, dh) (dw = jitter * ow, dh = jitter * oh,
   truncated), plus the `[yolo] resize` part; with `letter_box=1` the crop grows to the network's aspect ratio;
   a crop past the image is filled with the image's mean colour (`cv::mean`, rounded to bytes);
2. `cv::resize` of the crop to the network size (INTER_LINEAR, on bytes);
3. a horizontal flip (`cv::flip`) with p = .5 when `[net] flip=1` (the default);
4. hue, saturation and exposure in OpenCV's 8-bit HSV (hue in [0, 180), saturated not wrapped:
   `hsv[0] += 179 * dhue`, `hsv[1] *= dsat`, `hsv[2] *= dexp`), when any of them changes something;
   with `[net] blur`, p = 1/3 each: none, a 17x17 Gaussian blur of the background (boxes kept sharp), or of
   the whole image with a `blur`-sized kernel (at most an eighth of the smallest box); with
   `[net] gaussian_noise`, p = .5: its noise (non-negative: the C's noise Mat is of bytes);
5. bytes * (1 / 255.f) as float32 planar RGB (`mat_to_image` built with -Ofast);
6. the labels (`fill_truth_detection`, `correct_boxes` of AlexeyAB): shuffled (`randomize_boxes`), boxes lying
   wholly outside the image dropped, the others moved with the crop, mirrored, clipped to [0, 1], cut to
   `max_boxes`, and those narrower or lower than one network pixel (1 / w, 1 / h) dropped.

The random draws (`draw_image`, from a numpy Generator in the C's order: resize_r1, resize_r2, r1..r4, flip,
dhue, dsat, dexp, blur, noise, the mosaic's corner move, randomize_boxes) are separate from what they do
(`crop_of`, `augment_image`), so that the geometry, pixels and labels can be checked against the C on fixed
draws (tests/golden-alexeyab-extra/augment).  The C's draws come from `rand()`, ours from the Generator: the
same distributions, other numbers; so do the gaussian noise's values (the C's: OpenCV's `cv::randn`).  Every
crop number follows the C's int/float conversions (float32, truncation).  Not reproduced: `track` and
`contrastive` (refused by pydarknet.train.options), and the 6th truth column (track_id, read only by
AlexeyAB's tracking).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pydarknet.data.augment import moved_boxes, rand_scale, rand_uniform
from pydarknet.image import load_frame

F32 = np.float32
OUTSIDE = F32(999999)  # AlexeyAB's correct_boxes: a box wholly outside the image, dropped by fill_truth_detection


@dataclass(frozen=True)
class ImageDraws:
    """One image's random draws in AlexeyAB's load_data_detection (src/data.c), in the C's order."""

    resize_r1: float
    resize_r2: float
    r1: float
    r2: float
    r3: float
    r4: float
    flip: bool
    dhue: float
    dsat: float
    dexp: float
    blur: int = 0  # `[net] blur`: 0 (none), 1 (the background) or the cfg's blur (the whole image; a kernel size)
    noise: int = 0  # `[net] gaussian_noise`: 0 or its standard deviation
    noise_seed: int = 0  # the noise's own random stream (the C's: OpenCV's cv::randn, not rand())
    corner: bool = False  # mosaic: `random_gen() % 2 == 0`, "move each 2nd image to the corner"
    box_swaps: tuple[int, ...] = ()  # randomize_boxes: box i swaps with box box_swaps[i]


def draw_image(
    rng: np.random.Generator, use_flip: bool, hue: float, saturation: float, exposure: float, mosaic: bool, boxes: int,
    use_blur: int = 0, use_noise: int = 0,
) -> ImageDraws:
    """Draw what load_data_detection draws with rand() for one image with `boxes` labels (`use_blur`, `use_noise`:
    `[net] blur`, `gaussian_noise`); the noise's seed is not one of them (`noise_seed` left 0)."""
    resize_r1, resize_r2, r1, r2, r3, r4 = (F32(rng.random()) for _ in range(6))
    flip = bool(use_flip) and bool(rng.integers(2))
    rng.random()  # r_scale: drawn by the C, its use commented out; kept so that the draws come in the C's order
    dhue = rand_uniform(rng, -hue, hue)
    dsat = rand_scale(rng, saturation)
    dexp = rand_scale(rng, exposure)
    blur = (0, 1, use_blur)[int(rng.integers(3))] if use_blur else 0  # rand_int(0, 2): none, background, whole
    noise = use_noise if use_noise and rng.integers(2) == 1 else 0  # rand_int(0, 1)
    corner = bool(mosaic) and not rng.integers(2)
    swaps = tuple(int(j) for j in randomize_boxes_draws(rng, boxes))
    return ImageDraws(float(resize_r1), float(resize_r2), float(r1), float(r2), float(r3), float(r4), flip,
                      float(dhue), float(dsat), float(dexp), blur, noise, 0, corner, swaps)


def randomize_boxes_draws(rng: np.random.Generator, count: int) -> np.ndarray:
    """randomize_boxes' `random_gen() % n`, one per box."""
    return rng.integers(0, max(count, 1), size=count)


@dataclass(frozen=True)
class Crop:
    """The crop of an `ow` x `oh` image: pixels cut off each side (negative: added), and what is kept."""

    pleft: int
    pright: int
    ptop: int
    pbot: int
    swidth: int
    sheight: int
    ow: int
    oh: int


def load_rgb(path: str | Path) -> np.ndarray:
    """load_image_mat_cv: the image as uint8 (h, w, 3) RGB (cv::imread, EXIF orientation applied, then its
    RGB2BGR swap)."""
    return cv2.cvtColor(load_frame(path, exif_orientation=True), cv2.COLOR_BGR2RGB)


def _precalc(low: float, high: float, part: float) -> np.float32:
    """utils.c rand_precalc_random: `part * (high - low) + low` in float, the bounds sorted."""
    low, high = F32(min(low, high)), F32(max(low, high))
    return F32(part) * (high - low) + low


def _add(p: int, f: np.float32) -> int:
    """C's `int p += float f` (and `p = p - f`): in float, truncated toward zero."""
    return int(F32(p) + F32(f))


def crop_of(
    ow: int, oh: int, w: int, h: int, jitter: float, resize: float, letter_box: bool, draws: ImageDraws,
    mosaic_slot: int | None = None,
) -> Crop:
    """load_data_detection's pleft, pright, ptop, pbot, swidth, sheight for an ow x oh image (src/data.c).

    `mosaic_slot` (0..3: top left, top right, bottom left, bottom right) applies the mosaic's corner move
    when `draws.corner`.  An empty crop falls back, like the C, to the whole image (pleft = ptop = 0, swidth =
    ow, sheight = oh) but keeps pright and pbot, which the mosaic's shifts still read.
    """
    dw, dh = int(F32(ow) * F32(jitter)), int(F32(oh) * F32(jitter))
    resize_down = resize_up = F32(resize)
    if resize_down > 1:
        resize_down = F32(1) / resize_down
    if resize_up < 1:
        resize_up = F32(1) / resize_up
    min_rdw, min_rdh = (int(F32(s) * (F32(1) - F32(1) / resize_down) / F32(2)) for s in (ow, oh))
    max_rdw, max_rdh = (int(F32(s) * (F32(1) - F32(1) / resize_up) / F32(2)) for s in (ow, oh))
    pleft, pright = int(_precalc(-dw, dw, draws.r1)), int(_precalc(-dw, dw, draws.r2))
    ptop, pbot = int(_precalc(-dh, dh, draws.r3)), int(_precalc(-dh, dh, draws.r4))
    if resize < 1:  # downsize only
        max_rdw = max_rdh = 0
    pleft = _add(pleft, _precalc(min_rdw, max_rdw, draws.resize_r1))
    pright = _add(pright, _precalc(min_rdw, max_rdw, draws.resize_r2))
    ptop = _add(ptop, _precalc(min_rdh, max_rdh, draws.resize_r1))
    pbot = _add(pbot, _precalc(min_rdh, max_rdh, draws.resize_r2))
    if letter_box:
        net_ar = F32(w) / F32(h)
        if (F32(ow) / F32(oh)) / net_ar > 1:  # the crop grows in height
            delta = (F32(ow) / net_ar - F32(oh)) / F32(2)
            ptop, pbot = _add(ptop, -delta), _add(pbot, -delta)
        else:
            delta = (F32(oh) * net_ar - F32(ow)) / F32(2)
            pleft, pright = _add(pleft, -delta), _add(pright, -delta)
    if mosaic_slot is not None and draws.corner:
        if (mosaic_slot % 2 == 0) != draws.flip:
            pleft, pright = 0, pright + pleft
        else:
            pleft, pright = pleft + pright, 0
        if mosaic_slot < 2:
            ptop, pbot = 0, pbot + ptop
        else:
            ptop, pbot = ptop + pbot, 0
    swidth, sheight = ow - pleft - pright, oh - ptop - pbot
    if swidth <= 0 or sheight <= 0 or ow - pleft <= 0 or oh - ptop <= 0:  # C: "WARNING: invalid resize"
        swidth, sheight, pleft, ptop = ow, oh, 0, 0
    return Crop(pleft, pright, ptop, pbot, swidth, sheight, ow, oh)


def crop_resize(image: np.ndarray, crop: Crop, w: int, h: int) -> np.ndarray:
    """image_data_augmentation's crop and cv::resize: uint8 (oh, ow, 3) -> uint8 (h, w, 3).

    The crop's part outside the image is the image's `cv::mean`, rounded (`setTo`: saturate_cast, half to even).
    """
    if crop.pleft == 0 and crop.ptop == 0 and (crop.swidth, crop.sheight) == (crop.ow, crop.oh):
        return cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    mean = np.rint(np.asarray(cv2.mean(image)[: image.shape[2]]))
    cropped = np.empty((crop.sheight, crop.swidth, image.shape[2]), dtype=np.uint8)
    cropped[:] = np.clip(mean, 0, 255).astype(np.uint8)
    x0, y0 = max(crop.pleft, 0), max(crop.ptop, 0)
    x1, y1 = min(crop.pleft + crop.swidth, crop.ow), min(crop.ptop + crop.sheight, crop.oh)
    if x1 > x0 and y1 > y0:  # cv::Rect's intersection
        dx, dy = max(0, -crop.pleft), max(0, -crop.ptop)
        cropped[dy : dy + y1 - y0, dx : dx + x1 - x0] = image[y0:y1, x0:x1]
    return cv2.resize(cropped, (w, h), interpolation=cv2.INTER_LINEAR)


def distort_hsv(rgb: np.ndarray, dhue: float, dsat: float, dexp: float) -> np.ndarray:
    """image_data_augmentation's HSV step on uint8 RGB, with OpenCV's 8-bit HSV and saturating arithmetic.

    `hsv[1] *= dsat` and `hsv[2] *= dexp` are Mat::convertTo with a scale (rounded, saturated);
    `hsv[0] += 179 * dhue` adds the float rounded to an int, saturated to [0, 255] (not wrapped; OpenCV's
    HSV2RGB then takes hue modulo 180).
    """
    if dsat == 1 and dexp == 1 and dhue == 0:
        return rgb
    hue, sat, val = cv2.split(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV))
    sat = cv2.convertScaleAbs(sat, alpha=float(dsat))
    val = cv2.convertScaleAbs(val, alpha=float(dexp))
    shift = int(np.rint(F32(179) * F32(dhue)))  # Mat += Scalar: the scalar rounded to the work type (int)
    hue = np.clip(hue.astype(np.int32) + shift, 0, 255).astype(np.uint8)
    return hsv_to_rgb(cv2.merge([hue, sat, val]))


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """cv::cvtColor(.., COLOR_HSV2RGB) on uint8 as OpenCV's vector code computes every pixel.

    OpenCV converts each row in vector blocks (32 pixels in OpenCV 4's AVX2 build, 64 with AVX-512) and the
    rest of the row with scalar code that rounds a few colours differently (by 1).  Darknet's network width is
    a multiple of 32, so its AVX2 OpenCV takes the vector path for every pixel; here the image is converted as
    one row padded to a multiple of 256 pixels, so that any vector width takes every pixel.
    """
    h, w = hsv.shape[:2]
    n = h * w
    row = np.zeros((1, -(-n // 256) * 256, 3), dtype=np.uint8)
    row[0, :n] = hsv.reshape(n, 3)
    return np.ascontiguousarray(cv2.cvtColor(row, cv2.COLOR_HSV2RGB)[0, :n].reshape(h, w, 3))


def to_planar(rgb: np.ndarray) -> np.ndarray:
    """mat_to_image: uint8 (h, w, 3) -> float32 (3, h, w), `byte / 255.0f` as Darknet's Makefile builds it.

    Its -Ofast (-freciprocal-math) turns the division into `byte * (1 / 255.f)`, one float32 rounding
    below byte / 255 for some bytes (the goldens show it).
    """
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)).astype(F32) * (F32(1) / F32(255))


def blur_image(sized: np.ndarray, blur: int, truth: np.ndarray) -> np.ndarray:
    """image_data_augmentation's blur: cv::GaussianBlur 17x17 outside the boxes (blur == 1), else of the whole
    image with a `blur / 2 * 2 + 1` kernel.  A box's rectangle: `int left = (x - w / 2.) * cols` (in double),
    `int width = w * cols` (in float), ..., cut to the image; the boxes are read up to the first x == 0."""
    if blur == 1:
        blurred = cv2.GaussianBlur(sized, (17, 17), 0)
        rows, cols = sized.shape[:2]
        for x, y, bw, bh in truth[:, :4]:
            if not x:
                break
            left, top = int((float(x) - float(bw) / 2.0) * cols), int((float(y) - float(bh) / 2.0) * rows)
            right, bottom = left + int(F32(bw) * F32(cols)), top + int(F32(bh) * F32(rows))
            left, top, right, bottom = max(left, 0), max(top, 0), min(right, cols), min(bottom, rows)
            if right > left and bottom > top:  # cv::Rect's intersection with the image
                blurred[top:bottom, left:right] = sized[top:bottom, left:right]
        return blurred
    size = blur // 2 * 2 + 1
    return cv2.GaussianBlur(sized, (size, size), 0)


def min_box_pixels(truth: np.ndarray, w: int, h: int) -> int:
    """fill_truth_detection's min_w_h: the smallest side of a kept box in network pixels (C int/float rules)."""
    smallest = 0
    for bw, bh in truth[truth[:, 0] != 0, 2:4]:
        sides = (F32(bw) * F32(w), F32(bh) * F32(h))
        if smallest == 0:
            smallest = int(sides[0])
        for side in sides:
            if F32(smallest) > side:
                smallest = int(side)
    return smallest


def add_noise(sized: np.ndarray, deviation: int, seed: int) -> np.ndarray:
    """image_data_augmentation's gaussian_noise: `cv::randn` into a uint8 Mat (N(0, deviation) rounded, the
    negative half saturated to 0; deviation clamped to [0, 127]) added with saturation.  The noise is drawn
    from numpy (seeded by `seed`), not OpenCV's generator."""
    deviation = min(max(deviation, 0), 127)
    normal = np.random.default_rng(seed).normal(0.0, deviation, size=sized.shape)
    return cv2.add(sized, np.clip(np.rint(normal), 0, 255).astype(np.uint8))


def augment_pixels(
    image: np.ndarray, crop: Crop, w: int, h: int, draws: ImageDraws, blur: int = 0, truth: np.ndarray | None = None
) -> np.ndarray:
    """image_data_augmentation (src/image_opencv.cpp): uint8 RGB -> float32 (3, h, w); `truth`: the image's,
    whose boxes stay sharp with blur == 1."""
    sized = crop_resize(image, crop, w, h)
    if draws.flip:
        sized = cv2.flip(sized, 1)
    sized = distort_hsv(sized, draws.dhue, draws.dsat, draws.dexp)
    if blur:
        sized = blur_image(sized, blur, truth if truth is not None else np.zeros((0, 5), F32))
    if draws.noise:
        sized = add_noise(sized, draws.noise, draws.noise_seed)
    return to_planar(sized)


def correct_boxes(boxes: np.ndarray, dx: float, dy: float, sx: float, sy: float, flip: bool) -> np.ndarray:
    """AlexeyAB's correct_boxes (src/data.c) on (K, 4) x, y, w, h rows: a new float32 (K, 4) array.

    A box at x == y == 0 or lying wholly outside [0, 1] becomes OUTSIDE; the others move as pjreddie's do
    (`pydarknet.data.augment.moved_boxes`).
    """
    x, y, w, h = (np.asarray(boxes, dtype=F32)[:, k] for k in range(4))
    two = F32(2)
    outside = ((x == 0) & (y == 0)) | (x + w / two < 0) | (y + h / two < 0) | (x - w / two > 1) | (y - h / two > 1)
    moved = moved_boxes(boxes, dx, dy, sx, sy, flip)
    moved[outside] = OUTSIDE
    return moved


def fill_truth(
    labels: np.ndarray, swaps: tuple[int, ...], max_boxes: int, dx: float, dy: float, sx: float, sy: float,
    flip: bool, w: int, h: int,
) -> np.ndarray:
    """AlexeyAB's fill_truth_detection (src/data.c): (K, 5) class,x,y,w,h labels -> (max_boxes, 5) x,y,w,h,class.

    Shuffled by `swaps` (randomize_boxes), moved (correct_boxes), cut to `max_boxes` before dropping those
    narrower than 1 / w or lower than 1 / h, those OUTSIDE and those whose centre is not in (0, 1]; rows after
    the last box are zero.
    """
    labels = np.asarray(labels, dtype=F32).reshape(-1, 5)
    order = np.arange(len(labels))
    for i, j in enumerate(swaps):
        order[i], order[j] = order[j], order[i]
    labels = labels[order]
    moved = correct_boxes(labels[:, 1:5], dx, dy, sx, sy, flip)[:max_boxes]
    x, y, bw, bh = moved.T
    kept = ((bw >= F32(1) / F32(w)) & (bh >= F32(1) / F32(h)) & (x != OUTSIDE) & (x > 0) & (x <= 1)
            & (y > 0) & (y <= 1))
    truth = np.zeros((max_boxes, 5), dtype=F32)
    n = int(kept.sum())
    truth[:n, :4] = moved[kept]
    truth[:n, 4] = labels[: len(moved)][kept, 0]
    return truth


def augment_image(
    image: np.ndarray, labels: np.ndarray, crop: Crop, w: int, h: int, draws: ImageDraws, max_boxes: int
) -> tuple[np.ndarray, np.ndarray]:
    """One image of load_data_detection on given draws: uint8 (oh, ow, 3) RGB and (K, 5) labels ->
    float32 (3, h, w) image and (max_boxes, 5) truth (rows x, y, w, h, class)."""
    sx, sy = F32(crop.swidth) / F32(crop.ow), F32(crop.sheight) / F32(crop.oh)
    dx = (F32(crop.pleft) / F32(crop.ow)) / sx
    dy = (F32(crop.ptop) / F32(crop.oh)) / sy
    truth = fill_truth(labels, draws.box_swaps, max_boxes, dx, dy, F32(1.0 / float(sx)), F32(1.0 / float(sy)),
                       draws.flip, w, h)
    blur = draws.blur
    if blur > 1 and min_box_pixels(truth, w, h) // 8 < blur:  # "disable blur if one of the objects is too small"
        blur = min_box_pixels(truth, w, h) // 8
    return augment_pixels(image, crop, w, h, draws, blur, truth), truth
