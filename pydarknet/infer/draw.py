"""Labelled boxes as Darknet's draw_detections draws them (src/image.c), with OpenCV.

Colours come from Darknet's `get_color` over its six-colour table, the
class picked by `class * 123457 % classes`; the line is `im.h * .006`
pixels wide; the label (every class above thresh, ", "-joined) sits on a
box-coloured band above the box's top edge, in black.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from pydarknet.infer.detect import Detection

# Darknet: float colors[6][3] = { {1,0,1}, {0,0,1},{0,1,1},{0,1,0},{1,1,0},{1,0,0} };
COLORS = ((1.0, 0.0, 1.0), (0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (0.0, 1.0, 0.0), (1.0, 1.0, 0.0), (1.0, 0.0, 0.0))


def get_color(c: int, x: int, maximum: int) -> float:
    """Darknet's get_color: component `c` of the table interpolated at x / maximum."""
    ratio = float(np.float32(x) / np.float32(maximum) * np.float32(5))
    i, j = math.floor(ratio), math.ceil(ratio)
    ratio -= i
    return (1 - ratio) * COLORS[i][c] + ratio * COLORS[j][c]


def class_color(cls: int, classes: int) -> tuple[int, int, int]:
    """The BGR colour (0..255) Darknet's draw_detections gives a class."""
    offset = cls * 123457 % classes
    # Darknet: red = get_color(2, ...), green = get_color(1, ...), blue = get_color(0, ...)
    red, green, blue = (get_color(c, offset, classes) for c in (2, 1, 0))
    return tuple(int(round(v * 255)) for v in (blue, green, red))  # type: ignore[return-value]


def label_text(detection: Detection, names: Sequence[str] | None) -> str:
    """Darknet's label: the names of the classes above thresh, in class order, ", "-joined."""
    return ", ".join(class_name(c, names) for c, _ in detection.labels)


def class_name(cls: int, names: Sequence[str] | None) -> str:
    """A class's name, or its id when there are no names for it."""
    return names[cls] if names is not None and cls < len(names) else str(cls)


def draw_detections(bgr: np.ndarray, detections: Sequence[Detection], names: Sequence[str] | None) -> np.ndarray:
    """Draw each detection's box and label on a uint8 BGR image (H, W, 3), in place; returns it."""
    height = bgr.shape[0]
    # Darknet: int width = im.h * .006 (0 below 167 pixels, which draws no box: at least 1 here)
    line = max(1, int(height * 0.006))
    font_scale = max(height * 0.03, 10) / 22  # Darknet: label height im.h * .03; Hershey simplex is ~22 px at scale 1
    for det in detections:
        if not det.labels:
            continue
        color = class_color(det.labels[0][0], len(det.probs))  # Darknet: the first class above thresh
        left, top, right, bottom = det.pixel_box(bgr.shape[1], height)
        _draw_box(bgr, (left, top, right, bottom), line, color)
        _draw_label(bgr, label_text(det, names), left, top + line, font_scale, color)
    return bgr


def _draw_box(bgr: np.ndarray, box: tuple[int, int, int, int], line: int, color: tuple[int, int, int]) -> None:
    """Darknet's draw_box_width: `line` nested one-pixel boxes, each corner clamped into the image (draw_box)."""
    height, width = bgr.shape[:2]
    left, top, right, bottom = box
    for i in range(line):
        x1, x2 = (min(max(x, 0), width - 1) for x in (left + i, right - i))
        y1, y2 = (min(max(y, 0), height - 1) for y in (top + i, bottom - i))
        cv2.rectangle(bgr, (x1, y1), (x2, y2), color, 1)


def _draw_label(bgr: np.ndarray, text: str, left: int, row: int, font_scale: float, color: tuple[int, int, int]) -> None:
    """Darknet's draw_label: black text on a band of `color` above row `row` if it fits there, else below it.

    Like Darknet, only what falls in the image is drawn (nothing when the
    band starts past the right or bottom edge).
    """
    thickness = max(1, int(font_scale * 1.5))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
    band_h = th + base + 2
    if row - band_h >= 0:  # Darknet: draw_label puts the label above the box when it fits
        row -= band_h
    if left >= bgr.shape[1] or row >= bgr.shape[0]:
        return
    cv2.rectangle(bgr, (left, row), (left + tw + 2, row + band_h), color, cv2.FILLED)
    cv2.putText(bgr, text, (left + 1, row + th + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), thickness, cv2.LINE_AA)
