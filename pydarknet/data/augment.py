"""Darknet's detection augmentation: `load_data_detection` (src/data.c, pjreddie HEAD).

For each training image Darknet (since March 2017):

1. makes a grey (0.5) canvas of the network size w x h;
2. draws a new aspect ratio `new_ar = (ow + U(-dw, dw)) / (oh + U(-dh, dh))`
   with `dw = jitter * ow`, `dh = jitter * oh` (ow x oh: the image);
3. sizes the image so its longer side fills the canvas (`scale = 1`; the
   `rand_uniform(.25, 2)` scale is commented out): `nh = h, nw = h * new_ar`
   if `new_ar < 1`, else `nw = w, nh = w / new_ar`;
4. places it at `dx = U(0, w - nw)`, `dy = U(0, h - nh)` with `place_image`
   (bilinear; size and offset truncated to int, taps outside the image read 0);
5. `random_distort_image`: in HSV, hue += U(-hue, hue) wrapped into [0, 1],
   saturation and value multiplied by `rand_scale` (U(1, s), inverted with
   p = .5), back to RGB, clamped to [0, 1];
6. flips horizontally with p = .5;
7. moves the boxes the same way (`fill_truth_detection`): shuffled
   (`randomize_boxes`), scaled and offset with the *float* nw, nh, dx, dy,
   mirrored, clipped to [0, 1] (`correct_boxes`), cut to `max_boxes`, and
   those with w or h < .001 dropped.  YOLO9000's class-only labels (x == 0
   and y == 0) become (999999, 999999, 999999, 999999, class) instead.

Every pixel operation is vectorised numpy in float32, with Darknet's
formulas and their order of float operations.  Random numbers come from a
numpy Generator in Darknet's order of draws; they are not C's `rand()`
stream, so the draws (not their distributions) differ from Darknet's.
"""

from __future__ import annotations

import numpy as np

from pydarknet.data.labels import is_class_only

F32 = np.float32
CLASS_ONLY = F32(999999)  # Darknet: correct_boxes' x, y, w, h of a class-only box (region_layer.c tests x > 100000)


def rand_uniform(rng: np.random.Generator, low: float, high: float) -> np.float32:
    """Darknet's rand_uniform: U(low, high), the bounds swapped if high < low."""
    low, high = min(low, high), max(low, high)
    return F32(F32(rng.random()) * F32(F32(high) - F32(low)) + F32(low))


def rand_scale(rng: np.random.Generator, s: float) -> np.float32:
    """Darknet's rand_scale: U(1, s), or its inverse with p = .5."""
    scale = rand_uniform(rng, 1, s)
    return scale if rng.integers(2) else F32(1.0 / float(scale))


def place_image(im: np.ndarray, w: int, h: int, dx: int, dy: int, canvas: np.ndarray) -> None:
    """Darknet's place_image: draw `im` resized to w x h at (dx, dy) into `canvas`.

    Canvas pixel (dx + x, dy + y) gets `bilinear_interpolate(im, x / w * im.w,
    y / h * im.h)`, whose taps past the image's right or bottom edge read 0
    (Darknet: get_pixel_extend), so an enlarged image's last columns and rows
    fade towards black.  Pixels falling outside the canvas are dropped
    (set_pixel).  Modifies `canvas` in place.
    """
    _, im_h, im_w = im.shape
    _, canvas_h, canvas_w = canvas.shape
    x = np.arange(max(0, -dx), min(w, canvas_w - dx))
    y = np.arange(max(0, -dy), min(h, canvas_h - dy))
    if x.size == 0 or y.size == 0:
        return
    rx = (x.astype(F32) / F32(w)) * F32(im_w)
    ry = (y.astype(F32) / F32(h)) * F32(im_h)
    ix = np.floor(rx).astype(np.intp)
    iy = np.floor(ry).astype(np.intp)
    fx = (rx - ix.astype(F32))[None, None, :]
    fy = (ry - iy.astype(F32))[None, :, None]
    top = np.take(im, iy, axis=1)
    bottom = np.take(im, np.minimum(iy + 1, im_h - 1), axis=1)
    bottom[:, iy + 1 >= im_h] = 0  # Darknet: get_pixel_extend reads 0 past the edge
    right = np.minimum(ix + 1, im_w - 1)
    past_right = ix + 1 >= im_w
    p00, p10 = np.take(top, ix, axis=2), np.take(bottom, ix, axis=2)
    p01, p11 = np.take(top, right, axis=2), np.take(bottom, right, axis=2)
    p01[:, :, past_right] = 0
    p11[:, :, past_right] = 0
    one = F32(1)
    val = (one - fy) * (one - fx) * p00
    val += fy * (one - fx) * p10
    val += (one - fy) * fx * p01
    val += fy * fx * p11
    canvas[:, dy + y[0] : dy + y[-1] + 1, dx + x[0] : dx + x[-1] + 1] = val


# hsv_to_rgb's branches: sextant floor(6h) -> (r, g, b) as indices into (v, p, q, t);
# 5 and anything else (6, when h == 1) take the last branch.
_SEXTANT_RGB = np.array([(0, 3, 1), (2, 0, 1), (1, 0, 3), (1, 2, 0), (3, 1, 0), (0, 1, 2), (0, 1, 2)], dtype=np.intp)


def distort_image(im: np.ndarray, hue: float, sat: float, val: float) -> np.ndarray:
    """Darknet's distort_image on a (3, H, W) RGB image: a new array.

    rgb_to_hsv (hue in [0, 1)), saturation *= sat, value *= val, hue += hue
    wrapped once into [0, 1], hsv_to_rgb, constrain_image to [0, 1].  Darknet's
    corners are kept: grey pixels get hue 0/0 = NaN, harmless because their
    saturation is 0; a hue of exactly 1 falls into the last sextant's branch.
    """
    r, g, b = im[0], im[1], im[2]
    top = np.maximum(np.maximum(r, g), b)
    delta = top - np.minimum(np.minimum(r, g), b)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(top == 0, F32(0), delta / top)
        h = np.where(r == top, (g - b) / delta, np.where(g == top, F32(2) + (b - r) / delta, F32(4) + (r - g) / delta))
    h = np.where(h < 0, h + F32(6), h) / F32(6)
    h = np.where(top == 0, F32(0), h)
    s = s * F32(sat)
    v = top * F32(val)
    h = h + F32(hue)
    h = np.where(h > 1, h - F32(1), h)
    h = np.where(h < 0, h + F32(1), h)
    # Darknet: hsv_to_rgb takes r = g = b = v when s == 0; p = q = t = v then, whatever the sextant
    h6 = np.where(s == 0, F32(0), F32(6) * h)
    index = np.floor(h6)
    f = h6 - index
    one = F32(1)
    p = v * (one - s)
    q = v * (one - s * f)
    t = v * (one - s * (one - f))
    sextant = np.clip(index, 0, 6).astype(np.intp)
    rgb = np.stack([np.choose(_SEXTANT_RGB[:, k].take(sextant), (v, p, q, t)) for k in range(3)])
    return np.clip(rgb, 0, 1).astype(F32)


def random_distort_image(im: np.ndarray, hue: float, saturation: float, exposure: float, rng: np.random.Generator) -> np.ndarray:
    """Darknet's random_distort_image: draws dhue, dsat, dexp, then distort_image."""
    dhue = rand_uniform(rng, -hue, hue)
    dsat = rand_scale(rng, saturation)
    dexp = rand_scale(rng, exposure)
    return distort_image(im, dhue, dsat, dexp)


def randomize_boxes(count: int, rng: np.random.Generator) -> np.ndarray:
    """Darknet's randomize_boxes as an order: swap box i with box rand() % n, for each i.

    Not a uniform shuffle, like Darknet's; which boxes survive a cut to
    `max_boxes` follows the same distribution.
    """
    order = np.arange(count)
    for i, j in enumerate(rng.integers(0, max(count, 1), size=count)):
        order[i], order[j] = order[j], order[i]
    return order


def moved_boxes(boxes: np.ndarray, dx: float, dy: float, sx: float, sy: float, flip: bool) -> np.ndarray:
    """correct_boxes' arithmetic, the same in both Darknets' src/data.c, on (K, 4) x, y, w, h rows: each edge
    moves as `edge * s - d`, is mirrored if `flip`, clipped to [0, 1]; the centre and size are recomputed
    from the clipped edges (a new (K, 4) float32 array)."""
    x, y, w, h = (np.asarray(boxes, dtype=F32)[:, k] for k in range(4))
    two = F32(2)
    with np.errstate(over="ignore", invalid="ignore"):  # Darknet takes any float; past float32's range: inf, clipped
        left, right = (x - w / two) * F32(sx) - F32(dx), (x + w / two) * F32(sx) - F32(dx)
        top, bottom = (y - h / two) * F32(sy) - F32(dy), (y + h / two) * F32(sy) - F32(dy)
    if flip:
        left, right = F32(1) - right, F32(1) - left
    left, right, top, bottom = (np.clip(e, 0, 1) for e in (left, right, top, bottom))
    return np.stack(
        [(left + right) / two, (top + bottom) / two, np.clip(right - left, 0, 1), np.clip(bottom - top, 0, 1)], axis=1
    ).astype(F32)


def correct_boxes(boxes: np.ndarray, dx: float, dy: float, sx: float, sy: float, flip: bool) -> np.ndarray:
    """Darknet's correct_boxes (src/data.c) on (K, 4) x, y, w, h rows: `moved_boxes`, but a class-only box
    (x == 0 and y == 0, see `is_class_only`) becomes CLASS_ONLY in all four, never moved, flipped or clipped."""
    boxes = np.asarray(boxes, dtype=F32)
    moved = moved_boxes(boxes, dx, dy, sx, sy, flip)
    moved[is_class_only(boxes[:, 0], boxes[:, 1])] = CLASS_ONLY
    return moved


def fill_truth_detection(
    boxes: np.ndarray, max_boxes: int, dx: float, dy: float, sx: float, sy: float, flip: bool, rng: np.random.Generator
) -> np.ndarray:
    """Darknet's fill_truth_detection (src/data.c): (K, 5) class,x,y,w,h labels -> (max_boxes, 5) x,y,w,h,class.

    The labels shuffled (`randomize_boxes`), then `truth_from_labels`.
    """
    boxes = np.asarray(boxes, dtype=F32).reshape(-1, 5)
    return truth_from_labels(boxes[randomize_boxes(len(boxes), rng)], max_boxes, dx, dy, sx, sy, flip)


def truth_from_labels(boxes: np.ndarray, max_boxes: int, dx: float, dy: float, sx: float, sy: float, flip: bool) -> np.ndarray:
    """fill_truth_detection after its shuffle: (K, 5) class,x,y,w,h -> (max_boxes, 5) x,y,w,h,class.

    correct_boxes, keep the first `max_boxes` (Darknet cuts *before*
    dropping, so an image with more boxes may yield fewer than `max_boxes`),
    drop boxes with w or h < .001 (never a class-only box); rows after the
    last box are zero.
    """
    truth = np.zeros((max_boxes, 5), dtype=F32)
    boxes = np.asarray(boxes, dtype=F32).reshape(-1, 5)
    moved = correct_boxes(boxes[:, 1:5], dx, dy, sx, sy, flip)[:max_boxes]
    kept = (moved[:, 2].astype(np.float64) >= 0.001) & (moved[:, 3].astype(np.float64) >= 0.001)
    n = int(kept.sum())
    truth[:n, :4] = moved[kept]
    truth[:n, 4] = boxes[: len(moved)][kept, 0]
    return truth


def augment_detection(
    image: np.ndarray,
    boxes: np.ndarray,
    width: int,
    height: int,
    jitter: float,
    hue: float,
    saturation: float,
    exposure: float,
    flip: bool,
    max_boxes: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """One image of Darknet's load_data_detection (see the module doc).

    `image`: float32 (3, H, W) RGB in [0, 1]; `boxes`: (K, 5) rows
    class, x, y, w, h relative to the image (a label file).  `flip` enables
    Darknet's random horizontal flip (p = .5).  Returns the (3, height,
    width) float32 network input and the (max_boxes, 5) truth, rows
    x, y, w, h, class like Darknet's `d.y`, zero rows after the last box.
    """
    saturation = saturation or 1.0  # Darknet: load_thread turns 0 into 1
    exposure = exposure or 1.0
    _, oh, ow = image.shape
    canvas = np.full((3, height, width), 0.5, dtype=F32)
    dw, dh = F32(jitter) * F32(ow), F32(jitter) * F32(oh)
    new_ar = F32(F32(ow) + rand_uniform(rng, -dw, dw)) / F32(F32(oh) + rand_uniform(rng, -dh, dh))
    if new_ar < 1:
        nh = F32(height)
        nw = nh * new_ar
    else:
        nw = F32(width)
        nh = nw / new_ar
    dx = rand_uniform(rng, 0, F32(width) - nw)
    dy = rand_uniform(rng, 0, F32(height) - nh)
    # Darknet: place_image takes int w, h, dx, dy (C truncation toward zero); the boxes use the floats
    place_image(image, int(nw), int(nh), int(dx), int(dy), canvas)
    sized = random_distort_image(canvas, hue, saturation, exposure, rng)
    flipped = bool(flip) and bool(rng.integers(2))
    if flipped:
        sized = np.ascontiguousarray(sized[:, :, ::-1])
    truth = fill_truth_detection(
        boxes, max_boxes, -dx / F32(width), -dy / F32(height), nw / F32(width), nh / F32(height), flipped, rng
    )
    return sized, truth
