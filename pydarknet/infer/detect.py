"""Darknet's `detector test` path as a function: images in, detections out.

`detect_batch` does what examples/detector.c:test_detector does per image,
for a whole batch in one forward: `letterbox_image` to the network size
(plain `resize_image` when the cfg says `letter_box=0`), predict,
`get_network_boxes(thresh, hier_thresh, relative=1)` and `do_nms_sort`.
In AlexeyAB's dialect (`net.dialect`, src/detector.c test_detector): a
plain `resize_image` unless `[net] letter_box=1` (or `-letter_box`, which
sets `net.options.letter_box`), the boxes corrected only when letterboxed,
and the NMS the last [yolo]/[Gaussian_yolo]/[region] layer's `nms_kind`
asks for (`diounms_sort`).  AlexeyAB's [Gaussian_yolo] heads are detection
heads as [yolo] (pydarknet.layers.gaussian_yolo), and its [region] heads
decode as src/network.c custom_get_region_detections
(pydarknet.infer.decode.decode_region_alexeyab).
Images are load_image arrays or OpenCV uint8 BGR frames (`load_frame`,
video frames); frames are letterboxed to the same bits, faster.
Also here: where a network's class names come from (Darknet's `.names`
files).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pydarknet.infer.engine import inference_model
from pydarknet.infer.decode import (Candidates, correct_region_boxes, decode_detection, decode_gaussian_yolo, decode_region,
                                    decode_region_alexeyab, decode_yolo)
from pydarknet.infer.nms import Measure, nms_measure, nms_swapped, swap_positions
from pydarknet.cfg.parser import read_data_file
from pydarknet.data.datafile import read_names
from pydarknet.errors import DarknetError
from pydarknet.image import load_image
from pydarknet.infer.inputs import image_size, network_batch, uses_letterbox
from pydarknet.layers.detection_layer import DetectionLayer
from pydarknet.layers.gaussian_yolo import GaussianYolo
from pydarknet.layers.region import Region
from pydarknet.layers.yolo import Yolo
from pydarknet.network import Darknet


@dataclass
class Detection:
    """One box and its class probabilities, as Darknet's `detection`.

    `box` is (x, y, w, h): centre and size relative to the image.  `probs`
    has one float32 per class, 0 where the probability is <= thresh or was
    suppressed by NMS.  `name` is the best class's name where the caller
    gave the class names (`detect_batch(..., names=...)`), else None.
    """

    box: tuple[float, float, float, float]
    objectness: float
    probs: np.ndarray
    name: str | None = None

    @property
    def best_class(self) -> int:
        """The class with the highest probability."""
        return int(np.argmax(self.probs))

    @property
    def best_prob(self) -> float:
        return float(self.probs[self.best_class])

    @property
    def labels(self) -> list[tuple[int, float]]:
        """(class, prob) for every class with a nonzero probability, in class order (Darknet's print order)."""
        return [(int(c), float(self.probs[c])) for c in np.flatnonzero(self.probs)]

    def corners(self, width: int, height: int) -> tuple[float, float, float, float]:
        """(x1, y1, x2, y2) in pixels of a width x height image, unclamped floats."""
        x, y, w, h = self.box
        return ((x - w / 2) * width, (y - h / 2) * height, (x + w / 2) * width, (y + h / 2) * height)

    def pixel_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) as Darknet's draw_detections: truncated to int, clamped to the image.

        Darknet clamps left and top to >= 0, right and bottom to <= size - 1.
        Its `int left = (b.x-b.w/2.)*im.w` is undefined in C for a box blown
        up to inf or NaN (a network with batch-norm variance 0): see `_c_int`.
        """
        x1, y1, x2, y2 = (_c_int(v) for v in self.corners(width, height))  # Darknet: int left = (b.x-b.w/2.)*im.w
        return max(x1, 0), max(y1, 0), min(x2, width - 1), min(y2, height - 1)


_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def _c_int(value: float) -> int:
    """C's (int) of a double: truncated toward 0.

    Where C leaves it undefined (NaN, +-inf, past int's range) it saturates
    here: to the nearest of INT_MIN and INT_MAX, NaN to 0.
    """
    return 0 if math.isnan(value) else int(min(max(value, _INT_MIN), _INT_MAX))


def default_nms(net: Darknet) -> float:
    """The NMS threshold Darknet's test path uses: .4 for a YOLOv1 `[detection]` head (test_yolo), else .45."""
    return 0.4 if any(isinstance(net.layers[i], DetectionLayer) for i in net.output_indices) else 0.45


def nms_kind(net: Darknet) -> tuple[str, float]:
    """(nms_kind, beta_nms) of the NMS test_detector runs: AlexeyAB's reads them from the last detection layer.

    AlexeyAB src/detector.c test_detector: `layer l = net.layers[net.n-1]`,
    then l = the last layer of type YOLO, GAUSSIAN_YOLO or REGION;
    do_nms_sort when its nms_kind is the default, else diounms_sort (a
    [region] has the default, calloc's 0); pjreddie's always runs
    do_nms_sort.
    """
    heads = [layer for layer in net.layers if isinstance(layer, (Yolo, GaussianYolo, Region))]
    last = heads[-1] if heads else net.layers[-1]
    if net.dialect != "alexeyab" or not hasattr(last, "nms_kind"):
        return "default", 0.6
    return last.nms_kind, last.beta_nms


def candidates(net: Darknet, heads: list[torch.Tensor], image_sizes: list[tuple[int, int]], thresh: float = 0.5,
               hier_thresh: float = 0.5, *, letterbox: bool | None = None, every: bool = False) -> Candidates:
    """Darknet's get_network_boxes(relative=1) on a batch of head outputs: fill_network_boxes, every head in cfg order.

    Each head's detections (those Darknet's do_nms_sort keeps: nonzero
    objectness), with boxes corrected to the images of `image_sizes`
    (width, height) by the head's own rule (`correct_region_boxes`): a
    [Gaussian_yolo]'s correct_gaussian_yolo_boxes is pjreddie's formula in
    either dialect.  In AlexeyAB's dialect a [region] goes through its
    custom_get_region_detections (`decode_region_alexeyab`: its own order,
    objectness 1, no hier_thresh) and correct_yolo_boxes.  `letterbox` is
    get_network_boxes' `letter` (undo a letterbox or not); None: what the
    detector does (`uses_letterbox`).  `every`: an AlexeyAB [region]'s rows
    are all of its array, not only those with a prob (`decode_region_alexeyab`).
    """
    letterbox = uses_letterbox(net) if letterbox is None else letterbox
    parts = []
    for index, output in zip(net.output_indices, heads):
        layer = net.layers[index]
        if isinstance(layer, Region) and net.dialect == "alexeyab":
            found = decode_region_alexeyab(layer, output, thresh, every)  # custom_get_region_detections: no hier_thresh
        elif isinstance(layer, Region):
            found = decode_region(layer, output, thresh, hier_thresh)
        elif isinstance(layer, Yolo):
            found = decode_yolo(layer, output, net.width, net.height, thresh)
        elif isinstance(layer, GaussianYolo):
            found = decode_gaussian_yolo(layer, output, net.width, net.height, thresh)
        elif isinstance(layer, DetectionLayer):
            found = decode_detection(layer, output, thresh)
        else:
            raise DarknetError(f"{net.cfg_path}: layer {index} [{layer.kind}] is not a [region], [yolo], [Gaussian_yolo] "
                               "or [detection] head; cannot detect")
        rule = "pjreddie" if isinstance(layer, GaussianYolo) else net.dialect
        boxes = correct_region_boxes(found.boxes, image_sizes, net.width, net.height, letterbox, found.image, rule)
        parts.append(dataclasses.replace(found, boxes=boxes))
    if len({p.probs.shape[-1] for p in parts}) != 1:
        raise DarknetError(f"{net.cfg_path}: the heads disagree on the number of classes")
    return Candidates.cat(parts)


def detect_batch(net: Darknet, images: list[np.ndarray], thresh: float = 0.5, hier_thresh: float = 0.5,
                 nms: float = 0.45, *, model: Callable[[torch.Tensor], list[torch.Tensor]] | None = None,
                 batch: torch.Tensor | None = None, relative: bool = True,
                 names: Sequence[str] | None = None) -> list[list[Detection]]:
    """Detections for each image (load_image arrays or BGR frames, any size), one forward for the batch.

    Per image, the detections after NMS in Darknet's final order, without
    those whose probabilities are all 0.  `nms=0` skips NMS, as Darknet does.
    `model` runs the forward (`predict`: by default the network's cached
    InferenceModel); `batch` is `network_batch(net, images)` when it
    was already made (e.g. by a prefetching thread).  `relative=False`: the
    NMS of `detector valid` (see detections_from_heads).  With `names` (the
    class names) each detection's `name` is its best class's (`name_detections`).
    """
    if not images:
        return []
    if net.input_shape[0] != 3:
        raise DarknetError(f"{net.cfg_path}: the network takes {net.input_shape[0]} channels; detection needs 3 (RGB)")
    heads = predict(net, network_batch(net, images) if batch is None else batch, model)
    sizes = [image_size(im) for im in images]
    found = detections_from_heads(net, heads, sizes, thresh, hier_thresh, nms, relative=relative)
    return found if names is None else [name_detections(dets, names) for dets in found]


def name_detections(dets: list[Detection], names: Sequence[str]) -> list[Detection]:
    """Set each detection's `name` to its best class's name (None for a class beyond `names`); returns `dets`."""
    for det in dets:
        det.name = names[det.best_class] if det.best_class < len(names) else None
    return dets


def predict(net: Darknet, batch: torch.Tensor, model: Callable[[torch.Tensor], list[torch.Tensor]] | None = None) -> list[torch.Tensor]:
    """Darknet's network_predict on a batch of network inputs (N, 3, h, w): the heads' outputs (`net(batch)`).

    The batch goes to the network's device.  `model` runs the forward: by
    default the network's fast InferenceModel, kept from call to call
    (`pydarknet.infer.engine.inference_model`); `eager_model(net)` runs the
    network itself.
    """
    return (inference_model(net) if model is None else model)(batch.to(net.device))


def detect_image(net: Darknet, image: str | Path | np.ndarray, thresh: float = 0.5, hier_thresh: float = 0.5,
                 nms: float = 0.45, *, names: Sequence[str] | None = None,
                 model: Callable[[torch.Tensor], list[torch.Tensor]] | None = None) -> list[Detection]:
    """Darknet's `detector test` on one image (a path or a load_image array): `detect_batch` of it."""
    array = load_image(image) if isinstance(image, (str, Path)) else image
    return detect_batch(net, [array], thresh, hier_thresh, nms, names=names, model=model)[0]


def detections_from_heads(net: Darknet, heads: list[torch.Tensor], image_sizes: list[tuple[int, int]],
                          thresh: float = 0.5, hier_thresh: float = 0.5, nms: float = 0.45, *,
                          relative: bool = True, letterbox: bool | None = None,
                          nms_rule: tuple[str, float] | None = None) -> list[list[Detection]]:
    """Darknet's get_network_boxes and do_nms_sort on a batch of head outputs.

    `image_sizes` are the original (width, height) of the images the batch
    was made from.  `relative=False` is get_network_boxes(relative=0), as both
    Darknets' `detector valid` (validate_detector) call it: the NMS compares
    the boxes in pixels of the image (float32 `b.x *= w; b.w *= w; ...`), which
    rounds differently from the relative boxes of `detector test`; the boxes
    returned stay relative either way.  `letterbox`: get_network_boxes'
    `letter` (see `candidates`); `nms_rule`: the (nms_kind, beta_nms) of the
    NMS, None for the one the detector runs (`nms_kind`; ("default", 0.6)
    is do_nms_sort).
    """
    with torch.inference_mode():
        found = candidates(net, heads, image_sizes, thresh, hier_thresh, letterbox=letterbox)
        image, index, boxes, objectness, probs = (t.cpu().numpy() for t in (found.image, found.index, found.boxes, found.objectness, found.probs))
        mine = [image == i for i in range(len(image_sizes))]
        measure = nms_measure(*(nms_kind(net) if nms_rule is None else nms_rule))
        # AlexeyAB's get_network_boxes holds only the [yolo] / [Gaussian_yolo] boxes above thresh
        # (yolo_num_detections, gaussian_yolo_num_detections) and all of a [region]'s, with objectness 1
        # (src/network.c custom_get_region_detections): none with objectness 0, its do_nms_sort swaps nothing,
        # the array order is the candidates' order.
        kinds = (Yolo, GaussianYolo, Region)
        compact = net.dialect == "alexeyab" and all(isinstance(net.layers[i], kinds) for i in net.output_indices)
        scales = [np.array((1, 1, 1, 1) if relative else (w, h, w, h), dtype=np.float32) for w, h in image_sizes]
        return [_image_detections(index[m], boxes[m], objectness[m], probs[m], nms, measure, compact, scale)
                for m, scale in zip(mine, scales)]


def _image_detections(index: np.ndarray, boxes: np.ndarray, objectness: np.ndarray, probs: np.ndarray,
                      nms: float, measure: Measure = None, compact: bool = False,
                      scale: np.ndarray | None = None) -> list[Detection]:
    """One image's detections from those with nonzero objectness (at ascending `index` in its array).

    Darknet prints only the detections with some nonzero prob after NMS; the
    others take no part in it (`nms_sort`), so only those with some nonzero
    prob before it go in, in the order Darknet's swap leaves them (with
    `compact`, the order of `index`: no swap, as AlexeyAB's arrays hold no
    objectness 0).  With `nms=0` Darknet skips
    do_nms_sort: the array keeps its order.  `measure`: AlexeyAB's NMS overlap
    (pydarknet.infer.nms.nms_measure).  `scale`: (w, h, w, h) the NMS sees the
    boxes multiplied by (get_network_boxes with relative=0).
    """
    rows = np.flatnonzero((probs > 0).any(axis=1))
    if nms and len(rows):
        positions = rows if compact else swap_positions(index)[rows]
        compared = boxes[rows] if scale is None else boxes[rows] * scale
        order, after = nms_swapped(positions, compared, probs[rows], nms, measure)
        kept = (after > 0).any(axis=1)
        rows, after = rows[order][kept], after[kept]
    else:
        after = probs[rows]
    boxes64 = boxes[rows].astype(np.float64)
    return [Detection(tuple(boxes64[i].tolist()), float(objectness[r]), after[i]) for i, r in enumerate(rows)]


def names_from_data(data_path: str | Path) -> Path:
    """The `names=` file of a Darknet `.data` file (as written, then beside the .data, then its parent)."""
    section = read_data_file(data_path)
    path = section.get_path("names", None)
    if path is None:
        raise DarknetError(f"{data_path}: no names= line")
    return path


def find_names(cfg_path: str | Path, classes: int) -> Path | None:
    """A `.names` file for a cfg: in the cfg's folder or its ../data, with `classes` lines.

    The cfg's own stem (yolov2-voc.names for yolov2-voc.cfg) is preferred,
    then any file with the right line count, alphabetically; None if none fits.
    """
    cfg = Path(cfg_path).resolve()
    folders = [cfg.parent, cfg.parent.parent / "data"]
    stem_first = [f / f"{cfg.stem}.names" for f in folders]
    others = [p for f in folders if f.is_dir() for p in sorted(f.glob("*.names"))]
    for candidate in stem_first + others:
        if candidate.is_file() and _count_lines(candidate) == classes:
            return candidate
    return None


def _count_lines(path: Path) -> int:
    try:
        return len(read_names(path))
    except DarknetError:
        return -1
