"""AlexeyAB's darknet.py (its ctypes wrapper of libdarknet) on pydarknet: `import pydarknet.darknet as darknet`.

Scripts written for darknet.py (its darknet_images.py, darknet_video.py) run unchanged but
for the import line: every `darknet.*` call they make is here, with darknet.py's
signatures and results, and the numbers of AlexeyAB's libdarknet computed by pydarknet
(the network in AlexeyAB's dialect, `pydarknet.infer.detect`'s decode and NMS).

- `load_network` gives `(network, class_names, class_colors)`: a `pydarknet.Darknet`, the
  `.data` file's names (its `classes=`, default 2, of them: get_metadata) and random colours.
- `make_image` / `copy_image_from_bytes` hold the caller's pixels as Darknet's float image
  (`IMAGE`); `detect_image` is network_predict_image (a plain resize_image to the network
  size unless the image has it already), get_network_boxes(relative=0, letter=0): boxes in
  pixels of the image given (the network input when the caller resized, as the scripts do),
  do_nms_sort, then darknet.py's remove_negatives, decode_detection and its sort.
- darknet_images.py's batch path (`network_predict_batch`, `do_nms_obj`, `remove_negatives`)
  and `predict_image` (its image_classification) too.
- The `free_*` calls are no-ops: memory is Python's.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from ctypes import POINTER, c_float  # darknet_images.py's batch_detection: darknet.POINTER(darknet.c_float) (old darknet.py: from ctypes import *)
from dataclasses import astuple, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from pydarknet.api import Darknet, load
from pydarknet.cfg.parser import read_data_file
from pydarknet.data.datafile import read_names
from pydarknet.errors import DarknetError
from pydarknet.image import image_from_bytes, resize_image
from pydarknet.infer.detect import candidates, detections_from_heads, names_from_data, predict
from pydarknet.infer.nms import nms_obj
from pydarknet.layers.gaussian_yolo import GaussianYolo
from pydarknet.layers.yolo import Yolo

__all__ = ["BOX", "DETECTION", "DETNUMPAIR", "IMAGE", "POINTER", "bbox2points", "c_float", "class_colors",
           "copy_image_from_bytes", "decode_detection", "detect_image", "do_nms_obj", "draw_boxes", "free_batch_detections",
           "free_detections", "free_image", "free_network_ptr", "load_network", "make_image", "network_height",
           "network_predict_batch", "network_width", "predict_image", "print_detections", "remove_negatives"]

# darknet.py's detect_image calls do_nms_sort, whatever nms_kind the cfg's last [yolo] names (detector test's choice)
DO_NMS_SORT = ("default", 0.6)
DIALECT = ("alexeyab", "darknet.py: AlexeyAB's libdarknet")


@dataclass
class IMAGE:
    """darknet.py's IMAGE (Darknet's `image`): `data` holds c*h*w floats, plane by plane, row by row.

    `make_image` gives a numpy float32 buffer; darknet_images.py's batch_detection passes
    a ctypes float pointer (`IMAGE(w, h, 3, array.ctypes.data_as(POINTER(c_float)))`).
    """

    w: int
    h: int
    c: int
    data: object = None


@dataclass
class BOX:
    """darknet.py's BOX: centre and size, in pixels of the image given to get_network_boxes (relative=0)."""

    x: float
    y: float
    w: float
    h: float


@dataclass
class DETECTION:
    """darknet.py's DETECTION, the fields its functions read: `prob[j]` is class j's probability (a float, as ctypes gives)."""

    bbox: BOX
    classes: int
    prob: list[float]
    objectness: float


@dataclass
class DETNUMPAIR:
    """darknet.py's DETNUMPAIR: one image's detection array of network_predict_batch."""

    num: int
    dets: list[DETECTION]


def load_network(config_file: str | Path, data_file: str | Path, weights: str | Path,
                 batch_size: int = 1) -> tuple[Darknet, list[str], dict[str, tuple[int, int, int]]]:
    """darknet.py load_network: (network, class_names, class_colors).

    The network (load_network_custom) computes as AlexeyAB's Darknet (`set_dialect`); it
    takes any batch, so `batch_size` changes nothing.  The names are get_metadata's: the
    first `classes=` (default 2) lines of the `.data` file's `names=` file.
    """
    net = load(config_file, weights)
    net.set_dialect(*DIALECT)
    classes = read_data_file(data_file).get_int("classes", 2)
    names_path = names_from_data(data_file)
    names = read_names(names_path)
    if not 0 < classes <= len(names):
        raise DarknetError(f"{data_file}: classes={classes}, but {names_path} names {len(names)}")
    class_names = names[:classes]
    return net, class_names, class_colors(class_names)


def network_width(net: Darknet) -> int:
    """darknet.py network_width: the network input's width."""
    return net.width


def network_height(net: Darknet) -> int:
    """darknet.py network_height: the network input's height."""
    return net.height


def make_image(w: int, h: int, c: int) -> IMAGE:
    """Darknet's make_image: a w x h image of c channels, zeros."""
    return IMAGE(w, h, c, np.zeros(c * h * w, dtype=np.float32))


def copy_image_from_bytes(image: IMAGE, data: bytes) -> None:
    """AlexeyAB's copy_image_from_bytes: h*w*c interleaved bytes (`frame.tobytes()`) into the image, / 255."""
    size = image.h * image.w * image.c
    if len(data) < size:
        raise DarknetError(f"copy_image_from_bytes: {len(data)} bytes for a {image.w}x{image.h}x{image.c} image of {size}")
    pixels = np.frombuffer(data, dtype=np.uint8, count=size).reshape(image.h, image.w, image.c)
    _floats(image.data, size)[:] = image_from_bytes(pixels).ravel()


def free_image(image: IMAGE) -> None:
    """darknet.py free_image: nothing to free."""


def free_detections(detections: list[DETECTION], num: int) -> None:
    """darknet.py free_detections: nothing to free."""


def free_batch_detections(batch: list[DETNUMPAIR], size: int) -> None:
    """darknet.py free_batch_detections: nothing to free."""


def free_network_ptr(net: Darknet) -> None:
    """darknet.py free_network_ptr: nothing to free."""


def predict_image(net: Darknet, image: IMAGE) -> np.ndarray:
    """AlexeyAB's network_predict_image: the network's output (float32, flat) for the image.

    The image is resized (resize_image) to the network size unless it has it.  The output
    is the last head's (a classifier's: its last layer that is not [cost]).
    """
    return _predict(net, image)[-1][0].flatten().cpu().numpy()


def detect_image(net: Darknet, class_names: Sequence[str], image: IMAGE, thresh: float = .5, hier_thresh: float = .5,
                 nms: float = .45) -> list[tuple[str, str, tuple[float, float, float, float]]]:
    """darknet.py detect_image: [(label, confidence, (x, y, w, h))], box centre and size in pixels of `image`.

    network_predict_image, get_network_boxes(image.w, image.h, relative=0, letter=0) and,
    if `nms`, do_nms_sort (`pydarknet.infer.detect.detections_from_heads`); then
    remove_negatives (one entry per class above thresh), decode_detection (confidence
    `str(round(prob * 100, 2))`) and darknet.py's sort by that string.
    """
    heads = _predict(net, image)
    (found,) = detections_from_heads(net, heads, [(image.w, image.h)], thresh, hier_thresh, nms, relative=False,
                                     letterbox=False, nms_rule=DO_NMS_SORT)
    detections = [_detection(d.box, d.objectness, d.probs, image.w, image.h) for d in found]
    predictions = decode_detection(remove_negatives(detections, class_names, len(detections)))
    return sorted(predictions, key=lambda x: x[1])


def network_predict_batch(net: Darknet, image: IMAGE, batch_size: int, w: int, h: int, thresh: float, hier_thresh: float,
                          map: object = None, relative: int = 0, letter: int = 0) -> list[DETNUMPAIR]:
    """AlexeyAB's network_predict_batch: each image's detection array, before NMS.

    `image.data` holds `batch_size` network inputs; boxes are corrected to w x h images
    (`letter`: undo a letterbox) and, unless `relative`, in their pixels.  The array is
    get_network_boxes' (fill_network_boxes_batch) for [yolo] / [Gaussian_yolo] heads, the
    only ones whose every detection pydarknet decodes (an AlexeyAB [region] array also
    holds its detections without a class, which do_nms_obj would see).
    """
    if map is not None:
        raise DarknetError("network_predict_batch: a class map is not supported (pass None, as darknet_images.py does)")
    if not all(isinstance(net.layers[i], (Yolo, GaussianYolo)) for i in net.output_indices):
        raise DarknetError(f"{net.cfg_path}: network_predict_batch here takes [yolo] / [Gaussian_yolo] heads only")
    c = net.input_shape[0]
    inputs = _floats(image.data, batch_size * c * net.height * net.width)
    heads = predict(net, torch.from_numpy(inputs.reshape(batch_size, c, net.height, net.width).copy()))
    found = candidates(net, heads, [(w, h)] * batch_size, thresh, hier_thresh, letterbox=bool(letter))
    scale = (1, 1) if relative else (w, h)
    pairs = []
    for b in range(batch_size):
        rows = (found.image == b).nonzero().flatten().cpu()
        dets = [_detection(box, obj, probs, *scale) for box, obj, probs in
                zip(found.boxes[rows].cpu().numpy(), found.objectness[rows].tolist(), found.probs[rows].cpu().numpy())]
        pairs.append(DETNUMPAIR(len(dets), dets))
    return pairs


def do_nms_obj(detections: list[DETECTION], total: int, classes: int, thresh: float) -> None:
    """Darknet's do_nms_obj on a detection array, in place (`pydarknet.infer.nms.nms_obj`).

    The detections with objectness 0 (no probs) end the array, in their own order.
    """
    array = detections[:total]
    boxes = np.array([astuple(d.bbox) for d in array], dtype=np.float32).reshape(-1, 4)
    order, suppressed = nms_obj(boxes, np.array([d.objectness for d in array], dtype=np.float32), thresh)
    empty = [d for d in array if d.objectness == 0]
    for i in order[suppressed]:
        array[i].objectness = 0.0
        array[i].prob = [0.0 if k < classes else p for k, p in enumerate(array[i].prob)]
    detections[:total] = [array[i] for i in order] + empty


def remove_negatives(detections: Sequence[DETECTION], class_names: Sequence[str],
                     num: int) -> list[tuple[str, float, tuple[float, float, float, float]]]:
    """darknet.py remove_negatives: (name, prob, box) for each detection and each class with prob > 0."""
    return [(name, d.prob[idx], astuple(d.bbox)) for d in detections[:num]
            for idx, name in enumerate(class_names) if d.prob[idx] > 0]


def decode_detection(detections: Iterable[tuple]) -> list[tuple[str, str, tuple]]:
    """darknet.py decode_detection: the label as str, the confidence as `str(round(confidence * 100, 2))`."""
    return [(str(label), str(round(confidence * 100, 2)), bbox) for label, confidence, bbox in detections]


def bbox2points(bbox: Sequence[float]) -> tuple[int, int, int, int]:
    """darknet.py bbox2points: centre and size to (xmin, ymin, xmax, ymax), each `round`ed."""
    x, y, w, h = bbox
    return round(x - (w / 2)), round(y - (h / 2)), round(x + (w / 2)), round(y + (h / 2))


def class_colors(names: Iterable[str]) -> dict[str, tuple[int, int, int]]:
    """darknet.py class_colors: a random BGR colour per name, three `random.randint(0, 255)` each, in order."""
    return {name: (random.randint(0, 255), random.randint(0, 255), random.randint(0, 255)) for name in names}


def print_detections(detections: Iterable[tuple], coordinates: bool = False) -> None:
    """darknet.py print_detections: `label: confidence%`, with the box when `coordinates`."""
    print("\nObjects:")
    for label, confidence, (x, y, w, h) in detections:
        if coordinates:
            print(f"{label}: {confidence}%    (left_x: {x:.0f}   top_y:  {y:.0f}   width:   {w:.0f}   height:  {h:.0f})")
        else:
            print(f"{label}: {confidence}%")


def draw_boxes(detections: Iterable[tuple], image: np.ndarray, colors: dict[str, tuple[int, int, int]]) -> np.ndarray:
    """darknet.py draw_boxes: a 1-pixel box and `label [confidence]` above it, in the class colour, on `image` (returned)."""
    for label, confidence, bbox in detections:
        left, top, right, bottom = bbox2points(bbox)
        cv2.rectangle(image, (left, top), (right, bottom), colors[label], 1)
        cv2.putText(image, f"{label} [{float(confidence):.2f}]", (left, top - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colors[label], 2)
    return image


def _floats(data: object, count: int) -> np.ndarray:
    """The first `count` floats of an IMAGE's data (a numpy buffer or a ctypes float pointer), as a writable view."""
    if data is None:
        raise DarknetError("the IMAGE has no data: make it with make_image(w, h, c)")
    data = data if isinstance(data, np.ndarray) else np.ctypeslib.as_array(data, shape=(count,))
    if data.dtype != np.float32 or data.size < count:
        raise DarknetError(f"the IMAGE's data is {data.dtype} x {data.size}, not float32 x {count}")
    return data.reshape(-1)[:count]


def _predict(net: Darknet, image: IMAGE) -> list[torch.Tensor]:
    """AlexeyAB's network_predict_image: the heads' outputs for the image, resize_image'd to the network size if needed."""
    pixels = _floats(image.data, image.c * image.h * image.w).reshape(image.c, image.h, image.w)
    if (image.w, image.h) != (net.width, net.height):
        pixels = resize_image(pixels, net.width, net.height)
    return predict(net, torch.from_numpy(pixels[None].copy()))


def _detection(box: Sequence[float], objectness: float, probs: np.ndarray, w: int, h: int) -> DETECTION:
    """A DETECTION from a relative box: get_network_boxes(relative=0) multiplies it by w and h in float32 (`b.x *= w`)."""
    x, y, bw, bh = (np.asarray(box, dtype=np.float32) * np.array([w, h, w, h], dtype=np.float32)).tolist()
    return DETECTION(BOX(x, y, bw, bh), len(probs), [float(p) for p in probs], float(objectness))
