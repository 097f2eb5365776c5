"""Darknet's validate_detector / validate_detector_map on an image list: the detections, and their mAP.

What `pydarknet valid|map` (pydarknet.commands.evaluate) and the mAP during
training (`train --map`, pydarknet.train.calc_map) share: the thresholds each
C function fixes by dialect, the detections of a network on the `valid=` list
in batches (the next batch loaded and letterboxed in a background thread), and
the score in the network's dialect -- AlexeyAB's validate_detector_map
(pydarknet.eval.alexeyab: its matching on Darknet's relative boxes, AP by the
area under the curve, `-points 0`) or the VOC devkit's rules on the boxes
clamped to the image (pjreddie's Darknet has no map; 11-point, VOC2007).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from pydarknet.cfg.section import Section
from pydarknet.data.datafile import read_lines
from pydarknet.errors import DarknetError
from pydarknet.eval.alexeyab import alexeyab_evaluate
from pydarknet.eval.ap import DetectionTable, Evaluation, evaluate
from pydarknet.eval.results import clamped_corners
from pydarknet.eval.truth import relative_truth, truth_table
from pydarknet.image import load_frame
from pydarknet.infer.detect import detect_batch
from pydarknet.infer.inputs import network_batch
from pydarknet.infer.prefetch import batched, prefetch
from pydarknet.network import Darknet
from pydarknet.progress import progress

# (thresh, hier_thresh, nms) fixed in the C function each verb reproduces, by dialect.
THRESHOLDS: dict[tuple[str, str], tuple[float, float, float]] = {
    ("pjreddie", "valid"): (0.005, 0.5, 0.45),  # pjreddie examples/detector.c validate_detector
    ("pjreddie", "map"): (0.005, 0.5, 0.45),  # (pjreddie's Darknet has no map: the detections valid writes)
    ("alexeyab", "valid"): (0.001, 0.5, 0.6),  # AlexeyAB src/detector.c validate_detector
    ("alexeyab", "map"): (0.005, 0.0, 0.45),  # AlexeyAB src/detector.c validate_detector_map
}

# The AP interpolation `map` shows by default: AlexeyAB's run_detector passes `-points 0` (the area under the
# curve, as its train_detector's calc_map does); pjreddie's: VOC2007's 11 points (reval_voc.py).
MAP_POINTS = {"pjreddie": 11, "alexeyab": 0}

Found = tuple[str, int, int, np.ndarray, np.ndarray]  # path, width, height, boxes (N, 4), probs (N, classes)


def read_valid_list(path: Path) -> list[str]:
    """Darknet's `get_paths`: one image path per line, as written (blank lines skipped), each an existing file."""
    paths = []
    for number, line in enumerate(read_lines(path, "image list"), 1):
        if line.strip():
            if not Path(line.strip()).is_file():
                raise DarknetError(f"{path}:{number}: {line.strip()}: no such image file")
            paths.append(line.strip())
    if not paths:
        raise DarknetError(f"{path}: no images listed")
    return paths


def refuse_difficult(data: Section) -> None:
    """AlexeyAB's validate_detector_map leaves out the detections on the `difficult=` list's boxes; not
    reproduced, so refused rather than a different number."""
    if data.has("difficult"):
        option = data.options["difficult"]
        raise DarknetError(f"{data.where(option)}: difficult={option.value}: AlexeyAB's detector map leaves out the "
                           "detections on these boxes; pydarknet does not implement that (remove the line)")


def detections(net: Darknet, paths: list[str], verb: str, batch: int,
               model: Callable[[torch.Tensor], list[torch.Tensor]] | None = None, bar: str | None = "valid") -> Iterator[Found]:
    """(path, width, height, boxes (N, 4) relative x y w h, probs (N, classes)) per image of `paths`, in order.

    `net` runs at its input size, in eval mode for the forward, with the
    thresholds of `verb` ("valid" or "map") in its dialect, `batch` images
    per forward; `model` runs the forward (default: `predict`'s, the
    network's cached InferenceModel); `bar` names the progress bar (None: no bar).
    """
    thresh, hier_thresh, nms = THRESHOLDS[net.dialect, verb]
    # get_network_boxes' `relative`: 0 in validate_detector (NMS on pixel boxes), 1 in AlexeyAB's validate_detector_map
    relative = (net.dialect, verb) == ("alexeyab", "map")
    classes = int(getattr(net.layers[net.output_indices[-1]], "classes", 0))

    def load(chunk: list[str]) -> tuple[list[str], list[np.ndarray], torch.Tensor]:
        images = [load_frame(p) for p in chunk]  # uint8 BGR: a huge image never gets a float copy
        return chunk, images, network_batch(net, images)

    with progress(len(paths), bar, "img") as shown:
        for chunk, images, tensor in prefetch(map(load, batched(paths, batch))):
            found = detect_batch(net, images, thresh=thresh, hier_thresh=hier_thresh, nms=nms,
                                 model=model, batch=tensor, relative=relative)
            for path, image, dets in zip(chunk, images, found):
                boxes = np.array([d.box for d in dets], dtype=np.float32).reshape(-1, 4)
                probs = np.array([d.probs for d in dets], dtype=np.float32).reshape(-1, classes)
                yield path, image.shape[1], image.shape[0], boxes, probs
            shown.update(len(chunk))


def detection_table(found: Iterable[Found]) -> tuple[DetectionTable, list[tuple[int, int]]]:
    """Every (box, class) with a non-zero prob, box by box in Darknet's order and classes ascending, with
    Darknet's relative (x, y, w, h) boxes (float32); and the image sizes."""
    image, label, score, box, sizes = [], [], [], [], []
    for index, (_, width, height, boxes, probs) in enumerate(found):
        rows, cols = np.nonzero(probs)
        image.append(np.full(len(rows), index)), label.append(cols), score.append(probs[rows, cols].astype(np.float64))
        box.append(boxes[rows])
        sizes.append((width, height))
    return DetectionTable(np.concatenate(image), np.concatenate(label), np.concatenate(score), np.concatenate(box)), sizes


def pixel_table(dets: DetectionTable, sizes: list[tuple[int, int]]) -> DetectionTable:
    """The detections with 0-based pixel corners clamped to their images (the VOC devkit's and COCO's boxes)."""
    size = np.array(sizes, dtype=np.int64).reshape(-1, 2)[dets.image]
    return dataclasses.replace(dets, box=clamped_corners(dets.box, size[:, 0], size[:, 1], one_based=False).astype(np.float64))


def score(dets: DetectionTable, sizes: list[tuple[int, int]], labels: list[np.ndarray], classes: int, dialect: str,
          iou: float = 0.5, thresh: float = 0.25) -> Evaluation:
    """AP per class and the figures at `thresh` of `dets` (from `detection_table`) against the label rows, by
    `dialect`'s rules: AlexeyAB's validate_detector_map, or the VOC devkit's (see the module doc)."""
    if dialect == "alexeyab":
        return alexeyab_evaluate(dets, relative_truth(labels), classes, iou=iou, thresh=thresh)
    return evaluate(pixel_table(dets, sizes), truth_table(labels, sizes), classes, iou=iou, thresh=thresh)
