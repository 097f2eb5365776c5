"""Images as Darknet sees them: load, resize_image, letterbox_image (src/image.c).

Images are float32 arrays (3, H, W), RGB, values in [0, 1] (Darknet's
`load_image_color`: byte / 255).  Darknet's `resize_image` is its own
separable bilinear filter with align-corners scales (in - 1) / (out - 1),
horizontal pass then vertical pass, every step rounded to float32; cv2.resize
gives other numbers.  Reproduced here vectorised, to the same float32
rounding, quirks included (see `resize_image`).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pydarknet.errors import DarknetError

# Darknet: (float)byte / 255. is computed in double, then stored as float
_BYTE_TO_FLOAT = (np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as float32 (3, H, W) RGB in [0, 1].

    Like Darknet's stb_image loader: 3 channels (grey replicated, alpha
    dropped), no EXIF rotation.
    """
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    if data is None:
        raise DarknetError(f"{path}: no such image file")
    if data.size == 0:
        raise DarknetError(f"{path}: empty image file")
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None:
        raise DarknetError(f"{path}: cannot decode image (not an image, or a format OpenCV cannot read)")
    return image_from_bgr(bgr)


def image_from_bgr(bgr: np.ndarray) -> np.ndarray:
    """A uint8 OpenCV (H, W, 3) BGR frame as Darknet's float image."""
    rgb = bgr[:, :, ::-1].transpose(2, 0, 1)
    return _BYTE_TO_FLOAT[np.ascontiguousarray(rgb)]


def _interpolate_axis(im: np.ndarray, out: int, axis: int) -> np.ndarray:
    """One pass of Darknet's resize along `axis` (1 = rows, 2 = columns)."""
    n = im.shape[axis]
    scale = np.float32(n - 1) / np.float32(out - 1) if out > 1 else np.float32(0)
    pos = np.arange(out, dtype=np.float32) * scale  # float32 c * w_scale
    base = pos.astype(np.int64)  # (int) truncation
    frac = pos - base.astype(np.float32)
    nxt = np.minimum(base + 1, n - 1)
    take = lambda idx: np.take(im, idx, axis=axis)  # noqa: E731
    shape = [1, 1, 1]
    shape[axis] = out
    frac = frac.reshape(shape)
    if axis == 2:
        # horizontal: val = (1 - dx) * p[ix] + dx * p[ix + 1]; last column copies the last pixel
        vals = (np.float32(1) - frac) * take(base) + frac * take(nxt)
        if n == 1:
            return np.repeat(im, out, axis=2)
        vals[:, :, out - 1] = im[:, :, n - 1]
        return vals.astype(np.float32)
    # vertical: out = (1 - dy) * p[iy], then += dy * p[iy + 1] except on the last row
    # (Darknet skips the add there, trusting dy == 0 even when float rounding made
    # iy = h - 2, dy ~ 1: that row is then nearly black, and so it is here).
    vals = (np.float32(1) - frac) * take(base)
    if n > 1:
        add = frac * take(nxt)
        add[:, out - 1, :] = 0
        vals = vals + add
    return vals.astype(np.float32)


def resize_image(im: np.ndarray, w: int, h: int) -> np.ndarray:
    """Darknet's resize_image: (3, H, W) float32 -> (3, h, w)."""
    if w < 1 or h < 1:
        raise DarknetError(f"cannot resize an image to {w}x{h}")
    im = np.asarray(im, dtype=np.float32)
    return _interpolate_axis(_interpolate_axis(im, w, axis=2), h, axis=1)


def letterbox_geometry(im_w: int, im_h: int, w: int, h: int) -> tuple[int, int]:
    """Darknet's letterbox (new_w, new_h): integer scaling that keeps the aspect."""
    if w / im_w < h / im_h:  # Darknet compares (float)w/im.w < (float)h/im.h
        return w, (im_h * w) // im_w
    return (im_w * h) // im_h, h


def letterbox_image(im: np.ndarray, w: int, h: int) -> np.ndarray:
    """Darknet's letterbox_image: resize keeping the aspect, centred on grey 0.5."""
    _, im_h, im_w = im.shape
    new_w, new_h = letterbox_geometry(im_w, im_h, w, h)
    resized = resize_image(im, new_w, new_h)
    boxed = np.full((im.shape[0], h, w), 0.5, dtype=np.float32)
    dx, dy = (w - new_w) // 2, (h - new_h) // 2
    boxed[:, dy : dy + new_h, dx : dx + new_w] = resized
    return boxed
