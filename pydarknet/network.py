"""The network: a cfg's sections built into layers, in Darknet's order.

`Darknet(cfg)` reads the cfg, builds one module per section with the shapes
Darknet's `parse_network_cfg` would compute, and reports options no layer
read (Darknet's "Unused field") as warnings, or errors with `strict=True`.
An input or a layer output of more values than Darknet's C int counts is
refused at build (and resize) time, before anything is allocated.
Layer indices are Darknet's: 0 is the first section after `[net]`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from pydarknet.cfg.net import NetOptions, too_many_values
from pydarknet.cfg.parser import read_cfg
from pydarknet.cfg.section import Section
from pydarknet.errors import CfgError, CfgWarning, DarknetError
from pydarknet.layers.avgpool import Avgpool
from pydarknet.layers.base import Layer, Shape
from pydarknet.layers.connected import Connected
from pydarknet.layers.convolutional import Convolutional
from pydarknet.layers.cost import Cost
from pydarknet.layers.crop import Crop
from pydarknet.layers.detection import Detection
from pydarknet.layers.dropout import Dropout
from pydarknet.layers.local import Local
from pydarknet.layers.maxpool import Maxpool
from pydarknet.layers.region import Region
from pydarknet.layers.reorg import Reorg
from pydarknet.layers.route import Route
from pydarknet.layers.shortcut import Shortcut
from pydarknet.layers.softmax import Softmax
from pydarknet.layers.upsample import Upsample
from pydarknet.layers.yolo import Yolo
from pydarknet.train.step import train_network
from pydarknet.weights import WeightsHeader, load_weights, save_weights

if TYPE_CHECKING:
    import numpy as np

    from pydarknet import detect as detection

# Section names as src/parser.c:string_to_layer_type spells them.
LAYER_TYPES: dict[str, type[Layer]] = {
    "convolutional": Convolutional, "conv": Convolutional,
    "maxpool": Maxpool, "max": Maxpool,
    "avgpool": Avgpool, "avg": Avgpool,
    "route": Route,
    "reorg": Reorg,
    "region": Region,
    "yolo": Yolo,
    "shortcut": Shortcut,
    "upsample": Upsample,
    "dropout": Dropout,
    "softmax": Softmax, "soft": Softmax,
    "cost": Cost,
    "connected": Connected, "conn": Connected,
    "crop": Crop,
    "detection": Detection,
    "local": Local,
}
DARKNET_ONLY = {
    "deconvolutional", "deconv", "activation", "logistic", "l2norm", "crnn", "gru", "lstm", "rnn",
    "normalization", "lrn", "batchnorm", "iseg", "reorg3d", "scale_channels", "sam", "gaussian_yolo",
    "conv_lstm", "local_avg", "implicit", "empty", "silence",
}
HEAD_TYPES = (Region, Yolo, Detection)


def _build_layer(section: Section, index: int, shapes: dict[int, Shape]) -> Layer:
    cls = LAYER_TYPES.get(section.kind)
    if cls is None:
        what = "is not supported by pydarknet" if section.kind in DARKNET_ONLY else "is not a Darknet layer type"
        raise CfgError(f"{section.where()}: section [{section.kind}] {what}")
    layer = cls(section, index, shapes)
    _shape_layer(layer, shapes)
    return layer


def _shape_layer(layer: Layer, shapes: dict[int, Shape]) -> None:
    """Set the layer's shapes from `shapes` and record its output there; an output Darknet's int cannot count is refused."""
    layer.set_input_shapes([shapes[s] for s in layer.sources])
    problem = too_many_values(layer.out_shape)
    if problem:
        raise layer.section.error(f"output {problem}; is the input size right?")
    shapes[layer.index] = layer.out_shape


def _report_unused(section: Section, strict: bool) -> None:
    for opt in section.unused() + section.duplicates:
        dup = opt in section.duplicates
        what = "repeats an option; Darknet uses the first" if dup else "is not read by Darknet for this section"
        message = f"{section.where(opt)}: [{section.kind}] '{opt.key}={opt.value}' {what}"
        if strict:
            raise CfgError(message)
        warnings.warn(message, CfgWarning, stacklevel=3)


class Darknet(nn.Module):
    """A Darknet network built from a cfg file.

    `width`/`height` override the cfg's input size as Darknet's
    `resize_network` would.  `seen` counts training images, as stored in
    .weights headers.  `layers[i]` is Darknet's layer i.
    """

    def __init__(self, cfg_path: str | Path, width: int | None = None, height: int | None = None, strict: bool = False) -> None:
        super().__init__()
        self.cfg_path = str(cfg_path)
        sections = read_cfg(cfg_path)
        self.cfg_text = Path(cfg_path).read_text()
        self.options = NetOptions.from_section(sections[0])
        _report_unused(sections[0], strict)
        shapes: dict[int, Shape] = {-1: self.input_shape}
        layers = []
        for index, section in enumerate(sections[1:]):
            layer = _build_layer(section, index, shapes)
            _report_unused(section, strict)
            layers.append(layer)
        if not layers:
            raise CfgError(f"{cfg_path}: no layers after [net]")
        self.layers = nn.ModuleList(layers)
        self.seen = 0
        self.header = WeightsHeader()
        self._plan()
        if width is not None or height is not None:
            self.resize(width or self.options.width, height or self.options.height)

    def _plan(self) -> None:
        """Which outputs forward() must keep, and which it returns."""
        heads = [layer.index for layer in self.layers if isinstance(layer, HEAD_TYPES)]
        if not heads:  # Darknet's get_network_output_layer: the last layer that is not [cost]
            heads = [next(layer.index for layer in reversed(self.layers) if not isinstance(layer, Cost) or layer.index == 0)]
        self.output_indices = heads
        keep = set(heads)
        for layer in self.layers:
            keep.update(s for s in layer.sources if s != layer.index - 1)
        self._keep = keep
        # src/network.c backward_network: `if(l.stopbackward) break;` on its way down from the last layer
        self.backward_stop = max((layer.index + 1 for layer in self.layers if layer.stopbackward), default=0)

    @property
    def input_shape(self) -> Shape:
        return (self.options.channels, self.options.height, self.options.width)

    @property
    def width(self) -> int:
        return self.options.width

    @property
    def height(self) -> int:
        return self.options.height

    def resize(self, width: int, height: int) -> None:
        """Darknet's resize_network: new input size, every layer's shape recomputed."""
        if width < 1 or height < 1:
            raise DarknetError(f"cannot resize {self.cfg_path} to {width}x{height}")
        old = (self.options.width, self.options.height)
        self.options.width, self.options.height = width, height
        try:
            self._infer_shapes()
        except CfgError as err:
            self.options.width, self.options.height = old
            self._infer_shapes()
            raise CfgError(f"cannot resize to {width}x{height}: {err}") from None

    def _infer_shapes(self) -> None:
        problem = too_many_values(self.input_shape)
        if problem:
            raise CfgError(f"{self.cfg_path}: input {problem}")
        shapes: dict[int, Shape] = {-1: self.input_shape}
        for layer in self.layers:
            _shape_layer(layer, shapes)

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            c, h, w = self.input_shape
            raise DarknetError(
                f"{self.cfg_path}: input of shape {tuple(x.shape)} does not fit the network "
                f"(N, {c}, {h}, {w}); call resize(width, height) first"
            )

    def forward_layers(self, x: Tensor) -> list[Tensor]:
        """The output of every layer, in cfg order.

        In training mode the layers up to the last one with `stopbackward=1`
        run without autograd (`backward_stop`): Darknet's backward_network
        stops before that layer's backward, so neither it nor any layer before
        it gets a gradient (update_network still decays their weights and
        applies their momentum, as DarknetSGD does for a missing gradient).
        """
        self._check_input(x)
        frozen = self.backward_stop if self.training else 0
        outputs: list[Tensor] = []
        for layer in self.layers:
            inputs = [x if s < 0 else outputs[s] for s in layer.sources]
            with torch.set_grad_enabled(torch.is_grad_enabled() and layer.index >= frozen):
                outputs.append(layer(*inputs))
        return outputs

    def forward(self, x: Tensor) -> list[Tensor]:
        """The outputs of the network's heads ([region]/[yolo]/[detection]),
        or of its last non-cost layer: a list, in cfg order."""
        self._check_input(x)
        kept: dict[int, Tensor] = {}
        out = x
        for layer in self.layers:
            i = layer.index
            if len(layer.sources) == 1 and layer.sources[0] == i - 1:
                out = layer(out)
            else:
                out = layer(*[out if s == i - 1 else (x if s < 0 else kept[s]) for s in layer.sources])
            if i in self._keep:
                kept[i] = out
        return [kept[i] for i in self.output_indices]

    def train_step(self, x: Tensor, truth: Tensor) -> float:
        """One Darknet train_network call: forward, loss, backward, SGD update
        every `subdivisions` mini-batches, `seen` += images; returns the summed
        cost / images.  Momentum buffers live in `self.sgd` (pydarknet.train.sgd)."""
        return train_network(self, x, truth)

    def detect(self, image: str | Path | np.ndarray, thresh: float = 0.5, hier_thresh: float = 0.5,
               nms: float = 0.45) -> list[detection.Detection]:
        """Darknet's `detector test` on one image (a path or a load_image array): see pydarknet.detect."""
        from pydarknet.detect import detect_batch  # pydarknet.detect imports this module
        from pydarknet.image import load_image

        array = load_image(image) if isinstance(image, (str, Path)) else image
        return detect_batch(self, [array], thresh, hier_thresh, nms)[0]

    def load_weights(self, path: str | Path, cutoff: int | None = None, partial: bool = False) -> int:
        """Load Darknet weights (see `pydarknet.weights.load_weights`)."""
        return load_weights(self, path, cutoff, partial)

    def save_weights(self, path: str | Path, cutoff: int | None = None) -> None:
        """Save Darknet weights atomically, in the header version they were loaded with."""
        save_weights(self, path, cutoff)

    def bflops(self) -> float:
        return sum(layer.bflops() for layer in self.layers)

    def summary(self) -> str:
        """Darknet's layer table: index, type, filters/size, input -> output, BFLOPs."""
        lines = ["layer     filters    size              input                output"]
        for layer in self.layers:
            c, h, w = layer.in_shapes[0]
            oc, oh, ow = layer.out_shape
            flops = f"  {layer.bflops():6.3f} BFLOPs" if layer.bflops() else ""
            lines.append(
                f"{layer.index:5d} {layer.kind[:6]:<6s} {layer.describe():<19s} "
                f"{w:4d} x{h:4d} x{c:4d}   ->  {ow:4d} x{oh:4d} x{oc:4d}{flops}"
            )
        params = sum(p.numel() for p in self.parameters())
        lines.append(f"Total BFLOPs {self.bflops():.3f}; {params:,} parameters; seen {self.seen}")
        return "\n".join(lines)
