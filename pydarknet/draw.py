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

from pydarknet.detect import Detection

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
    height, width = bgr.shape[:2]
    # Darknet: int width = im.h * .006 (0 below 167 pixels, which draws no box: at least 1 here)
    line = max(1, int(height * 0.006))
    font_scale = max(height * 0.03, 10) / 22  # Darknet: label height im.h * .03; Hershey simplex is ~22 px at scale 1
    thickness = max(1, int(font_scale * 1.5))
    for det in detections:
        if not det.labels:
            continue
        color = class_color(det.labels[0][0], len(det.probs))  # Darknet: the first class above thresh
        left, top, right, bottom = det.pixel_box(width, height)
        for i in range(line):  # Darknet: draw_box_width, nested one-pixel boxes
            cv2.rectangle(bgr, (left + i, top + i), (right - i, bottom - i), color, 1)
        text = label_text(det, names)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        band_h = th + base + 2
        row = top + line
        if row - band_h >= 0:  # Darknet: draw_label puts the label above the box when it fits
            row -= band_h
        cv2.rectangle(bgr, (left, row), (left + tw + 2, row + band_h), color, cv2.FILLED)
        cv2.putText(bgr, text, (left + 1, row + th + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return bgr
