"""The user-facing `pydarknet.Darknet` and `pydarknet.load`: the graph with the convenience calls of Darknet's own API.

`pydarknet.network.Darknet` is the graph only (layers, forward, resize) and imports no
weights, detection or training code; this subclass, on the top floor, adds `load_weights` /
`save_weights` (`pydarknet.weights`), `detect` (`pydarknet.infer.detect.detect_image`) and
`train_step` (`pydarknet.train.step.train_network`, with a `TrainingState` this object keeps),
so that `from pydarknet import Darknet` keeps working as before.  Library code calls those
functions, which take any graph.  `load` gives one from a cfg and its weights, or from a
checkpoint made by `pydarknet convert`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import Tensor

from pydarknet import network
from pydarknet.convert import input_format, load_checkpoint, network_with_weights
from pydarknet.errors import DarknetError
from pydarknet.data import read_names
from pydarknet.infer.detect import Detection, detect_image, find_names
from pydarknet.infer.engine import eager_model
from pydarknet.train.state import TrainingState
from pydarknet.train.step import train_network
from pydarknet.weights import load_weights, save_weights


class Darknet(network.Darknet):
    """A `pydarknet.network.Darknet` with `load_weights`, `save_weights`, `detect` and `train_step`."""

    training_state: TrainingState | None = None  # train_step's momentum buffers, made at its first call
    names: list[str] | None = None  # the class names `detect` gives its detections (`load` finds them)

    def load_weights(self, path: str | Path, cutoff: int | None = None, partial: bool = False) -> int:
        """Load Darknet weights (`pydarknet.weights.load_weights`)."""
        return load_weights(self, path, cutoff, partial)

    def save_weights(self, path: str | Path, cutoff: int | None = None) -> None:
        """Save Darknet weights atomically, in the header version they were loaded with (`pydarknet.weights.save_weights`)."""
        save_weights(self, path, cutoff)

    def detect(self, image: str | Path | np.ndarray, thresh: float = 0.5, hier_thresh: float = 0.5,
               nms: float = 0.45, *, names: Sequence[str] | None = None, eager: bool = False) -> list[Detection]:
        """Darknet's `detector test` on one image (a path or a load_image array): `pydarknet.infer.detect.detect_image`;
        with the class `names` (e.g. `pydarknet.data.read_names("data/coco.names")`, default `self.names`) each
        detection's `name` is set.

        The forward runs in the fast inference model (`pydarknet.infer.engine.inference_model`: made at the
        first call, kept, and made anew after the weights, size, device or dialect change); `eager=True`
        runs this network's own forward instead (for debugging)."""
        return detect_image(self, image, thresh, hier_thresh, nms, names=self.names if names is None else names,
                            model=eager_model(self) if eager else None)

    def train_step(self, x: Tensor, truth: Tensor) -> float:
        """One Darknet train_network call (`pydarknet.train.step.train_network`): forward, loss, backward,
        SGD update every `subdivisions` mini-batches, `seen` += images; returns the summed cost / images.

        The momentum buffers are `self.training_state`, a `TrainingState` made at the first call
        (assign one, e.g. `TrainingState(net, amp=True)`, to train in mixed precision or resume)."""
        if self.training_state is None:
            self.training_state = TrainingState(self)
        return train_network(self, self.training_state, x, truth)


def load(source: str | Path, weights: str | Path | None = None, width: int | None = None,
         height: int | None = None, names: str | Path | None = None) -> Darknet:
    """A network ready to use, in eval mode, as `pydarknet.Darknet`.

    `load("cfg/yolov2.cfg", "yolov2.weights")`: the cfg with Darknet weights (or with a `.pt`/`.h5`
    made from them); `load("yolov2.pt")`: a checkpoint of `pydarknet convert`, its cfg embedded;
    `load("cfg/yolov2.cfg")`: the cfg, randomly initialised.  `width`/`height` resize it as
    Darknet's resize_network does.  The class names (`net.names`, which `net.detect` puts on its
    detections) come from `names` (a `.names` file), else from the `.names` beside the cfg as
    `pydarknet detect` finds them (`pydarknet.infer.detect.find_names`), else none.
    """
    if input_format(source) != "weights":  # a .pt/.h5 (an .onnx is refused there)
        if weights is not None:
            raise DarknetError(f"{source}: a checkpoint holds its cfg; give it alone, not with {weights}")
        net = load_checkpoint(None, source, width, height)
    elif weights is None:
        net = Darknet(source, width, height)
    else:
        net = network_with_weights(source, weights, width, height)
    if type(net) is network.Darknet:  # the graph the converter built: given this subclass's methods (same fields)
        net.__class__ = Darknet
    classes = int(getattr(net.layers[net.output_indices[-1]], "classes", 0)) if net.output_indices else 0
    found = names or (find_names(net.cfg_path, classes) if classes and Path(net.cfg_path).is_file() else None)
    net.names = read_names(found) if found else None
    return net.eval()
