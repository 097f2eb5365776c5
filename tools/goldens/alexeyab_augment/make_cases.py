#!/usr/bin/env python3
"""Make tests/golden-alexeyab-extra/augment/: AlexeyAB's load_data_detection (OpenCV build) on scripted draws.

usage (from the repository root): make_cases.py AUGMENT [--out tests/golden-alexeyab-extra/augment]

AUGMENT is augment.c built by build.sh against AlexeyAB/darknet 59596d78 (OPENCV=1, CPU, -Ofast, AVX=0).
Writes `inputs/imgK.png` (4 images of 64..90 x 50..80, numpy Generator(PCG64(7))) with their labels
`inputs/imgK.txt` (boxes cut by the crops, one past the image, one under a network pixel), `cases.json`
(per case: the options, the image list order, and what the C's random_gen and random_float return, in
turn: the draws), and per case from Darknet `NAME.image.u8` (the network input as bytes: every value
Darknet writes is byte * (1 / 255.f), -Ofast's
reciprocal of mat_to_image's `/ 255.0f`, checked here; a mixup's, the average of two such images, as
float32 `NAME.image.f32`) and `NAME.truth.f32` (float32 (boxes, 6): x y w h class
track_id).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
NET = (96, 64)  # w, h
BOXES = 10
CLASSES = 3
SIZES = [(80, 60), (72, 56), (64, 80), (90, 50)]  # w, h of inputs/img0..3
LABELS = [
    # class x y w h
    ["0 0.5 0.5 0.3 0.4", "1 0.1 0.2 0.15 0.3", "2 0.9 0.85 0.2 0.25", "1 1.3 0.5 0.2 0.2", "0 0.6 0.3 0.005 0.2"],
    ["2 0.3 0.6 0.5 0.5", "0 0.8 0.15 0.3 0.2", "1 0.05 0.95 0.1 0.1"],
    ["1 0.5 0.1 0.6 0.15", "0 0.2 0.7 0.3 0.4", "2 0.75 0.6 0.4 0.5", "0 0.5 0.98 0.9 0.04"],
    ["0 0.25 0.5 0.4 0.9", "2 0.7 0.3 0.2 0.3", "1 0.95 0.9 0.1 0.2", "2 -0.2 0.5 0.1 0.1"],
]
PLAIN = dict(use_flip=0, mosaic=0, mixup=0, jitter=0.3, resize=1.0, hue=0.0, saturation=1.0, exposure=1.0, letter_box=0,
             mosaic_bound=0, use_blur=0, gaussian_noise=0)


def image_draws(r: tuple[float, ...], flip: int | None, sat_coin: int, exp_coin: int, labels: int,
                corner: int | None = None, dhue_sat_exp: tuple[float, float, float] = (0.5, 0.3, 0.7),
                swap_seed: int = 0, blur: int | None = None, noise: int | None = None) -> tuple[list[int], list[float]]:
    """One image's random_gen and random_float values in the C's order (see load_data_detection); `blur`:
    rand_int(0, 2)'s value when use_blur, `noise`: rand_int(0, 1)'s when gaussian_noise."""
    gens = ([] if flip is None else [flip]) + [sat_coin, exp_coin] + ([] if blur is None else [blur])
    gens += [] if noise is None else [noise]
    gens += [] if corner is None else [corner]
    gens += [int(v) for v in np.random.Generator(np.random.PCG64(swap_seed)).integers(0, 1000, size=labels)]
    resize_r1, resize_r2, r1, r2, r3, r4 = r
    floats = [resize_r1, resize_r2, r1, r2, r3, r4, 0.5, *dhue_sat_exp]  # 0.5: r_scale, unused
    return gens, floats


def single(image: int, r: tuple[float, ...], flip: int | None, **kw) -> tuple[list[int], list[float]]:
    """A load without mosaic: random_index, the mosaic coin, the path, then the image's draws."""
    gens, floats = image_draws(r, flip, 1, 0, len(LABELS[image]), swap_seed=image, **kw)
    return [12345, 1, image] + gens, floats


def mosaic(cut: tuple[int, int], images: list[tuple[int, tuple[float, ...], int, int]]) -> tuple[list[int], list[float]]:
    """A mosaic load: random_index, the coin (odd: mosaic), cut_x and cut_y, then per pass the path and draws."""
    gens, floats = [12345, 3, *cut], []
    for k, (image, r, flip, corner) in enumerate(images):
        g, f = image_draws(r, flip, k % 2, (k + 1) % 2, len(LABELS[image]), corner=corner, swap_seed=10 + k,
                           dhue_sat_exp=(0.2 + 0.2 * k, 0.5, 0.5))
        gens += [image] + g
        floats += f
    return gens, floats


def mixup(images: list[tuple[int, tuple[float, ...], int]]) -> tuple[list[int], list[float]]:
    """A mixup load: random_index, the coin (odd: mixup), then per pass (2) the path and the image's draws."""
    gens, floats = [12345, 5], []
    for k, (image, r, flip) in enumerate(images):
        g, f = image_draws(r, flip, k % 2, (k + 1) % 2, len(LABELS[image]), swap_seed=20 + k)
        gens += [image] + g
        floats += f
    return gens, floats


CASES: dict[str, dict] = {
    # jitter crop past the left and bottom edges (mean fill), cutting boxes; no flip drawn (flip=0)
    "crop": dict(PLAIN, draws=single(0, (0.5, 0.5, 0.1, 0.8, 0.9, 0.25), None)),
    "crop_inside": dict(PLAIN, jitter=0.2, draws=single(1, (0.5, 0.5, 0.9, 0.7, 0.95, 0.6), None)),
    "flip": dict(PLAIN, use_flip=1, jitter=0.2, draws=single(0, (0.5, 0.5, 0.3, 0.9, 0.6, 0.2), 1)),
    "no_flip_drawn": dict(PLAIN, use_flip=1, jitter=0.2, draws=single(3, (0.5, 0.5, 0.3, 0.9, 0.6, 0.2), 2)),
    "letter_box": dict(PLAIN, letter_box=1, jitter=0.1, draws=single(2, (0.5, 0.5, 0.2, 0.7, 0.4, 0.6), None)),
    "letter_box_wide": dict(PLAIN, letter_box=1, use_flip=1, jitter=0.1,
                            draws=single(3, (0.5, 0.5, 0.6, 0.3, 0.5, 0.5), 1)),
    "resize": dict(PLAIN, resize=1.5, jitter=0.1, draws=single(1, (0.1, 0.9, 0.5, 0.4, 0.7, 0.2), None)),
    "resize_down": dict(PLAIN, resize=0.75, jitter=0.1, draws=single(2, (0.3, 0.8, 0.5, 0.4, 0.7, 0.2), None)),
    "hsv": dict(PLAIN, hue=0.1, saturation=1.5, exposure=1.5, jitter=0.1,
                draws=single(0, (0.5, 0.5, 0.4, 0.6, 0.5, 0.5), None, dhue_sat_exp=(0.9, 0.8, 0.6))),
    "hsv_down": dict(PLAIN, hue=0.3, saturation=1.8, exposure=1.4, jitter=0.1,
                     draws=single(3, (0.5, 0.5, 0.4, 0.6, 0.5, 0.5), None, dhue_sat_exp=(0.05, 0.9, 0.3))),
    # blur=1: rand_int(0, 2) = 1 blurs the background (17x17), boxes kept sharp; = 2 the whole image with
    # blur=9, its kernel cut to min_w_h / 8 (the smallest box's pixels)
    "blur_background": dict(PLAIN, use_flip=1, use_blur=1, jitter=0.1,
                            draws=single(0, (0.5, 0.5, 0.4, 0.6, 0.5, 0.5), 1, blur=1)),
    "blur_whole": dict(PLAIN, use_blur=9, jitter=0.1, draws=single(1, (0.5, 0.5, 0.4, 0.6, 0.5, 0.5), None, blur=5)),
    "blur_off": dict(PLAIN, use_blur=9, jitter=0.1, draws=single(1, (0.5, 0.5, 0.4, 0.6, 0.5, 0.5), None, blur=3)),
    # gaussian_noise=40: rand_int(0, 1) = 1 adds cv::randn's noise (OpenCV's own random numbers: the test checks
    # its form, not its values), = 0 none
    "noise": dict(PLAIN, gaussian_noise=40, jitter=0.1, draws=single(2, (0.5, 0.5, 0.4, 0.6, 0.5, 0.5), None, noise=1)),
    "noise_off": dict(PLAIN, gaussian_noise=40, jitter=0.1,
                      draws=single(2, (0.5, 0.5, 0.4, 0.6, 0.5, 0.5), None, noise=2)),
    "invalid_crop": dict(PLAIN, jitter=0.6, draws=single(1, (0.5, 0.5, 1.0, 1.0, 0.5, 0.5), None)),
    "mixup": dict(PLAIN, use_flip=1, mixup=1, jitter=0.2, hue=0.05, saturation=1.3, exposure=1.3, draws=mixup(
        [(0, (0.5, 0.5, 0.3, 0.6, 0.2, 0.7), 1), (2, (0.5, 0.5, 0.7, 0.2, 0.6, 0.3), 0)])),
    "mosaic": dict(PLAIN, use_flip=1, mosaic=1, jitter=0.3, hue=0.05, saturation=1.5, exposure=1.5, draws=mosaic(
        (40, 25), [(0, (0.5, 0.5, 0.2, 0.7, 0.1, 0.8), 0, 0), (1, (0.5, 0.5, 0.9, 0.3, 0.6, 0.2), 1, 1),
                   (2, (0.5, 0.5, 0.1, 0.1, 0.9, 0.9), 1, 0), (3, (0.5, 0.5, 0.6, 0.4, 0.3, 0.7), 0, 1)])),
    "mosaic_bound": dict(PLAIN, use_flip=1, mosaic=1, mosaic_bound=1, jitter=0.3, draws=mosaic(
        (33, 41), [(2, (0.5, 0.5, 0.8, 0.2, 0.3, 0.9), 1, 1), (0, (0.5, 0.5, 0.1, 0.6, 0.2, 0.1), 0, 0),
                   (3, (0.5, 0.5, 0.4, 0.9, 0.8, 0.6), 0, 0), (1, (0.5, 0.5, 0.2, 0.3, 0.5, 0.9), 1, 1)])),
}


def write_inputs(out: Path) -> None:
    rng = np.random.Generator(np.random.PCG64(7))
    (out / "inputs").mkdir(parents=True, exist_ok=True)
    for k, ((w, h), labels) in enumerate(zip(SIZES, LABELS)):
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (w + h) + 60], axis=2)
        noise = rng.integers(-40, 41, size=(h, w, 3))
        cv2.imwrite(str(out / "inputs" / f"img{k}.png"), np.clip(base + noise, 0, 255).astype(np.uint8))
        (out / "inputs" / f"img{k}.txt").write_text("".join(line + "\n" for line in labels))


def case_text(case: dict, inputs: Path) -> str:
    gens, floats = case["draws"]
    options = [case[k] for k in ("use_flip", "mosaic", "jitter", "resize", "hue", "saturation", "exposure",
                                 "letter_box", "mosaic_bound", "use_blur", "gaussian_noise")]
    options[1] = 3 if case["mosaic"] else case["mixup"]  # Darknet's use_mixup: 1 = mixup, 3 = mosaic
    paths = [str(inputs / f"img{k}.png") for k in range(len(SIZES))]
    return "\n".join([f"{NET[0]} {NET[1]} {BOXES} {CLASSES}", " ".join(map(str, options)),
                      f"{len(paths)} " + " ".join(paths), f"{len(gens)} " + " ".join(map(str, gens)),
                      f"{len(floats)} " + " ".join(f"{v:.9g}" for v in floats)]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("augment", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "tests/golden-alexeyab-extra/augment")
    args = parser.parse_args()
    out = args.out.resolve()
    write_inputs(out)
    manifest = {"net": NET, "boxes": BOXES, "classes": CLASSES, "images": [f"img{k}.png" for k in range(len(SIZES))],
                "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, case in CASES.items():
            case_file = Path(tmp) / f"{name}.txt"
            case_file.write_text(case_text(case, out / "inputs"))
            # cwd: Darknet appends its complaints about labels to ./bad_label.list
            run = subprocess.run([str(args.augment), str(case_file), tmp], capture_output=True, text=True, cwd=tmp)
            if run.returncode:
                raise SystemExit(f"{name}: {run.stderr}{run.stdout}")
            image = np.fromfile(Path(tmp) / "image.bin", dtype=np.float32)
            byte = np.rint(image * 255).astype(np.uint8)
            if np.array_equal(byte.astype(np.float32) * (np.float32(1) / np.float32(255)), image):
                byte.tofile(out / f"{name}.image.u8")
            elif case["mixup"]:  # two images' average
                image.tofile(out / f"{name}.image.f32")
            else:
                raise SystemExit(f"{name}: Darknet's image is not bytes * (1 / 255.f)")
            np.fromfile(Path(tmp) / "truth.bin", dtype=np.float32).tofile(out / f"{name}.truth.f32")
            gens, floats = case["draws"]
            manifest["cases"][name] = {k: v for k, v in case.items() if k != "draws"} | {"gen": gens, "float": floats}
            print(name, run.stdout.strip().splitlines()[-1])
    (out / "cases.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
