"""The user-facing `pydarknet.Darknet`: the graph with the convenience calls of Darknet's own API.

`pydarknet.network.Darknet` is the graph only (layers, forward, resize) and imports no
weights, detection or training code; this subclass, on the top floor, adds `load_weights` /
`save_weights` (`pydarknet.weights`), `detect` (`pydarknet.infer.detect.detect_image`) and
`train_step` (`pydarknet.train.step.train_network`, with a `TrainingState` this object keeps),
so that `from pydarknet import Darknet` keeps working as before.  Library code calls those
functions, which take any graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from pydarknet import network
from pydarknet.infer.detect import Detection, detect_image
from pydarknet.train.state import TrainingState
from pydarknet.train.step import train_network
from pydarknet.weights import load_weights, save_weights


class Darknet(network.Darknet):
    """A `pydarknet.network.Darknet` with `load_weights`, `save_weights`, `detect` and `train_step`."""

    training_state: TrainingState | None = None  # train_step's momentum buffers, made at its first call

    def load_weights(self, path: str | Path, cutoff: int | None = None, partial: bool = False) -> int:
        """Load Darknet weights (`pydarknet.weights.load_weights`)."""
        return load_weights(self, path, cutoff, partial)

    def save_weights(self, path: str | Path, cutoff: int | None = None) -> None:
        """Save Darknet weights atomically, in the header version they were loaded with (`pydarknet.weights.save_weights`)."""
        save_weights(self, path, cutoff)

    def detect(self, image: str | Path | np.ndarray, thresh: float = 0.5, hier_thresh: float = 0.5,
               nms: float = 0.45) -> list[Detection]:
        """Darknet's `detector test` on one image (a path or a load_image array): `pydarknet.infer.detect.detect_image`."""
        return detect_image(self, image, thresh, hier_thresh, nms)

    def train_step(self, x: Tensor, truth: Tensor) -> float:
        """One Darknet train_network call (`pydarknet.train.step.train_network`): forward, loss, backward,
        SGD update every `subdivisions` mini-batches, `seen` += images; returns the summed cost / images.

        The momentum buffers are `self.training_state`, a `TrainingState` made at the first call
        (assign one, e.g. `TrainingState(net, amp=True)`, to train in mixed precision or resume)."""
        if self.training_state is None:
            self.training_state = TrainingState(self)
        return train_network(self, self.training_state, x, truth)
