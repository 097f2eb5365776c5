"""The network's input from an image, as examples/detector.c test_detector makes it.

`network_input` letterboxes an image to the network size (image.c
letterbox_image) or stretches it (resize_image) by the rule of the
detector (`uses_letterbox`); `network_batch` does it for a batch.  Images
are load_image arrays (3, H, W) or OpenCV uint8 BGR frames (H, W, 3).
Detection (`pydarknet.infer.detect`) and the int8 calibration
(`pydarknet.infer.quantize`) both feed the network through here.
"""

from __future__ import annotations

import numpy as np
import torch

from pydarknet.image import letterbox_frame, letterbox_image, resize_frame, resize_image
from pydarknet.layers.detection_layer import DetectionLayer
from pydarknet.network import Darknet


def _is_frame(image: np.ndarray) -> bool:
    """Whether `image` is an OpenCV uint8 BGR frame (H, W, 3) rather than a load_image array (3, H, W)."""
    return image.dtype == np.uint8


def image_size(image: np.ndarray) -> tuple[int, int]:
    """(width, height) of a load_image array or a BGR frame."""
    height, width = image.shape[:2] if _is_frame(image) else image.shape[1:]
    return width, height


def uses_letterbox(net: Darknet) -> bool:
    """Whether detection letterboxes the image (else a plain resize_image).

    The cfg's `[net] letter_box` when it sets it; else by the dialect:
    pjreddie's test_detector always letterboxes, AlexeyAB's only with
    letter_box=1 or its `-letter_box` flag; a YOLOv1 `[detection]` head runs
    examples/yolo.c test_yolo's path, a plain `resize_image`.
    """
    if net.options.letter_box is not None:
        return bool(net.options.letter_box)
    if any(isinstance(net.layers[i], DetectionLayer) for i in net.output_indices):
        return False
    return net.dialect == "pjreddie"


def network_input(net: Darknet, image: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """An image (3, H, W) sized for the network: letterboxed, or resized (`uses_letterbox`).

    `image` is a load_image array or an OpenCV uint8 BGR frame (H, W, 3)
    (`load_frame`, a video frame): the frame gives the same bits without
    converting all its pixels to float.  Written into `out` if given.
    """
    if uses_letterbox(net):
        fit = letterbox_frame if _is_frame(image) else letterbox_image
    else:
        fit = resize_frame if _is_frame(image) else resize_image
    return fit(image, net.width, net.height, out=out)


def network_batch(net: Darknet, images: list[np.ndarray]) -> torch.Tensor:
    """The network inputs (N, 3, h, w) for load_image arrays or BGR frames: `network_input` of each (CPU)."""
    batch = np.empty((len(images), 3, net.height, net.width), dtype=np.float32)
    for image, out in zip(images, batch):
        network_input(net, image, out=out)
    return torch.from_numpy(batch)
