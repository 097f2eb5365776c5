"""Ground truth from Darknet label files: `class x y w h` per line, relative to the image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pydarknet.errors import DarknetError
from pydarknet.eval.ap import TruthTable

# Darknet: fill_truth_detection's find_replace chain, each replacing the first occurrence only
_LABEL_REPLACEMENTS = (("images", "labels"), ("JPEGImages", "labels"), ("raw", "labels"),
                       (".jpg", ".txt"), (".png", ".txt"), (".JPG", ".txt"), (".JPEG", ".txt"))


def _label_path(image_path: str) -> str:
    """The label file Darknet reads for an image (mirrors src/data.c fill_truth_detection)."""
    for old, new in _LABEL_REPLACEMENTS:
        image_path = image_path.replace(old, new, 1)
    return image_path


def read_labels(path: str | Path, classes: int) -> np.ndarray:
    """(N, 5) float64 rows `class x y w h` of one label file; an error names the file and line."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise DarknetError(f"{path}: cannot read label file: {err.strerror or err}") from None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) != 5:
                raise ValueError
            label, values = int(fields[0]), [float(f) for f in fields[1:]]
        except ValueError:
            raise DarknetError(f"{path}:{number}: expected 'class x y w h', got {line.strip()!r}") from None
        if not 0 <= label < classes:
            raise DarknetError(f"{path}:{number}: class {label} outside 0..{classes - 1}")
        rows.append([label, *values])
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def read_truth(image_paths: list[str], classes: int) -> list[np.ndarray]:
    """The label rows of every image (read before any inference, so a bad file stops the run early)."""
    return [read_labels(_label_path(p), classes) for p in image_paths]


def truth_table(labels: list[np.ndarray], sizes: list[tuple[int, int]]) -> TruthTable:
    """Every image's label rows as pixel corners (x1 y1 x2 y2) of its (width, height)."""
    counts = [len(rows) for rows in labels]
    rows = np.concatenate(labels) if labels else np.zeros((0, 5))
    scale = np.repeat(np.array(sizes, dtype=np.float64).reshape(-1, 2), counts, axis=0)
    centre, size = rows[:, 1:3] * scale, rows[:, 3:5] * scale
    box = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    return TruthTable(np.repeat(np.arange(len(labels)), counts), rows[:, 0].astype(np.int64), box)
