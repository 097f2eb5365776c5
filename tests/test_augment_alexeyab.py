"""AlexeyAB's load_data_detection (OpenCV build) against the C on scripted draws (tests/golden-alexeyab-extra/augment).

Each case replays the C's random_gen / random_float values through our draw functions (a stand-in for the
numpy Generator), so the order of draws is checked as well as the crop, pixels and labels.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import write_dataset

from pydarknet.cfg.parser import read_cfg
from pydarknet.data import AlexeyabAugment, DetectionLoader
from pydarknet.data.augment_alexeyab import augment_image, crop_of, draw_image, load_rgb
from pydarknet.data.labels import read_training_labels
from pydarknet.data.mixup import mixup
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
    is_mosaic, is_mixup = bool(case["mosaic"]) and coin == 1, bool(case["mixup"]) and coin == 1
    cut = draw_cut(rng, w, h) if is_mosaic else None
    images, labels, crops, draws = [], [], [], []
    for slot in range(4) if is_mosaic else range(2) if is_mixup else [None]:
        path = paths[rng.integers(len(paths))]  # get_random_paths
        images.append(load_rgb(path))
        labels.append(read_training_labels(path.with_suffix(".txt"), MANIFEST["classes"]))
        draws.append(draw_image(rng, case["use_flip"], case["hue"], case["saturation"], case["exposure"], is_mosaic,
                                len(labels[-1]), case["use_blur"], case["gaussian_noise"]))
        oh, ow = images[-1].shape[:2]
        crops.append(crop_of(ow, oh, w, h, case["jitter"], case["resize"], case["letter_box"], draws[-1],
                             slot if is_mosaic else None))
    assert rng.gens == [] and rng.floats == [], "draws left over: the order of draws differs from the C's"
    if is_mosaic:
        return mosaic(images, labels, crops, w, h, MosaicDraws(*cut, tuple(draws)), MANIFEST["boxes"],
                      case["mosaic_bound"])
    passes = [augment_image(*sample, w, h, d, MANIFEST["boxes"]) for *sample, d in zip(images, labels, crops, draws)]
    return mixup(*passes) if is_mixup else passes[0]


NOISY = {"noise"}  # cv::randn's values are OpenCV's random numbers: test_gaussian_noise_is_added_as_alexeyabs


@pytest.mark.parametrize("name", sorted(set(MANIFEST["cases"]) - NOISY))
def test_load_data_detection_matches_alexeyab(name):
    w, h = MANIFEST["net"]
    image, truth = replay(MANIFEST["cases"][name])
    if (GOLDEN / f"{name}.image.f32").exists():  # a mixup: not bytes
        golden_image = np.fromfile(GOLDEN / f"{name}.image.f32", dtype=np.float32).reshape(3, h, w)
    else:
        golden_bytes = np.fromfile(GOLDEN / f"{name}.image.u8", dtype=np.uint8).reshape(3, h, w)
        golden_image = golden_bytes.astype(np.float32) * (np.float32(1) / np.float32(255))
    golden_truth = np.fromfile(GOLDEN / f"{name}.truth.f32", dtype=np.float32).reshape(MANIFEST["boxes"], 6)
    np.testing.assert_array_equal(image, golden_image)
    np.testing.assert_array_equal(truth[:, 4], golden_truth[:, 4])
    np.testing.assert_allclose(truth[:, :4], golden_truth[:, :4], rtol=0, atol=TRUTH_TOLERANCE)


def golden_bytes(name: str) -> np.ndarray:
    w, h = MANIFEST["net"]
    return np.fromfile(GOLDEN / f"{name}.image.u8", dtype=np.uint8).reshape(3, h, w).astype(np.int32)


def test_gaussian_noise_is_added_as_alexeyabs():
    """`noise` and `noise_off` are one image on the same draws but rand_int(0, 1): the C's noisy image is the clean
    one plus non-negative noise (a uint8 cv::randn saturates N(0, 40)'s negative half to 0), mean 40 / sqrt(2 pi);
    ours too, with the truths of the clean image."""
    clean, noisy = golden_bytes("noise_off"), golden_bytes("noise")
    image, truth = replay(MANIFEST["cases"]["noise"])
    ours = np.rint(image * 255).astype(np.int32)
    expected_mean = 40 / np.sqrt(2 * np.pi)
    for added in (noisy - clean, ours - clean):
        unsaturated = clean < 255 - 120
        assert added.min() == 0 and abs(added[unsaturated].mean() - expected_mean) < 1.0
    golden_truth = np.fromfile(GOLDEN / "noise.truth.f32", dtype=np.float32).reshape(MANIFEST["boxes"], 6)
    np.testing.assert_array_equal(truth, golden_truth[:, :5])


def test_cases_cover_cut_and_dropped_boxes():
    """The goldens hold boxes cut by the crop and boxes dropped (outside, under a pixel, cut off by the mosaic)."""
    kept = {name: int((np.fromfile(GOLDEN / f"{name}.truth.f32", dtype=np.float32).reshape(-1, 6)[:, 0] > 0).sum())
            for name in MANIFEST["cases"]}
    labels = [len((GOLDEN / "inputs" / name).with_suffix(".txt").read_text().splitlines()) for name in MANIFEST["images"]]
    assert kept["crop"] == labels[0] - 2  # the box outside the image and the one under a pixel dropped
    assert kept["crop_inside"] < labels[1]  # a box cropped away
    assert kept["mosaic"] < sum(labels) and kept["mosaic_bound"] < sum(labels)


@pytest.mark.parametrize("net, expect", [
    ("mosaic=1\nmosaic_bound=1\nblur=5", AlexeyabAugment(mosaic=True, mosaic_bound=True, resize=1.2, blur=5)),
    ("mixup=1\nflip=0\nletter_box=1", AlexeyabAugment(flip=False, letter_box=True, resize=1.2, mixup=True)),
], ids=["mosaic", "mixup"])
def test_loader_gives_batches_of_an_alexeyab_cfg(tmp_path, net, expect):
    """DetectionLoader with an AlexeyAB cfg's mosaic=1 or mixup=1: images in [0, 1], truths inside, samples of
    several images (their boxes' classes differ) and of one."""
    rng = np.random.default_rng(3)
    write_dataset(tmp_path, rng.uniform(0.1, 0.4, size=(40, 2)))  # 4 images of 10 boxes, each of its own class
    paths = [Path(line) for line in (tmp_path / "train.txt").read_text().split()]
    for k, path in enumerate(paths):  # AlexeyAB looks for the labels beside the images
        cv2.imwrite(str(path), rng.integers(0, 256, size=(50 + 10 * k, 70, 3), dtype=np.uint8))
        shutil.copy(tmp_path / "labels" / f"{path.stem}.txt", path.with_suffix(".txt"))
    cfg = tmp_path / "net.cfg"
    cfg.write_text(f"[net]\nwidth=96\nheight=64\nchannels=3\n{net}\nhue=.1\nsaturation=1.5\nexposure=1.5\n\n"
                   "[yolo]\nclasses=3\njitter=.3\nresize=1.2\n")
    augment = AlexeyabAugment.from_sections(read_cfg(cfg))
    assert augment == expect
    loader = DetectionLoader(paths, lambda i: (96, 64), 8, 0.3, 0.1, 1.5, 1.5, 20, workers=0, seed=5, classes=3,
                             alexeyab=augment)
    classes_per_sample = []
    for _, (_, images, truth) in zip(range(2), loader):
        assert images.shape == (8, 3, 64, 96) and truth.shape == (8, 20, 5)
        assert 0 <= float(images.min()) and float(images.max()) <= 1
        for rows in truth.numpy():
            n = int((rows[:, 0] > 0).sum())
            assert n > 0 and (rows[n:] == 0).all()  # boxes first, then zero rows
            x, y, w, h, c = rows[:n].T
            assert ((x > 0) & (x < 1) & (y > 0) & (y < 1) & (w > 1 / 96) & (w <= 1) & (h > 1 / 64) & (h <= 1)).all()
            classes_per_sample.append(len(set(c.tolist())))
    assert max(classes_per_sample) > 1 and min(classes_per_sample) == 1  # p = .5
