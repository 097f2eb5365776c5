"""Darknet's label files: where they are, and what their lines say.

Darknet finds an image's labels by editing its path (`fill_truth_detection`
in src/data.c, a chain of `find_replace` calls, each replacing only the
*first* occurrence of a substring anywhere in the path): `images` ->
`labels`, `JPEGImages` -> `labels`, `raw` -> `labels`, then the extension
`.jpg`, `.png`, `.JPG`, `.JPEG` -> `.txt`.  pydarknet also maps `.jpeg` and
`.bmp` (for which Darknet would read the image file itself as a label file,
find no boxes and train on background).

A label file has one box a line, `class x y w h`: the class index, the box
centre and size relative to the image width and height.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pydarknet.data.datafile import read_lines
from pydarknet.errors import DarknetError, finite_float

# Darknet: fill_truth_detection's find_replace chain, in its order.
_FOLDER_RULES = (("images", "labels"), ("JPEGImages", "labels"), ("raw", "labels"))
_EXTENSION_RULES = tuple((ext, ".txt") for ext in (".jpg", ".png", ".JPG", ".JPEG", ".jpeg", ".bmp"))


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


def read_labels(path: str | Path, classes: int | None = None) -> np.ndarray:
    """Read a label file: float32 (K, 5) rows `class, x, y, w, h`.

    Darknet's `read_boxes` stops silently at the first line it cannot scan
    and so trains on whatever came before; here a bad line is an error
    naming `file:line`: not five fields, a class that is not a whole number
    >= 0 (or >= `classes` when given), or a coordinate that is not a finite
    number in [0, 1].  Darknet's `correct_boxes` would clip `x=3.5` or
    `w=1e30` into a box of the whole image (and anchor k-means would
    cluster it); a label file is written relative to its image, so such a
    value is a broken file.  A zero width or height stays legal (Darknet
    drops the box, w or h < .001 after clipping), and so do YOLO9000's
    class-only lines `5 0 0 0 0`.  Blank lines are skipped.
    """
    rows = []
    for number, line in enumerate(read_lines(path, "label file"), start=1):
        fields = line.split()
        if fields:
            rows.append(_parse_line(fields, f"{path}:{number}", classes))
    return np.array(rows, dtype=np.float32).reshape(-1, 5)


def _parse_line(fields: list[str], where: str, classes: int | None) -> list[float]:
    if len(fields) != 5:
        raise DarknetError(f"{where}: expected 'class x y w h', found {len(fields)} fields")
    try:
        cls = int(fields[0])
    except ValueError:
        raise DarknetError(f"{where}: class '{fields[0]}' is not a whole number") from None
    if cls < 0 or (classes is not None and cls >= classes):
        limit = f" (classes={classes})" if classes is not None else ""
        raise DarknetError(f"{where}: class {cls} out of range{limit}")
    values = []
    for name, field in zip("xywh", fields[1:]):
        value = finite_float(field)
        if value is None:
            raise DarknetError(f"{where}: {name} '{field}' is not a number")
        if not 0 <= value <= 1:
            raise DarknetError(f"{where}: {name} {field} is outside [0, 1] (label values are relative to the image)")
        values.append(value)
    return [float(cls), *values]
