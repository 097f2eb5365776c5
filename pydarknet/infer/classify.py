"""Classification at test time: `darknet classifier valid` and `classifier predict`.

- `validate_classifier_single` (`classifier valid`, pjreddie HEAD) feeds
  `center_crop_image(im, w, h)`: the central square of the shorter side,
  resized to the network size.  Older Darknet (and `label_classifier`)
  used `resize_min(im, w)` then a centred `crop_image`: `crop="resize-min"`.
- `predict_classifier` feeds `letterbox_image(im, w, h)`.
- With a softmax `tree`, `hierarchy_predictions(pred, n, tree, 0, 1)`
  turns conditional into absolute probabilities.
- `top_k` is Darknet's: the k largest, an earlier index winning a tie.
- An image's class is the first label of `labels=` found in its path
  (-1 if none: counted as a miss, like Darknet).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pydarknet.data.classification import center_crop_image, class_of, crop_image, resize_min
from pydarknet.infer.hierarchy import hierarchy_predictions, tree_index
from pydarknet.image import letterbox_image, load_image
from pydarknet.layers.softmax import Softmax
from pydarknet.network import Darknet

CROPS = ("center", "resize-min", "letterbox")


def classifier_input(image: np.ndarray, width: int, height: int, crop: str) -> np.ndarray:
    """The network input Darknet makes of `image` for classification (see the module doc)."""
    if crop == "center":
        return center_crop_image(image, width, height)
    if crop == "resize-min":
        resized = resize_min(image, width)
        _, h, w = resized.shape
        return crop_image(resized, (w - width) // 2, (h - height) // 2, width, height)
    if crop == "letterbox":
        return letterbox_image(image, width, height)
    raise ValueError(f"unknown crop {crop!r} (known: {', '.join(CROPS)})")


@torch.no_grad()
def class_probabilities(net: Darknet, inputs: Tensor) -> Tensor:
    """(N, outputs) network output for a batch of inputs, tree-multiplied when the softmax has a tree."""
    was_training = net.training
    net.eval()
    try:
        out = net(inputs)[0].reshape(inputs.shape[0], -1)
    finally:
        net.train(was_training)
    softmax = net.layers[net.output_indices[0]]
    if isinstance(softmax, Softmax) and softmax.tree is not None:
        n = softmax.tree.n
        out = torch.cat([hierarchy_predictions(out[:, :n], tree_index(softmax.tree, out.device)), out[:, n:]], dim=1)
    return out


def top_k(probs: Tensor, k: int) -> Tensor:
    """Darknet's top_k on each row: (N, k) indices, largest first, ties to the earlier index."""
    order = torch.sort(probs, dim=1, descending=True, stable=True).indices
    return order[:, : min(k, probs.shape[1])]


@dataclass
class Accuracy:
    """Running top-1 and top-k counts over validated images."""

    k: int
    images: int = 0
    top1: int = 0
    topk: int = 0
    unlabelled: int = 0  # images whose path holds no label: misses, as in Darknet

    def add(self, predicted: Tensor, classes: Tensor) -> None:
        """`predicted` (N, k) top-k indices, `classes` (N,) true classes (-1: none)."""
        hit = predicted == classes[:, None]
        self.images += int(classes.shape[0])
        self.unlabelled += int((classes < 0).sum())
        self.top1 += int(hit[:, 0].sum())
        self.topk += int(hit.any(dim=1).sum())

    @property
    def top1_rate(self) -> float:
        return self.top1 / self.images if self.images else 0.0

    @property
    def topk_rate(self) -> float:
        return self.topk / self.images if self.images else 0.0


def _batches(items: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def validate_classifier(
    net: Darknet, paths: Iterable[Path], labels: list[str], classes: int, k: int,
    crop: str = "center", batch: int = 8, device: torch.device | str = "cpu",
) -> Iterator[tuple[Accuracy, list[Path]]]:
    """Darknet's validate_classifier_single over `paths`, `batch` images per forward.

    Yields the running Accuracy after each batch (with that batch's paths).
    """
    accuracy = Accuracy(k)
    for chunk in _batches(list(paths), batch):
        inputs = np.stack([classifier_input(load_image(p), net.width, net.height, crop) for p in chunk])
        probs = class_probabilities(net, torch.from_numpy(inputs).to(device))[:, :classes]
        truth = torch.tensor([class_of(p, labels[:classes]) for p in chunk], device=probs.device)
        accuracy.add(top_k(probs, k), truth)
        yield accuracy, chunk
