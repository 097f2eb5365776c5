"""Darknet's image ops: every letterbox/resize golden, and load errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import GOLDEN
from pydarknet import DarknetError, letterbox_image, load_image, resize_image

FILES = sorted((GOLDEN / "letterbox").glob("*.npy"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_letterbox_and_resize_match_darknet(path):
    name, kind, w, h = re.fullmatch(r"(\w+)_(letterbox|resize)_(\d+)x(\d+)", path.stem).groups()
    image = load_image(GOLDEN / "images" / f"{name}.png")
    ours = (letterbox_image if kind == "letterbox" else resize_image)(image, int(w), int(h))
    theirs = np.load(path)
    assert ours.shape == theirs.shape and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() <= 1e-5


def test_all_golden_files_are_covered():
    assert len(FILES) == 12


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(DarknetError, match="nope.jpg: no such image file"):
        load_image(tmp_path / "nope.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(DarknetError, match="bad.jpg: cannot decode image"):
        load_image(bad)


def test_grey_and_alpha_images_become_rgb(tmp_path):
    import cv2

    grey = tmp_path / "g.png"
    cv2.imwrite(str(grey), np.full((4, 5), 51, np.uint8))
    rgba = tmp_path / "a.png"
    cv2.imwrite(str(rgba), np.dstack([np.full((4, 5), v, np.uint8) for v in (0, 0, 255, 7)]))
    assert load_image(grey).shape == (3, 4, 5) and np.allclose(load_image(grey), 0.2)
    assert load_image(rgba)[:, 0, 0].tolist() == [1.0, 0.0, 0.0]  # BGR red -> RGB, alpha dropped
