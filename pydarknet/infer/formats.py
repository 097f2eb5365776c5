"""What AlexeyAB's `detector test` prints and writes about an image's detections (src/detector.c test_detector).

- The text lines of src/image.c draw_detections_v3 (`printed_classes`,
  `percent`, `ext_output`): the detections with a
  class above thresh, sorted by their left edge (compare_by_lefts), each
  with its best class first, then its other classes above thresh, as
  `name: 97%`; with `-ext_output` each line goes on with the box in pixels,
  `\\t(left_x: %4.0f   top_y: %4.0f   width: %4.0f   height: %4.0f)`.
- The `-out` JSON file: `[`, one src/network.c detection_to_json object per
  image (`frame_id`, `filename`, `objects`: `class_id`, `name`,
  `relative_coordinates` {`center_x`, `center_y`, `width`, `height`},
  `confidence`), `]`, in its spacing.
- The `-save_labels` label file: a Darknet label line `class x y w h`
  (`%d %2.4f %2.4f %2.4f %2.4f`) per detection, its best class above thresh.

Numbers are computed as the C does, in float32 from Darknet's float boxes
and probabilities: `round()` halves away from zero, `%.0f` and `%f` print the
exact float.  A class whose name starts with `dont_show` is left out of the
best class and of the JSON, as AlexeyAB's Darknet does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np

from pydarknet.infer.detect import Detection
from pydarknet.infer.draw import class_name

JSON_THRESH = np.float32(0.005)  # detection_to_json: `const float thresh = 0.005;`
_TWO = np.float32(2)


def c_round(value: float) -> float:
    """C's round(): to the nearest whole number, halves away from zero (Python's round() takes halves to even).

    Exact for float32 values (`abs(value) + 0.5` is then exact in a double); inf and NaN pass through.
    """
    if not math.isfinite(value):
        return value
    return math.copysign(math.floor(abs(value) + 0.5), value)


def percent(prob: float) -> str:
    """C's `printf("%.0f%%", prob * 100)` of a float prob: the product in float32, printed rounded half to even."""
    return f"{float(np.float32(prob) * np.float32(100)):.0f}%"


def shown_class(cls: int, names: Sequence[str] | None) -> bool:
    """Whether a class may be a best class or a JSON object: AlexeyAB's `strncmp(names[j], "dont_show", 9)`."""
    return not class_name(cls, names).startswith("dont_show")


def best_shown_class(det: Detection, names: Sequence[str] | None, thresh: float) -> int:
    """get_actual_detections' best class: the first class of the highest prob above thresh that is shown, else -1."""
    best, best_prob = -1, np.float32(thresh)
    for cls, prob in det.labels:
        if np.float32(prob) > best_prob and shown_class(cls, names):
            best, best_prob = cls, np.float32(prob)
    return best


def _left_edge(det: Detection) -> np.float32:
    """compare_by_lefts' key: `bbox.x - bbox.w/2` in float."""
    x, _, w, _ = np.float32(det.box)
    return x - w / _TWO


def ext_output(det: Detection, width: int, height: int) -> str:
    """The `-ext_output` part of a line: the box's left, top, width and height in pixels of a width x height image."""
    x, y, w, h = np.float32(det.box)
    left = c_round(float((x - w / _TWO) * np.float32(width)))  # C: round((b.x - b.w/2)*im.w)
    top = c_round(float((y - h / _TWO) * np.float32(height)))
    size_w = c_round(float(w * np.float32(width)))
    size_h = c_round(float(h * np.float32(height)))
    return f"\t(left_x: {left:4.0f}   top_y: {top:4.0f}   width: {size_w:4.0f}   height: {size_h:4.0f})"


def printed_classes(dets: Sequence[Detection], names: Sequence[str] | None, thresh: float) -> list[tuple[Detection, int]]:
    """draw_detections_v3's printed (detection, class) pairs, in its order (see the module)."""
    chosen = [(det, best) for det in dets if (best := best_shown_class(det, names, thresh)) >= 0]
    chosen.sort(key=lambda item: _left_edge(item[0]))  # glibc's qsort: a stable merge sort
    return [(det, cls) for det, best in chosen
            for cls in (best, *(c for c, p in det.labels if c != best and np.float32(p) > np.float32(thresh)))]


def json_object(frame_id: int, filename: str | None, dets: Sequence[Detection], names: Sequence[str] | None) -> str:
    """detection_to_json: one image's object, every (detection, class) with a prob above .005 (a shown class)."""
    head = f'{{\n "frame_id":{frame_id}, \n'
    if filename is not None:
        head += f' "filename":{json.dumps(filename, ensure_ascii=False)}, \n'
    objects = []
    for det in dets:
        x, y, w, h = det.box
        for cls, prob in det.labels:
            if np.float32(prob) > JSON_THRESH and shown_class(cls, names):
                objects.append(f'  {{"class_id":{cls}, "name":{json.dumps(class_name(cls, names), ensure_ascii=False)}, '
                               f'"relative_coordinates":{{"center_x":{x:f}, "center_y":{y:f}, "width":{w:f}, "height":{h:f}}}, '
                               f'"confidence":{prob:f}}}')
    return head + ' "objects": [ \n' + ", \n".join(objects) + "\n ] \n}"


def json_file(objects: Sequence[str]) -> str:
    """test_detector's `-out` file: `[\\n`, the images' objects joined by `, \\n`, `\\n]`."""
    return "[\n" + ", \n".join(objects) + "\n]"


def label_lines(dets: Sequence[Detection], thresh: float) -> str:
    """test_detector's `-save_labels` file: `%d %2.4f %2.4f %2.4f %2.4f` (class, x, y, w, h relative) per detection
    with a class above thresh, that class being its first of the highest prob."""
    lines = []
    for det in dets:
        above = [(cls, prob) for cls, prob in det.labels if np.float32(prob) > np.float32(thresh)]
        if above:
            cls = max(above, key=lambda item: item[1])[0]  # C: prob > thresh && prob > best: the first highest
            x, y, w, h = det.box
            lines.append(f"{cls} {x:2.4f} {y:2.4f} {w:2.4f} {h:2.4f}\n")
    return "".join(lines)
