"""AlexeyAB's mixup (`[net] mixup=1`, without mosaic or cutmix): two augmented images averaged.

AlexeyAB/darknet src/data.c `load_data_detection` (OpenCV build, `use_mixup == 1`): with p = .5 (its
`random_gen() % 2`) the images of a load get a second pass, each averaged with another augmented image
(`blend_images_cv`: cv::addWeighted(new, .5, old, .5), in float) and its boxes appended after the first
image's (`blend_truth`, up to `max_boxes` in all).  As for the mosaic, the C decides once per load thread's
share of a batch, pydarknet per image.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32


def blend_truth(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """AlexeyAB's blend_truth: `second`'s boxes after `first`'s (both (max_boxes, 5), rows up to the first
    x == 0), as many as fit."""
    truth = first.copy()
    filled = truth[:, 0] != 0
    count = len(truth) if filled.all() else int(np.argmin(filled))
    rows = second[: len(truth) - count]
    kept = len(rows) if (rows[:, 0] != 0).all() else int(np.argmin(rows[:, 0] != 0))
    truth[count : count + kept] = rows[:kept]
    return truth


def mixup(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(image, truth) of the first pass and of the second -> the mixup's: `second * .5 + first * .5` in float32
    (exact halves, one rounding, as addWeighted), truths blended."""
    half = F32(0.5)
    return second[0] * half + first[0] * half, blend_truth(first[1], second[1])
