"""Darknet's result files from `detector valid` (examples/detector.c).

`validate_detector` runs every image of the `valid=` list letterboxed, takes
`get_network_boxes(thresh=.005, hier_thresh=.5, relative=0)` (boxes in
pixels of the original image), `do_nms_sort(.45)`, and writes, for every
detection and every class whose probability is non-zero:

- VOC (`print_detector_detections`), one file per class
  `<results>/comp4_det_test_<name>.txt`, lines `id prob x1 y1 x2 y2`: id is
  Darknet's `basecfg(path)` (file name up to its first dot), corners are
  1-based pixels `x - w/2 + 1` clamped to [1, width] x [1, height].
- COCO (`print_cocos`, `eval=coco`), `<results>/coco_results.json`: one
  object per line `{"image_id":%d, "category_id":%d, "bbox":[x, y, w, h],
  "score":%f}` with 0-based corners clamped to [0, width] x [0, height],
  the image id from `get_coco_image_id` and the category id from the
  `coco_ids` table.

Numbers are printed with C's `%f` from Darknet's float32 values.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO

import numpy as np

from pydarknet.errors import DarknetError
from pydarknet.weights import NEW_FILE_MODE

# Darknet: examples/detector.c `coco_ids`, class index -> COCO category id
COCO_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33,
            34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61,
            62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90)

VOC_PREFIX = "comp4_det_test_"
COCO_NAME = "coco_results"


def check_file_names(names: list[str], source: str | Path) -> None:
    """Class names that go into file names must stay file names, one per class.

    Darknet pastes each name as is into `<results>/comp4_det_test_<name>.txt`
    (and pydarknet's `map --plot` into `pr_<name>.png`), so a names file
    holding `../../x` writes outside the folder, and two classes of one name
    share a file.  Such a names file is refused, naming its line; where a name
    is only printed (detect) any name is fine.
    """
    first: dict[str, int] = {}
    for number, name in enumerate(names, 1):
        if name in (".", "..") or any(c in name for c in "/\\\0"):
            raise DarknetError(f"{source}:{number}: class name {name!r} cannot be part of a result file name "
                               "('/', '\\' and NUL are not allowed, nor '.' or '..')")
        if name in first:
            raise DarknetError(f"{source}:{number}: class name {name!r} repeats line {first[name]}: "
                               "both classes would write one result file")
        first[name] = number


def image_id(path: str) -> str:
    """Darknet's `basecfg`: the file name after the last '/', cut at its first '.'."""
    return path.rsplit("/", 1)[-1].split(".", 1)[0]


def coco_image_id(path: str) -> int:
    """Darknet's `get_coco_image_id`: `atoi` of what follows the last '_' of the path, else the last '/'."""
    cut = path.rfind("_") if "_" in path else path.rfind("/")
    match = re.match(r"\s*[+-]?\d+", path[cut + 1:])
    return int(match.group()) if match else 0  # Darknet: atoi gives 0 without digits


def pixel_boxes(boxes: np.ndarray, width: int | np.ndarray, height: int | np.ndarray) -> np.ndarray:
    """Relative (x, y, w, h) -> pixels, in float32 (Darknet: `correct_region_boxes` with relative=0).

    `width` and `height` are the image's, or each box's (arrays).
    """
    scale = np.stack(np.broadcast_arrays(width, height, width, height), axis=-1).astype(np.float32)
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * scale


def clamped_corners(boxes: np.ndarray, width: int | np.ndarray, height: int | np.ndarray, one_based: bool) -> np.ndarray:
    """Relative (x, y, w, h) -> pixel corners x1 y1 x2 y2 clamped to the image (or each box's), float32.

    Darknet: `x - w/2. (+ 1)` is computed in double and stored in float; the
    low corner is clamped to 1 (`print_detector_detections`, one_based) or 0
    (`print_cocos`), the high corner to the width/height.
    """
    b = pixel_boxes(boxes, width, height).astype(np.float64)
    half = b[:, 2:] / 2.0
    offset = 1.0 if one_based else 0.0
    c = np.concatenate([b[:, :2] - half + offset, b[:, :2] + half + offset], axis=1).astype(np.float32)
    c[:, :2] = np.maximum(c[:, :2], np.float32(offset))
    c[:, 2] = np.minimum(c[:, 2], width)
    c[:, 3] = np.minimum(c[:, 3], height)
    return c


def voc_lines(ident: str, boxes: np.ndarray, probs: np.ndarray, width: int, height: int) -> list[tuple[int, str]]:
    """(class, line) for every non-zero prob, detection by detection (Darknet: `print_detector_detections`)."""
    c = clamped_corners(boxes, width, height, one_based=True)
    rows, cols = np.nonzero(probs)
    return [(int(j), "%s %f %f %f %f %f\n" % (ident, probs[i, j], *c[i])) for i, j in zip(rows, cols)]


def coco_lines(path: str, boxes: np.ndarray, probs: np.ndarray, width: int, height: int) -> list[str]:
    """One JSON object line per non-zero prob (Darknet: `print_cocos`)."""
    c = clamped_corners(boxes, width, height, one_based=False)
    size = c[:, 2:] - c[:, :2]  # float32 xmax - xmin
    ident = coco_image_id(path)
    rows, cols = np.nonzero(probs)
    return ['{"image_id":%d, "category_id":%d, "bbox":[%f, %f, %f, %f], "score":%f},\n'
            % (ident, COCO_IDS[j], c[i, 0], c[i, 1], size[i, 0], size[i, 1], probs[i, j]) for i, j in zip(rows, cols)]


class ResultWriter:
    """Writes Darknet's VOC or COCO result files, each into a temp file renamed into place on success.

    Use as a context manager; `add(path, boxes, probs, width, height)` per image
    (boxes relative (x, y, w, h), probs (N, classes)).  On an error nothing is
    left behind.  VOC file names are made of the class names, checked first
    (`check_file_names`; `names_path` names the file in the error).
    """

    def __init__(self, directory: str | Path, names: list[str], coco: bool = False, outfile: str | None = None,
                 names_path: str | Path = "names") -> None:
        self.directory = Path(directory)
        self.coco = coco
        if coco and len(names) > len(COCO_IDS):
            raise DarknetError(f"eval=coco: Darknet's coco_ids table has {len(COCO_IDS)} classes, the network has {len(names)}")
        if not coco:
            check_file_names(names, names_path)
        stem = outfile or (COCO_NAME if coco else VOC_PREFIX)
        self.targets = [self.directory / f"{stem}.json"] if coco else [self.directory / f"{stem}{n}.txt" for n in names]
        self.files: list[IO[bytes]] = []
        self.temps: list[str] = []
        self.written = 0

    def __enter__(self) -> "ResultWriter":
        try:
            for target in self.targets:  # each temp file beside its target (an -out prefix may name other folders)
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
                os.chmod(temp, NEW_FILE_MODE)
                self.temps.append(temp)
                self.files.append(os.fdopen(fd, "wb"))
        except OSError as err:
            self._discard()
            raise DarknetError(f"{err.filename or self.directory}: cannot write results: {err.strerror or err}") from None
        if self.coco:
            self.files[0].write(b"[\n")
        return self

    def add(self, path: str, boxes: np.ndarray, probs: np.ndarray, width: int, height: int) -> None:
        if self.coco:
            lines = coco_lines(path, boxes, probs, width, height)
            self.files[0].write("".join(lines).encode())
            self.written += len(lines)
            return
        for j, line in voc_lines(image_id(path), boxes, probs, width, height):
            self.files[j].write(line.encode())
            self.written += 1

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None:
            self._discard()
            return
        try:
            if self.coco:
                out = self.files[0]
                if self.written:
                    out.seek(-2, os.SEEK_END)  # Darknet: fseek(fp, -2, SEEK_CUR) over the last ",\n"
                    out.truncate()
                    out.write(b"\n]\n")
                else:
                    out.write(b"]\n")  # Darknet would leave "\n]\n", not JSON; an empty list instead
            for f in self.files:
                f.close()  # every file complete (e.g. the disk not full) before any replaces its target
        except OSError as err:
            self._discard()
            raise DarknetError(f"{self.directory}: cannot write results: {err.strerror or err}") from None
        for temp, target in zip(self.temps, self.targets):
            os.replace(temp, target)
        self.files, self.temps = [], []

    def _discard(self) -> None:
        for f in self.files:
            with contextlib.suppress(OSError):  # closing flushes, which fails again on a full disk
                f.close()
        for temp in self.temps:
            Path(temp).unlink(missing_ok=True)
        self.files, self.temps = [], []


def read_voc_results(directory: str | Path, names: list[str], prefix: str = VOC_PREFIX) -> list[tuple[str, int, float, float, float, float, float]]:
    """Parse Darknet's per-class VOC files back: (image id, class, prob, x1, y1, x2, y2), file by file."""
    rows = []
    for j, name in enumerate(names):
        path = Path(directory) / f"{prefix}{name}.txt"
        try:
            text = path.read_text()
        except OSError as err:
            raise DarknetError(f"{path}: cannot read: {err.strerror or err}") from None
        for number, line in enumerate(text.splitlines(), 1):
            fields = line.split()
            try:
                if len(fields) != 6:
                    raise ValueError
                rows.append((fields[0], j, *map(float, fields[1:])))
            except ValueError:
                raise DarknetError(f"{path}:{number}: expected 'id prob x1 y1 x2 y2', got {line!r}") from None
    return rows
