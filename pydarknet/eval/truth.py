"""Ground truth from Darknet label files: `class x y w h` per line, relative to the image."""

from __future__ import annotations

import warnings

import numpy as np

from pydarknet.data.labels import alexeyab_label_path, label_path, read_labels
from pydarknet.eval.ap import TruthTable


def read_truth(image_paths: list[str], classes: int, dialect: str = "pjreddie") -> list[np.ndarray]:
    """The label rows of every image (read before any inference, so a bad file stops the run early).

    In AlexeyAB's dialect the label files are where its `detector map` looks
    (pydarknet.data.labels.alexeyab_label_path), and a missing one is an image
    without boxes, as its read_boxes reads it ("Can't open label file"), with
    a warning here; pjreddie's label path, and a missing file is an error.
    """
    if dialect != "alexeyab":
        return [read_labels(label_path(p), classes).astype(np.float64) for p in image_paths]
    labels = []
    for image in image_paths:
        path = alexeyab_label_path(image)
        if path.is_file():
            labels.append(read_labels(path, classes).astype(np.float64))
        else:
            warnings.warn(f"{path}: no label file for {image}; scored as an image without objects (AlexeyAB's "
                          "detector map does the same)", stacklevel=2)
            labels.append(np.zeros((0, 5)))
    return labels


def relative_truth(labels: list[np.ndarray]) -> TruthTable:
    """Every image's label rows with their relative (x, y, w, h) boxes, float32 as Darknet's read_boxes reads them."""
    rows = np.concatenate(labels) if labels else np.zeros((0, 5))
    image = np.repeat(np.arange(len(labels)), [len(r) for r in labels])
    return TruthTable(image, rows[:, 0].astype(np.int64), rows[:, 1:5].astype(np.float32))


def truth_table(labels: list[np.ndarray], sizes: list[tuple[int, int]]) -> TruthTable:
    """Every image's label rows as pixel corners (x1 y1 x2 y2) of its (width, height)."""
    counts = [len(rows) for rows in labels]
    rows = np.concatenate(labels) if labels else np.zeros((0, 5))
    scale = np.repeat(np.array(sizes, dtype=np.float64).reshape(-1, 2), counts, axis=0)
    centre, size = rows[:, 1:3] * scale, rows[:, 3:5] * scale
    box = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    return TruthTable(np.repeat(np.arange(len(labels)), counts), rows[:, 0].astype(np.int64), box)
