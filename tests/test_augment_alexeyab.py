"""AlexeyAB's load_data_detection (OpenCV build) against the C on scripted draws (tests/golden-alexeyab-extra/augment).

Each case replays the C's random_gen / random_float values through our draw functions (a stand-in for the
numpy Generator), so the order of draws is checked as well as the crop, pixels and labels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pydarknet.data.augment_alexeyab import augment_image, crop_of, draw_image, load_rgb
from pydarknet.data.labels import read_training_labels
from pydarknet.data.mosaic import MosaicDraws, draw_cut, mosaic

GOLDEN = Path(__file__).parent / "golden-alexeyab-extra" / "augment"
MANIFEST = json.loads((GOLDEN / "cases.json").read_text())
TRUTH_TOLERANCE = 1e-6  # Darknet's -Ofast may reorder float32 operations (see the README)


class Scripted:
    """Stands for the numpy Generator: returns what the C's random_gen and random_float returned."""

    def __init__(self, gens: list[int], floats: list[float]) -> None:
        self.gens, self.floats = list(gens), list(floats)

    def random(self) -> float:
        return self.floats.pop(0)

    def integers(self, low: int, high: int | None = None, size: int | None = None):
        low, high = (0, low) if high is None else (low, high)
        if size is None:
            return self.gens.pop(0) % (high - low) + low
        return np.array([self.gens.pop(0) % (high - low) + low for _ in range(size)], dtype=np.int64)


def replay(case: dict) -> tuple[np.ndarray, np.ndarray]:
    """load_data_detection(n = 1) in the C's order of draws, on our functions."""
    w, h = MANIFEST["net"]
    paths = [GOLDEN / "inputs" / name for name in MANIFEST["images"]]
    rng = Scripted(case["gen"], case["float"])
    rng.integers(1 << 31)  # random_index: names of -show_imgs files
    coin = rng.integers(2)  # C: `if (random_gen() % 2 == 0) use_mixup = 0`, drawn whatever use_mixup
    is_mosaic = bool(case["mosaic"]) and coin == 1
    cut = draw_cut(rng, w, h) if is_mosaic else None
    images, labels, crops, draws = [], [], [], []
    for slot in range(4) if is_mosaic else [None]:
        path = paths[rng.integers(len(paths))]  # get_random_paths
        images.append(load_rgb(path))
        labels.append(read_training_labels(path.with_suffix(".txt"), MANIFEST["classes"]))
        draws.append(draw_image(rng, case["use_flip"], case["hue"], case["saturation"], case["exposure"], is_mosaic,
                                len(labels[-1])))
        oh, ow = images[-1].shape[:2]
        crops.append(crop_of(ow, oh, w, h, case["jitter"], case["resize"], case["letter_box"], draws[-1], slot))
    assert rng.gens == [] and rng.floats == [], "draws left over: the order of draws differs from the C's"
    if is_mosaic:
        return mosaic(images, labels, crops, w, h, MosaicDraws(*cut, tuple(draws)), MANIFEST["boxes"],
                      case["mosaic_bound"])
    return augment_image(images[0], labels[0], crops[0], w, h, draws[0], MANIFEST["boxes"])


@pytest.mark.parametrize("name", sorted(MANIFEST["cases"]))
def test_load_data_detection_matches_alexeyab(name):
    w, h = MANIFEST["net"]
    image, truth = replay(MANIFEST["cases"][name])
    golden_bytes = np.fromfile(GOLDEN / f"{name}.image.u8", dtype=np.uint8).reshape(3, h, w)
    golden_image = golden_bytes.astype(np.float32) * (np.float32(1) / np.float32(255))
    golden_truth = np.fromfile(GOLDEN / f"{name}.truth.f32", dtype=np.float32).reshape(MANIFEST["boxes"], 6)
    np.testing.assert_array_equal(image, golden_image)
    np.testing.assert_array_equal(truth[:, 4], golden_truth[:, 4])
    np.testing.assert_allclose(truth[:, :4], golden_truth[:, :4], rtol=0, atol=TRUTH_TOLERANCE)


def test_cases_cover_cut_and_dropped_boxes():
    """The goldens hold boxes cut by the crop and boxes dropped (outside, under a pixel, cut off by the mosaic)."""
    kept = {name: int((np.fromfile(GOLDEN / f"{name}.truth.f32", dtype=np.float32).reshape(-1, 6)[:, 0] > 0).sum())
            for name in MANIFEST["cases"]}
    assert kept["crop"] < 5 and kept["mosaic"] < 19 and kept["mosaic_bound"] < 19
