"""Darknet's label files: where they are, and what their lines say.

Darknet finds an image's labels by editing its path (`fill_truth_detection`
in src/data.c, a chain of `find_replace` calls, each replacing only the
*first* occurrence of a substring anywhere in the path): `images` ->
`labels`, `JPEGImages` -> `labels`, `raw` -> `labels`, then the extension
`.jpg`, `.png`, `.JPG`, `.JPEG` -> `.txt`.  pydarknet also maps `.jpeg` and
`.bmp` (for which Darknet would read the image file itself as a label file,
find no boxes and train on background).

A label file has one box a line, `class x y w h`: the class index, the box
centre and size relative to the image width and height.  A line with
x == 0 and y == 0 exactly is YOLO9000's class-only label (data.c
`correct_boxes`): an image known to show that class, with no box.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pydarknet.data.datafile import read_lines
from pydarknet.errors import DarknetError, finite_float

# Darknet: fill_truth_detection's find_replace chain, in its order.
_FOLDER_RULES = (("images", "labels"), ("JPEGImages", "labels"), ("raw", "labels"))
_EXTENSION_RULES = tuple((ext, ".txt") for ext in (".jpg", ".png", ".JPG", ".JPEG", ".jpeg", ".bmp"))

# AlexeyAB src/utils.c replace_image_to_label: its find_replace chain (first occurrence each), in its order.
_ALEXEYAB_FOLDER_RULES = (
    ("/images/train2017/", "/labels/train2017/"), ("/images/val2017/", "/labels/val2017/"), ("/JPEGImages/", "/labels/"),
    ("\\images\\train2017\\", "\\labels\\train2017\\"), ("\\images\\val2017\\", "\\labels\\val2017\\"),
    ("\\images\\train2014\\", "\\labels\\train2014\\"), ("\\images\\val2014\\", "\\labels\\val2014\\"),
    ("/images/train2014/", "/labels/train2014/"), ("/images/val2014/", "/labels/val2014/"), ("\\JPEGImages\\", "\\labels\\"),
)
_ALEXEYAB_EXTENSIONS = (".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".bmp", ".BMP", ".ppm", ".PPM", ".tiff", ".TIFF")


def label_path(image_path: str | Path) -> Path:
    """The label file Darknet reads for `image_path`.

    Darknet's rule, quirks included: each step replaces the first match
    anywhere in the path, so `/data/drawings/images/a.jpg` becomes
    `/data/dlabelsings/labels/a.txt` (`raw` in `drawings`).
    """
    text = str(image_path)
    for find, replace in _FOLDER_RULES + _EXTENSION_RULES:
        text = text.replace(find, replace, 1)  # Darknet: find_replace (first occurrence)
    return Path(text)


def alexeyab_label_path(image_path: str | Path) -> Path:
    """The label file AlexeyAB's Darknet reads for `image_path` (src/utils.c replace_image_to_label).

    Only COCO's `images/{train,val}{2014,2017}` and VOC's `JPEGImages` folders
    map to `labels` (no plain `images` or `raw`: a label file usually sits
    beside its image), the path is trimmed of spaces and tabs, and an image
    extension is replaced only at the end of the name (find_replace_extension).
    """
    text = str(image_path)
    for find, replace in _ALEXEYAB_FOLDER_RULES:
        text = text.replace(find, replace, 1)
    text = text.strip(" \t")
    for ext in _ALEXEYAB_EXTENSIONS:
        if text.endswith(ext):
            return Path(text[: -len(ext)] + ".txt")
    return Path(text)


def is_class_only(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which label boxes are class-only: x == 0 and y == 0 exactly, as read (data.c `correct_boxes`)."""
    return (x == 0) & (y == 0)


def read_labels(path: str | Path, classes: int | None = None) -> np.ndarray:
    """Read a label file for evaluation or anchors: float32 (K, 5) rows `class, x, y, w, h`.

    Each line is checked as `read_training_labels` checks it (its class
    below `classes` when given), and its coordinates must lie inside
    [0, 1]: Darknet would score against (or cluster) a box written in
    pixels as it is, here it is an error naming `file:line`.  Zero sizes
    and YOLO9000's class-only lines `5 0 0 0 0` are kept as they are.
    """
    rows = _read_rows(path)
    for where, row in rows:
        _check_class(row, where, classes)
        for name, value in zip("xywh", row[1:]):
            if not 0 <= value <= 1:
                raise DarknetError(f"{where}: {name} {value:g} is outside [0, 1] (label values are relative to the image)")
    return _array(rows)


def read_training_labels(
    path: str | Path, classes: int | None = None, class_map: Sequence[int] | None = None, class_only: bool = False
) -> np.ndarray:
    """Read a label file as Darknet's training does (data.c `read_boxes`): float32 (K, 5) rows `class, x, y, w, h`.

    Darknet takes any numbers (`correct_boxes` clips the box to the image,
    see `pydarknet.data.augment`); it stops silently at the first line it
    cannot scan and trains on what came before, and reads past its outputs
    with a class it has no entry for.  Here such a line is an error naming
    `file:line`: not five fields, a class that is not a whole number >= 0,
    a coordinate that is not a finite float32 number, or a class the head
    cannot train:
    - a box's class indexes the head's `map=` when it has one (region_layer.c
      `forward_region_layer`: `class = l.map[class]`), else its `classes`;
    - a class-only line (x == y == 0) needs `class_only` (a [region] with
      `tree=`, whose `softmax_tree` branch trains it; any other head would
      index its output with x = 999999) and its class, never mapped, is
      below `classes`.
    Blank lines are skipped.
    """
    rows = _read_rows(path)
    for where, row in rows:
        if is_class_only(row[1], row[2]):
            if not class_only:
                raise DarknetError(
                    f"{where}: x = y = 0 is a class-only label (YOLO9000), which only a [region] with tree= trains"
                )
            _check_class(row, where, classes, " (a class-only label's class is the layer's, not mapped)" if class_map is not None else "")
        elif class_map is not None:
            _check_mapped(row, where, class_map, classes)
        else:
            _check_class(row, where, classes)
    return _array(rows)


def _read_rows(path: str | Path) -> list[tuple[str, np.ndarray]]:
    """(`file:line`, float32 row) of each non-blank line, checked to be five numbers."""
    rows = []
    for number, line in enumerate(read_lines(path, "label file"), start=1):
        fields = line.split()
        if fields:
            where = f"{path}:{number}"
            rows.append((where, _parse_line(fields, where)))
    return rows


def _parse_line(fields: list[str], where: str) -> np.ndarray:
    if len(fields) != 5:
        raise DarknetError(f"{where}: expected 'class x y w h', found {len(fields)} fields")
    try:
        cls = int(fields[0])
    except ValueError:
        raise DarknetError(f"{where}: class '{fields[0]}' is not a whole number") from None
    if not 0 <= cls < 2**31:  # Darknet: fscanf %d into an int
        raise DarknetError(f"{where}: class {cls} out of range")
    values = []
    for name, field in zip("xywh", fields[1:]):
        value = finite_float(field)
        if value is None:
            raise DarknetError(f"{where}: {name} '{field}' is not a number")
        with np.errstate(over="ignore"):
            single = np.float32(value)  # Darknet: fscanf %f into a float
        if not np.isfinite(single):
            raise DarknetError(f"{where}: {name} {field} is too large for a float (Darknet reads it as inf)")
        values.append(single)
    return np.array([cls, *values], dtype=np.float32)


def _check_class(row: np.ndarray, where: str, classes: int | None, note: str = "") -> None:
    if classes is not None and row[0] >= classes:
        raise DarknetError(f"{where}: class {int(row[0])} out of range (classes={classes}){note}")


def _check_mapped(row: np.ndarray, where: str, class_map: Sequence[int], classes: int | None) -> None:
    if row[0] >= len(class_map):
        into = f" to the layer's {classes} classes" if classes is not None else ""
        raise DarknetError(
            f"{where}: class {int(row[0])} has no entry in the head's map= ({len(class_map)} entries, mapping label classes "
            f"0-{len(class_map) - 1}{into}); a box label already indexed by the layer's classes (e.g. a 9k tree index "
            "for yolo9000.cfg, whose coco9k.map maps COCO's 80) needs a cfg without map="
        )


def _array(rows: list[tuple[str, np.ndarray]]) -> np.ndarray:
    return np.array([row for _, row in rows], dtype=np.float32).reshape(-1, 5)
