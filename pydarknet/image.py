"""Images as Darknet sees them: load, resize_image, letterbox_image (src/image.c).

Images are float32 arrays (3, H, W), RGB, values in [0, 1] (Darknet's
`load_image_color`: byte / 255).  Darknet's `resize_image` is its own
separable bilinear filter with align-corners scales (in - 1) / (out - 1),
horizontal pass then vertical pass, every step rounded to float32; cv2.resize
gives other numbers.  Reproduced here vectorised, to the same float32
rounding, quirks included (see `_taps`).

`letterbox_frame` and `resize_frame` take OpenCV's uint8 BGR frames
(`load_frame`, video frames) and convert only the pixels the filter reads:
the same bits as `letterbox_image(image_from_bgr(frame))`, a fraction of
the time (the detection path uses them).

Big resizes run in two bands of output rows, one on a worker thread (numpy
and OpenCV release the GIL): each band reads only the source rows its
vertical taps need, so the bands are independent and give the same bits.

Memory: a decoded frame costs 3 bytes a pixel (a 20000x20000 photo 1.2 GB),
`load_image`'s float copy 12 more; letterboxing a frame converts only the
rows it reads.  OpenCV decodes images of up to 2^30 pixels (and 2^20 a
side; the environment variable OPENCV_IO_MAX_IMAGE_PIXELS moves the pixel
limit), so a frame is at most 3 GiB; a larger image, or one that does not
fit in memory, is refused in one line naming the file and its size.
"""

from __future__ import annotations

import itertools
import math
import os
import struct
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from pydarknet.errors import DarknetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def load_frame(path: str | Path, exif_orientation: bool = False) -> np.ndarray:
    """Read an image file as OpenCV's uint8 (H, W, 3) BGR frame.

    Like Darknet's stb_image loader: 3 channels (grey replicated, alpha
    dropped), no EXIF rotation; `exif_orientation`: rotated by its EXIF
    orientation, as `cv::imread(name, IMREAD_COLOR)` of AlexeyAB's OpenCV
    build (`load_image_mat_cv`).
    """
    path = Path(path)
    if not path.is_file():
        raise DarknetError(f"{path}: no such image file")
    try:
        with open(path, "rb") as f:
            empty = not f.read(1)
    except OSError as err:
        raise DarknetError(f"{path}: cannot read image file: {err.strerror or err}") from None
    if empty:
        raise DarknetError(f"{path}: empty image file")
    try:
        bgr = _decode(path, cv2.IMREAD_COLOR if exif_orientation else _COLOR)
    except (cv2.error, MemoryError) as err:
        raise DarknetError(_decode_failure(path, err)) from None
    if bgr is None or bgr.size == 0:
        raise DarknetError(f"{path}: cannot decode image (not an image, or a format OpenCV cannot read)")
    return bgr


_COLOR = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


def _decode(path: Path, flags: int) -> np.ndarray | None:
    """OpenCV's decode of the file, straight into a numpy array.

    `cv2.imread(name, None, flags)` decodes into the array it returns;
    `imdecode` and the two-argument `imread` decode into OpenCV's memory and
    return a copy, twice the pixels at the peak.  A name OpenCV may not open
    (not ASCII: Windows) is read into memory and decoded from there.
    """
    if str(path).isascii():
        return cv2.imread(str(path), None, flags)
    return cv2.imdecode(np.fromfile(path, dtype=np.uint8), flags)


def _decode_failure(path: Path, err: cv2.error | MemoryError) -> str:
    """The line for an image OpenCV refused or had no memory for, with its size when the header gives it."""
    size = _header_size(path)
    image = f"{size[0]}x{size[1]} image" if size else "image"
    if _out_of_memory(err):
        pixels = f" ({_amount(3 * size[0] * size[1])} of pixels)" if size else ""
        return f"{path}: not enough memory for the {image}{pixels}"
    if "CV_IO_MAX_IMAGE" in err.err:
        return (f"{path}: {image} is larger than OpenCV decodes (at most 2^20 pixels a side and 2^30 pixels in all;"
                " the environment variable OPENCV_IO_MAX_IMAGE_PIXELS raises the latter)")
    return f"{path}: cannot decode {image} ({err.err or err})"


def _out_of_memory(err: BaseException) -> bool:
    """Whether numpy or OpenCV failed to allocate."""
    return isinstance(err, MemoryError) or (isinstance(err, cv2.error) and err.code == cv2.Error.StsNoMem)


def _amount(nbytes: int) -> str:
    """A number of bytes for a message: 432 MB, 1.2 GB."""
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:.0f} MB"


def _header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG file's header, without decoding; None for other or broken files."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                return struct.unpack(">II", head[16:24])
            if head.startswith(b"\xff\xd8"):
                return _jpeg_size(f)
    except OSError:
        pass
    return None


def _jpeg_size(f: BinaryIO) -> tuple[int, int] | None:
    """A JPEG's (width, height): from its frame header, the first SOFn marker (not C4, C8, CC) after SOI."""
    f.seek(2)
    while len(marker := f.read(4)) == 4 and marker[0] == 0xFF:
        kind, length = marker[1], struct.unpack(">H", marker[2:])[0]
        if 0xC0 <= kind <= 0xCF and kind not in (0xC4, 0xC8, 0xCC):
            frame = f.read(5)  # precision, height, width
            return (struct.unpack(">H", frame[3:])[0], struct.unpack(">H", frame[1:3])[0]) if len(frame) == 5 else None
        f.seek(length - 2, os.SEEK_CUR)
    return None


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as float32 (3, H, W) RGB in [0, 1] (the `load_frame`, as floats)."""
    bgr = load_frame(path)
    try:
        return image_from_bgr(bgr)
    except (cv2.error, MemoryError) as err:
        if not _out_of_memory(err):
            raise
        height, width = bgr.shape[:2]
        floats = _amount(12 * width * height)
        raise DarknetError(f"{path}: not enough memory for the {width}x{height} image ({floats} as floats)") from None


def _to_floats(channel: np.ndarray, out: np.ndarray) -> None:
    """Darknet's pixel from a byte: (float)byte / 255. in double, stored as float32.

    The float32 division byte / 255.f rounds to the same float for every
    byte (tests/test_image.py checks all 256).
    """
    np.divide(channel, np.float32(255), out=out, dtype=np.float32)


def image_from_bgr(bgr: np.ndarray) -> np.ndarray:
    """A uint8 OpenCV (H, W, 3) BGR frame as Darknet's float image."""
    image = np.empty((3, *bgr.shape[:2]), dtype=np.float32)
    for plane, channel in zip(image, cv2.split(bgr)[::-1]):
        _to_floats(channel, plane)
    return image


def image_from_bytes(pixels: np.ndarray) -> np.ndarray:
    """AlexeyAB's copy_image_from_bytes (src/image.c): uint8 (H, W, C) interleaved bytes as a float image (C, H, W).

    `im.data[i + w*j + w*h*k] = (float)data[k + c*i + c*w*j] / 255.`: the channels stay in
    the order given (darknet.py's callers give RGB).
    """
    image = np.empty((pixels.shape[2], *pixels.shape[:2]), dtype=np.float32)
    for k, plane in enumerate(image):
        _to_floats(pixels[:, :, k], plane)
    return image


class _Scratch(threading.local):
    """Work buffers per thread, reused from call to call.

    The resize's temporaries are megabytes: fresh ones cost more in page
    faults than the arithmetic done in them.  Each buffer keeps the largest
    size asked for: a few times (rows read) x (frame width + output width).
    """

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        buffer = self.buffers.get(name)
        if buffer is None or buffer.size < nbytes:
            buffer = self.buffers[name] = np.empty(nbytes, dtype=np.uint8)
        return buffer[:nbytes].view(dtype).reshape(shape)


_scratch = _Scratch()


@dataclass(frozen=True)
class _Taps:
    """One pass of Darknet's resize along an axis: out[i] = w0[i] * p[i0[i]] + w1[i] * p[i1[i]].

    Two float32 products and a float32 sum, as Darknet's
    `(1 - dx) * p[ix] + dx * p[ix + 1]` (pixels are finite, so a 0 weight
    adds exactly nothing).  The weights are 1-D from `_taps`, whole arrays
    shaped like the pixels they multiply once `_spread`.
    """

    i0: np.ndarray
    i1: np.ndarray
    w0: np.ndarray
    w1: np.ndarray


def _taps(n: int, out: int, horizontal: bool) -> _Taps:
    """Darknet's weights for resizing n pixels to `out` along one axis."""
    scale = np.float32(n - 1) / np.float32(out - 1) if out > 1 else np.float32(0)
    pos = np.arange(out, dtype=np.float32) * scale  # float32 c * w_scale
    i0 = pos.astype(np.intp)  # (int) truncation
    frac = pos - i0.astype(np.float32)
    i1 = np.minimum(i0 + 1, n - 1)
    w0, w1 = np.float32(1) - frac, frac
    if horizontal:
        # Darknet: `if (c == w-1 || im.w == 1) val = get_pixel(im, im.w-1, r, k)`: the last
        # column copies the last pixel (for n == 1 every column does: weights 1 and 0 already)
        i0[-1], w0[-1] = n - 1, 1
    # vertical: out = (1 - dy) * p[iy], then += dy * p[iy + 1] except on the last row
    # (Darknet skips the add there, trusting dy == 0 even when float rounding made
    # iy = h - 2, dy ~ 1: that row is then nearly black, and so it is here).
    i1[-1], w1[-1] = i0[-1], 0
    return _Taps(i0, i1, w0, w1)


def _spread(taps: _Taps, shape: tuple[int, int]) -> _Taps:
    """`taps` with the weights broadcast to whole arrays of `shape`, read-only (they are cached).

    numpy multiplies two arrays of one shape some 2.5 times faster than an
    array by a broadcast row or column of weights.
    """
    weights = (np.ascontiguousarray(np.broadcast_to(w, shape)) for w in (taps.w0, taps.w1))
    spread = _Taps(taps.i0, taps.i1, *weights)
    for array in vars(spread).values():
        array.flags.writeable = False
    return spread


@dataclass(frozen=True)
class _Band:
    """Output rows [start, stop) of a resize: the source `rows` read, the horizontal taps `x`
    (weights (len(rows), w)) and the vertical taps `y` (indexing `rows`, weights (stop - start, w)).

    Bands are independent: each runs Darknet's horizontal pass on its own
    rows (a row two bands read is computed twice, to the same bits).
    """

    start: int
    stop: int
    rows: np.ndarray
    x: _Taps
    y: _Taps


_THREADS = min(2, os.cpu_count() or 1)
_BAND_PIXELS = 1 << 16  # a band with a smaller horizontal pass costs more to hand to a thread than it saves


@lru_cache(maxsize=16)
def _plan(im_w: int, im_h: int, w: int, h: int) -> tuple[_Band, ...]:
    """Darknet's resize of a W x H image to w x h, in bands of output rows.

    One band per thread when the horizontal pass is big enough to pay for
    the hand-over (a 1-pixel image or a 1-row output is one band).
    """
    x, y = _taps(im_w, w, horizontal=True), _taps(im_h, h, horizontal=False)
    pixels = len(np.union1d(y.i0, y.i1)) * w  # what the horizontal pass computes
    count = max(1, min(_THREADS, h, pixels // _BAND_PIXELS))
    spans = list(itertools.pairwise(h * k // count for k in range(count + 1)))
    rows = [np.union1d(y.i0[start:stop], y.i1[start:stop]) for start, stop in spans]
    x = _spread(x, (max(map(len, rows)), w))
    y = _spread(_Taps(y.i0, y.i1, y.w0[:, None], y.w1[:, None]), (h, w))
    return tuple(_band(x, y, band_rows, start, stop) for band_rows, (start, stop) in zip(rows, spans))


def _band(x: _Taps, y: _Taps, rows: np.ndarray, start: int, stop: int) -> _Band:
    """The band of output rows [start, stop), reading source `rows`, of spread taps x and y."""
    i0, i1 = (np.searchsorted(rows, i[start:stop]) for i in (y.i0, y.i1))
    for array in (rows, i0, i1):
        array.flags.writeable = False  # shared by every call through the cache
    n = len(rows)
    x = _Taps(x.i0, x.i1, x.w0[:n], x.w1[:n])  # every row of x's weights is the same
    return _Band(start, stop, rows, x, _Taps(i0, i1, y.w0[start:stop], y.w1[start:stop]))


# The pixels of source `rows` (ascending) that the horizontal taps read, float32 (2, C, rows, w):
# the columns x.i0, then x.i1 (each half contiguous: numpy is several times slower on strided halves).
_Gather = Callable[[np.ndarray, _Taps], np.ndarray]


def _take_rows(source: np.ndarray, rows: np.ndarray, axis: int) -> np.ndarray:
    """`source` cut to `rows` (ascending) along `axis`: a view when they are consecutive.

    Otherwise a new array, not scratch: it scales with the source image, which may be huge.
    """
    if rows[-1] - rows[0] + 1 == len(rows):
        return source[(slice(None),) * axis + (slice(rows[0], rows[-1] + 1),)]
    return np.take(source, rows, axis=axis)


def _take_pair(source: np.ndarray, taps: _Taps, axis: int, out: np.ndarray) -> np.ndarray:
    """out[0], out[1]: `source` at taps.i0 and at taps.i1 along `axis`.

    (The taps are in range: mode="wrap" only skips numpy's slower bounds handling.)
    """
    for half, index in zip(out, (taps.i0, taps.i1)):
        np.take(source, index, axis=axis, out=half, mode="wrap")
    return out


def _image_pixels(im: np.ndarray) -> _Gather:
    """Gather from a float image (C, H, W)."""
    def gather(rows: np.ndarray, x: _Taps) -> np.ndarray:
        source = _take_rows(im, rows, axis=1)
        shape = (2, im.shape[0], len(rows), len(x.i0))
        return _take_pair(source, x, -1, _scratch.get("pixels", shape, np.float32))
    return gather


def _frame_pixels(bgr: np.ndarray) -> _Gather:
    """Gather from a uint8 BGR frame (H, W, 3), converting only the pixels gathered."""
    def gather(rows: np.ndarray, x: _Taps) -> np.ndarray:
        n, w = len(rows), len(x.i0)
        source = _take_rows(bgr, rows, axis=0)
        # RGBA makes a pixel one uint32 (gathered as words), its bytes in Darknet's channel order;
        # cv2.split then gives contiguous planes (numpy converts strided bytes several times slower)
        rgba = cv2.cvtColor(source, cv2.COLOR_BGR2RGBA, dst=_scratch.get("rgba", (n, bgr.shape[1], 4), np.uint8))
        words = _take_pair(rgba.view(np.uint32)[..., 0], x, -1, _scratch.get("words", (2, n, w), np.uint32))
        planes = [_scratch.get(f"plane{c}", (2 * n, w), np.uint8) for c in range(4)]
        planes = cv2.split(words.view(np.uint8).reshape(2 * n, w, 4), planes)
        pixels = _scratch.get("pixels", (2, 3, n, w), np.float32)
        for c in range(3):
            _to_floats(planes[c].reshape(2, n, w), pixels[:, c])
        return pixels
    return gather


def _blend(a: np.ndarray, b: np.ndarray, taps: _Taps, out: np.ndarray) -> None:
    """out = taps.w0 * a + taps.w1 * b in float32 (a and b are overwritten)."""
    np.multiply(a, taps.w0, out=a)
    np.multiply(b, taps.w1, out=b)
    np.add(a, b, out=out)


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _workers() -> ThreadPoolExecutor:
    """The resize's worker threads, started on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_THREADS - 1, thread_name_prefix="pydarknet-resize")
        return _pool


def _forget_workers() -> None:
    """In a forked child: the parent's threads are not there, start new ones if needed."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_workers)


def _each(work: Callable[[_Band], None], bands: tuple[_Band, ...]) -> None:
    """work(band) for every band: the first in this thread, the others on the worker threads."""
    futures = [_workers().submit(work, band) for band in bands[1:]]
    work(bands[0])
    for band, future in zip(bands[1:], futures):
        if future.cancel():  # not started (the worker is busy, or not scheduled yet): run it here
            work(band)
        else:
            future.result()


def _check_size(w: int, h: int) -> None:
    if w < 1 or h < 1:
        raise DarknetError(f"cannot resize an image to {w}x{h}")


def _resize_band(out: np.ndarray, band: _Band, gather: _Gather) -> None:
    """One band of Darknet's resize_image into `out` (C, band rows, w): horizontal pass, then vertical."""
    pixels = gather(band.rows, band.x)
    part = pixels[0]
    _blend(part, pixels[1], band.x, out=part)
    rows = _take_pair(part, band.y, 1, _scratch.get("part_rows", (2, *out.shape), np.float32))
    _blend(rows[0], rows[1], band.y, out=out)


def _resize_into(out: np.ndarray, im_w: int, im_h: int, gather: _Gather) -> np.ndarray:
    """Darknet's resize_image of a im_w x im_h image into `out` (C, h, w), band by band."""
    _, h, w = out.shape
    _check_size(w, h)
    _each(lambda band: _resize_band(out[:, band.start : band.stop], band, gather), _plan(im_w, im_h, w, h))
    return out


def _letterbox_into(boxed: np.ndarray, im_w: int, im_h: int, gather: _Gather) -> np.ndarray:
    """Darknet's letterbox_image into `boxed` (C, h, w): the resized image centred on grey 0.5."""
    _, h, w = boxed.shape
    new_w, new_h = letterbox_geometry(im_w, im_h, w, h)
    dx, dy = (w - new_w) // 2, (h - new_h) // 2
    _resize_into(boxed[:, dy : dy + new_h, dx : dx + new_w], im_w, im_h, gather)
    boxed[:, :dy] = boxed[:, dy + new_h :] = 0.5  # the grey around it (Darknet fills all, then embeds)
    boxed[:, :, :dx] = boxed[:, :, dx + new_w :] = 0.5
    return boxed


def _output(out: np.ndarray | None, channels: int, w: int, h: int) -> np.ndarray:
    """`out` checked to be float32 (channels, h, w), or a new array."""
    _check_size(w, h)
    if out is None:
        return np.empty((channels, h, w), dtype=np.float32)
    if out.shape != (channels, h, w) or out.dtype != np.float32:
        raise DarknetError(f"out= is {out.dtype} {out.shape}, not float32 {(channels, h, w)}")
    return out


def resize_image(im: np.ndarray, w: int, h: int, *, out: np.ndarray | None = None) -> np.ndarray:
    """Darknet's resize_image: (3, H, W) float32 -> (3, h, w) (into `out` if given)."""
    im = np.asarray(im, dtype=np.float32)
    return _resize_into(_output(out, im.shape[0], w, h), im.shape[2], im.shape[1], _image_pixels(im))


def letterbox_geometry(im_w: int, im_h: int, w: int, h: int) -> tuple[int, int]:
    """Darknet's letterbox (new_w, new_h): integer scaling that keeps the aspect."""
    if w / im_w < h / im_h:  # Darknet compares (float)w/im.w < (float)h/im.h
        return w, (im_h * w) // im_w
    return (im_w * h) // im_h, h


def letterbox_image(im: np.ndarray, w: int, h: int, *, out: np.ndarray | None = None) -> np.ndarray:
    """Darknet's letterbox_image: resize keeping the aspect, centred on grey 0.5 (into `out` if given)."""
    im = np.asarray(im, dtype=np.float32)
    return _letterbox_into(_output(out, im.shape[0], w, h), im.shape[2], im.shape[1], _image_pixels(im))


def resize_frame(bgr: np.ndarray, w: int, h: int, *, out: np.ndarray | None = None) -> np.ndarray:
    """`resize_image(image_from_bgr(bgr), w, h)` bit for bit, for a uint8 BGR frame (H, W, 3).

    Only the pixels the resize reads are converted to float.
    """
    return _resize_into(_output(out, 3, w, h), bgr.shape[1], bgr.shape[0], _frame_pixels(bgr))


def letterbox_frame(bgr: np.ndarray, w: int, h: int, *, out: np.ndarray | None = None) -> np.ndarray:
    """`letterbox_image(image_from_bgr(bgr), w, h)` bit for bit, for a uint8 BGR frame (H, W, 3).

    Only the pixels the resize reads are converted to float.
    """
    return _letterbox_into(_output(out, 3, w, h), bgr.shape[1], bgr.shape[0], _frame_pixels(bgr))
