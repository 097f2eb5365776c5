"""Darknet's image ops: every letterbox/resize golden, the uint8 frame path bit for bit, and load errors."""

from __future__ import annotations

import re
import threading

import cv2
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import pydarknet.image as darknet_image
from conftest import GOLDEN
from pydarknet import DarknetError, letterbox_image, load_image, resize_image
from pydarknet.image import image_from_bgr, letterbox_frame, load_frame, resize_frame

FILES = sorted((GOLDEN / "letterbox").glob("*.npy"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_letterbox_and_resize_match_darknet(path):
    name, kind, w, h = re.fullmatch(r"(\w+)_(letterbox|resize)_(\d+)x(\d+)", path.stem).groups()
    image = load_image(GOLDEN / "images" / f"{name}.png")
    ours = (letterbox_image if kind == "letterbox" else resize_image)(image, int(w), int(h))
    theirs = np.load(path)
    assert ours.shape == theirs.shape and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() == 0.0


def test_all_golden_files_are_covered():
    assert len(FILES) == 12


def darknet_resize(im: np.ndarray, w: int, h: int) -> np.ndarray:
    """src/image.c resize_image transliterated loop for loop, float32 scalars (small images only).

    One liberty: a 1-pixel output uses scale 0 where C divides by zero
    (harmless for the width; undefined behaviour for the height).
    """
    f = np.float32
    c_, ih, iw = im.shape
    part, out = np.empty((c_, ih, w), f), np.empty((c_, h, w), f)
    w_scale = f(iw - 1) / f(w - 1) if w > 1 else f(0)
    h_scale = f(ih - 1) / f(h - 1) if h > 1 else f(0)
    for k in range(c_):
        for r in range(ih):
            for c in range(w):
                if c == w - 1 or iw == 1:
                    part[k, r, c] = im[k, r, iw - 1]
                else:
                    sx = f(c) * w_scale
                    ix = int(sx)
                    dx = sx - f(ix)
                    part[k, r, c] = (f(1) - dx) * im[k, r, ix] + dx * im[k, r, ix + 1]
    for k in range(c_):
        for r in range(h):
            sy = f(r) * h_scale
            iy = int(sy)
            dy = sy - f(iy)
            out[k, r] = (f(1) - dy) * part[k, iy]
            if r == h - 1 or ih == 1:
                continue
            out[k, r] += dy * part[k, iy + 1]
    return out


def test_pixels_are_darknets_byte_over_255():
    """Darknet's (float)byte / 255. in double, rounded to float32, for every byte."""
    every_byte = np.repeat(np.arange(256, dtype=np.uint8), 3).reshape(1, 256, 3)
    assert np.array_equal(image_from_bgr(every_byte)[:, 0], np.tile((np.arange(256) / 255.0).astype(np.float32), (3, 1)))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 14), st.integers(1, 14), st.integers(0, 2**32 - 1))
@example(3, 8, 5, 24, 0)  # 8 -> 24 rows: float rounding puts the last row at iy = 6, dy ~ 1 (Darknet's skipped add)
@example(8, 3, 24, 5, 0)  # the same for columns, where Darknet copies the last pixel instead
def test_resize_matches_darknets_loops(im_w, im_h, w, h, seed):
    """resize_image against the C loops: shrinking, growing, 1-pixel images and outputs, bit for bit."""
    frame = np.random.default_rng(seed).integers(0, 256, (im_h, im_w, 3), dtype=np.uint8)
    image = image_from_bgr(frame)
    expected = darknet_resize(image, w, h)
    assert np.array_equal(resize_image(image, w, h), expected)
    assert np.array_equal(resize_frame(frame, w, h), expected)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_frame_path_is_bit_identical_on_the_goldens(path):
    name, kind, w, h = re.fullmatch(r"(\w+)_(letterbox|resize)_(\d+)x(\d+)", path.stem).groups()
    image_path = GOLDEN / "images" / f"{name}.png"
    frame_op, image_op = (letterbox_frame, letterbox_image) if kind == "letterbox" else (resize_frame, resize_image)
    assert np.array_equal(frame_op(load_frame(image_path), int(w), int(h)), image_op(load_image(image_path), int(w), int(h)))


@pytest.mark.parametrize("frame_w, frame_h", [(1, 40), (40, 1), (1, 1), (7, 300), (300, 7), (13, 17), (640, 480), (1920, 1080)])
@pytest.mark.parametrize("w, h", [(416, 416), (1, 1), (5, 600), (608, 320)])
def test_frame_path_is_bit_identical(frame_w, frame_h, w, h):
    """letterbox_frame/resize_frame give letterbox_image/resize_image of the whole converted frame.

    1-pixel-wide and tall frames, upscaling, downscaling by more than 2
    (only some rows read), and letterboxes too flat to resize (an error either way).
    """
    frame = np.random.default_rng(frame_w * 7919 + frame_h).integers(0, 256, (frame_h, frame_w, 3), dtype=np.uint8)
    image = image_from_bgr(frame)
    assert np.array_equal(resize_frame(frame, w, h), resize_image(image, w, h))
    try:
        expected = letterbox_image(image, w, h)
    except DarknetError as err:
        with pytest.raises(DarknetError, match=re.escape(str(err))):
            letterbox_frame(frame, w, h)
    else:
        assert np.array_equal(letterbox_frame(frame, w, h), expected)


@pytest.fixture
def bands(monkeypatch):
    """bands(n): plan resizes in n bands (one per thread) whatever their size; the plan cache is cleared around."""
    def use(count: int) -> None:
        monkeypatch.setattr(darknet_image, "_THREADS", count)
        monkeypatch.setattr(darknet_image, "_BAND_PIXELS", 1)
        darknet_image._plan.cache_clear()
    yield use
    darknet_image._plan.cache_clear()


# 1-row outputs (one band), 2 rows, odd heights, upscaling, a 1920x1080 shrink that reads
# rows with gaps (each band its own rows), a letterbox whose rows are a band-split slice
BAND_SIZES = [(768, 576, 416, 1), (768, 576, 416, 2), (768, 576, 416, 311), (13, 17, 40, 33), (640, 480, 608, 608),
              (1920, 1080, 416, 233), (1920, 1080, 416, 416), (1, 40, 5, 80), (300, 7, 600, 9)]


@pytest.mark.parametrize("frame_w, frame_h, w, h", BAND_SIZES)
def test_bands_on_two_threads_give_the_bits_of_one_band(bands, frame_w, frame_h, w, h):
    frame = np.random.default_rng(frame_w * 7919 + h).integers(0, 256, (frame_h, frame_w, 3), dtype=np.uint8)
    image = image_from_bgr(frame)
    ops = [lambda: resize_frame(frame, w, h), lambda: resize_image(image, w, h), lambda: letterbox_frame(frame, w, h)]
    bands(1)
    expected = [op() for op in ops]
    bands(2)
    assert len(darknet_image._plan(frame_w, frame_h, w, h)) == min(2, h)
    for op, single in zip(ops, expected):
        assert np.array_equal(op(), single)


def test_a_band_the_busy_worker_has_not_started_runs_in_the_caller(bands):
    frame = np.random.default_rng(3).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    bands(1)
    expected = letterbox_frame(frame, 416, 416)
    bands(2)
    release = threading.Event()
    darknet_image._workers().submit(release.wait)
    try:
        assert np.array_equal(letterbox_frame(frame, 416, 416), expected)
    finally:
        release.set()


def test_small_resizes_stay_on_one_thread():
    assert len(darknet_image._plan(1, 1, 1, 1)) == len(darknet_image._plan(40, 30, 32, 32)) == 1
    assert len(darknet_image._plan(768, 576, 416, 312)) == darknet_image._THREADS


def test_out_receives_the_result():
    frame = np.random.default_rng(1).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    out = np.full((3, 32, 32), np.nan, dtype=np.float32)
    assert letterbox_frame(frame, 32, 32, out=out) is out
    assert np.array_equal(out, letterbox_image(image_from_bgr(frame), 32, 32))
    assert letterbox_image(image_from_bgr(frame), 32, 32, out=out) is out and np.array_equal(out, letterbox_frame(frame, 32, 32))
    with pytest.raises(DarknetError, match="out= is float32"):
        resize_frame(frame, 32, 16, out=out)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(DarknetError, match="nope.jpg: no such image file"):
        load_image(tmp_path / "nope.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(DarknetError, match="bad.jpg: cannot decode image"):
        load_image(bad)
    with pytest.raises(DarknetError, match="bad.jpg: cannot decode image"):
        load_frame(bad)


def test_grey_and_alpha_images_become_rgb(tmp_path):
    grey = tmp_path / "g.png"
    cv2.imwrite(str(grey), np.full((4, 5), 51, np.uint8))
    rgba = tmp_path / "a.png"
    cv2.imwrite(str(rgba), np.dstack([np.full((4, 5), v, np.uint8) for v in (0, 0, 255, 7)]))
    assert load_image(grey).shape == (3, 4, 5) and np.allclose(load_image(grey), 0.2)
    assert load_image(rgba)[:, 0, 0].tolist() == [1.0, 0.0, 0.0]  # BGR red -> RGB, alpha dropped
