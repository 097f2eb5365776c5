"""The network: a cfg's sections built into layers, in Darknet's order.

`Darknet(cfg)` reads the cfg, builds one module per section with the shapes
Darknet's `parse_network_cfg` would compute, and reports options no layer
read (Darknet's "Unused field") as warnings, or errors with `strict=True`.
An input or a layer output of more values than Darknet's C int counts is
refused when its layer is built (and at resize).
Layer indices are Darknet's: 0 is the first section after `[net]`.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from pydarknet.cfg.dialect import (DIALECTS, HARMLESS, INFERENCE, TRAINING, canonical, choose_dialect, darknet_name, key_role,
                                   readers_phrase, trainer_implements)
from pydarknet.cfg.net import NetOptions, too_many_values
from pydarknet.cfg.parser import read_cfg
from pydarknet.cfg.section import Section
from pydarknet.errors import CfgError, CfgWarning, DarknetError, TrainingOptionWarning
from pydarknet.layers.avgpool import Avgpool
from pydarknet.layers.base import Layer, Shape
from pydarknet.layers.batchnorm import BatchNorm
from pydarknet.layers.connected import Connected
from pydarknet.layers.contrastive import Contrastive
from pydarknet.layers.convolutional import Convolutional
from pydarknet.layers.cost import Cost
from pydarknet.layers.crop import Crop
from pydarknet.layers.detection_layer import DetectionLayer
from pydarknet.layers.dropout import Dropout
from pydarknet.layers.empty import Empty
from pydarknet.layers.gaussian_yolo import GaussianYolo
from pydarknet.layers.implicit import Implicit
from pydarknet.layers.local import Local
from pydarknet.layers.maxpool import LocalAvgpool, Maxpool
from pydarknet.layers.region import Region
from pydarknet.layers.reorg import Reorg
from pydarknet.layers.reorg3d import Reorg3d
from pydarknet.layers.route import Route
from pydarknet.layers.sam import Sam
from pydarknet.layers.scale_channels import ScaleChannels
from pydarknet.layers.shortcut import Shortcut
from pydarknet.layers.softmax import Softmax
from pydarknet.layers.upsample import Upsample
from pydarknet.layers.yolo import Yolo

# Section names as src/parser.c:string_to_layer_type spells them.
LAYER_TYPES: dict[str, type[Layer]] = {
    "convolutional": Convolutional, "conv": Convolutional,
    "maxpool": Maxpool, "max": Maxpool,
    "avgpool": Avgpool, "avg": Avgpool,
    "route": Route,
    "reorg": Reorg,
    "region": Region,
    "yolo": Yolo,
    "gaussian_yolo": GaussianYolo,  # AlexeyAB's [Gaussian_yolo]
    "shortcut": Shortcut,
    "upsample": Upsample,
    "dropout": Dropout,
    "softmax": Softmax, "soft": Softmax,
    "cost": Cost,
    "connected": Connected, "conn": Connected,
    "crop": Crop,
    "detection": DetectionLayer,
    "local": Local,
    # AlexeyAB's (its `[reorg]` is REORG_OLD: the same reorg_cpu call as pjreddie's, see layers/reorg3d.py)
    "reorg3d": Reorg3d,
    "local_avgpool": LocalAvgpool, "local_avg": LocalAvgpool,
    "sam": Sam,
    "scale_channels": ScaleChannels,
    "implicit": Implicit,
    "empty": Empty, "silence": Empty,
    "contrastive": Contrastive,
}
# Darknet section types pydarknet refuses: name -> (what it is, which Darknet has it).
DARKNET_ONLY = {
    "deconvolutional": ("transposed convolution", "pjreddie's"), "deconv": ("transposed convolution", "pjreddie's"),
    "activation": ("activation layer", "pjreddie's and AlexeyAB's"), "logistic": ("logistic cost layer", "pjreddie's"),
    "l2norm": ("L2 normalisation layer", "pjreddie's"), "iseg": ("instance segmentation head", "pjreddie's"),
    "normalization": ("local response normalisation", "pjreddie's and AlexeyAB's"),
    "lrn": ("local response normalisation", "pjreddie's and AlexeyAB's"),
    "batchnorm": ("stand-alone batch norm layer", "pjreddie's and AlexeyAB's"),
    "rnn": ("recurrent", "pjreddie's and AlexeyAB's"), "gru": ("recurrent", "pjreddie's and AlexeyAB's"),
    "lstm": ("recurrent", "pjreddie's and AlexeyAB's"), "crnn": ("recurrent", "pjreddie's and AlexeyAB's"),
    "conv_lstm": ("recurrent", "AlexeyAB's"), "history": ("recurrent", "AlexeyAB's"),
}
HEAD_TYPES = (Region, Yolo, GaussianYolo, DetectionLayer)
DETECTION_SECTIONS = frozenset(head.kind for head in HEAD_TYPES)  # a cfg with one of these sections is a detector
TRAINING_BUILDS = ("gpu", "cpu")  # the builds of AlexeyAB's Darknet its dialect can train as (Darknet.set_training_build)


def _build_layer(section: Section, index: int, shapes: dict[int, Shape]) -> Layer:
    cls = LAYER_TYPES.get(section.kind)
    if cls is None:
        if section.kind in DARKNET_ONLY:
            feature, which = DARKNET_ONLY[section.kind]
            raise CfgError(f"{section.where()}: section [{section.kind}] ({feature}) is in {which} Darknet; "
                           "pydarknet does not implement it")
        raise CfgError(f"{section.where()}: section [{section.kind}] is not a Darknet layer type")
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


def _report_unused(section: Section, strict: bool, dialect: str = "pjreddie", detector: bool = True) -> None:
    """The options no layer read, by what they do in the Darknets (pydarknet.cfg.dialect tables).

    Never silently different: a key some Darknet reads for this section that changes inference
    numbers and that pydarknet does not implement is an error.  A training-only key `pydarknet train`
    implements (for `dialect`, the cfg's own, which train uses; a `detector`'s training or a classifier's)
    is read there and passes in silence here, as Darknet's
    inference passes it (yolov4-tiny's `iou_loss`, `mosaic`...); one it refuses
    (pydarknet.train.options), or a key with no effect on any number, is a warning; a key no Darknet
    reads is Darknet's "Unused field" warning.  With `strict=True` every unread or repeated option
    pydarknet does not train from is an error.
    """
    for opt in section.unused() + section.duplicates:
        head = f"{section.where(opt)}: [{section.kind}] '{opt.key}={opt.value}'"
        category = CfgWarning
        role = None if opt in section.duplicates else key_role(section.kind, opt.key)
        if role == TRAINING and trainer_implements(section.kind, opt.key, opt.value, dialect, detector):
            continue
        if opt in section.duplicates:
            message = f"{head} repeats an option; Darknet uses the first"
        elif role == INFERENCE:
            kind = canonical(section.kind)
            if opt.key in ("dontload", "numload", "dontloadscales", "share_index"):
                what = "the weights loaded"
            elif kind in ("yolo", "gaussian_yolo", "region", "detection"):
                what = "the boxes"
            elif kind == "net":
                what = "the network's input"
            else:
                what = "the layer's output"
            raise CfgError(f"{head}: {readers_phrase(section.kind, opt.key)} and it changes {what}; "
                           "pydarknet does not implement it")
        elif role == TRAINING:
            message = (f"{head} is a training option of {darknet_name(section.kind, opt.key)}: "
                       "no effect at inference; pydarknet train refuses it")
            category = TrainingOptionWarning
        elif role == HARMLESS:
            message = (f"{head} is read by {darknet_name(section.kind, opt.key)} only for GPU memory, display or "
                       "video tracking: no effect on the numbers, ignored here")
        else:
            message = f"{head} is not read by Darknet for this section (Darknet: Unused field)"
        if strict:
            raise CfgError(message)
        warnings.warn(message, category, stacklevel=3)


class Darknet(nn.Module):
    """A Darknet network built from a cfg file.

    `width`/`height` override the cfg's input size as Darknet's
    `resize_network` would.  `seen` counts training images, as stored in
    .weights headers.  `layers[i]` is Darknet's layer i.

    `dialect` is the Darknet whose numbers to reproduce where pjreddie's and
    AlexeyAB's differ on one cfg ("pjreddie", "alexeyab", or "auto":
    AlexeyAB's when the cfg uses anything only its parser reads,
    pydarknet.cfg.dialect); `dialect_reason` says why.  It sets the batch
    norm at inference (BatchNorm.alexeyab), the [yolo] loss and its `max`
    default (Yolo.alexeyab), and pydarknet.infer.detect reads it for the
    preprocessing, the box correction and the NMS.

    `training_build` says which of AlexeyAB's builds its training reproduces
    (`set_training_build`): "gpu" (the default, as its users train) or "cpu"
    (the goldens'); pjreddie's dialect trains as pjreddie's CPU build either way.
    """

    def __init__(self, cfg_path: str | Path, width: int | None = None, height: int | None = None, strict: bool = False,
                 dialect: str = "auto") -> None:
        super().__init__()
        self.cfg_path = str(cfg_path)
        sections = read_cfg(cfg_path)
        self.cfg_text = Path(cfg_path).read_text()
        self._auto_dialect = choose_dialect(sections, "auto")
        self.dialect, self.dialect_reason = self._auto_dialect if dialect == "auto" else choose_dialect(sections, dialect)
        self.options = NetOptions.from_section(sections[0])
        # the training keys as `pydarknet train` sees them: in the cfg's own dialect, by a detector's or a classifier's trainer
        trained_as = self._auto_dialect[0], any(canonical(s.kind) in DETECTION_SECTIONS for s in sections)
        _report_unused(sections[0], strict, *trained_as)
        shapes: dict[int, Shape] = {-1: self.input_shape}
        layers = []
        for index, section in enumerate(sections[1:]):
            layer = _build_layer(section, index, shapes)
            _report_unused(section, strict, *trained_as)
            layers.append(layer)
        if not layers:
            raise CfgError(f"{cfg_path}: no layers after [net]")
        for layer in layers:
            layer.link(layers)
        self.layers = nn.ModuleList(layers)
        self.set_dialect(self.dialect, self.dialect_reason)
        self.set_training_build("gpu")
        self.seen = 0
        self.header = None  # the pydarknet.weights.WeightsHeader it was loaded with
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
        # AlexeyAB's CPU backward_convolutional_layer (src/convolutional_layer.c) writes the delta of layer i-1 with
        # col2im_cpu_ext, which zeroes it first (src/col2im.c, `caffe_set(height * width * channels, 0.0F, data_im)`):
        # what a later [route], [shortcut], ... added there in backward_network's walk down is lost, so in its
        # dialect those layers' gradient never reaches layer i-1 (pjreddie's col2im_cpu adds).
        self._lost_deltas = {(layer.index, conv.index - 1) for conv in self.layers if isinstance(conv, Convolutional) and conv.index > 0
                             for layer in self.layers[conv.index + 1 :] if conv.index - 1 in layer.sources}

    def set_dialect(self, dialect: str, reason: str = "asked for") -> None:
        """Compute as `dialect`'s Darknet ("pjreddie", "alexeyab", or "auto": the cfg's own choice) from now on."""
        if dialect == "auto":
            dialect, reason = self._auto_dialect
        elif dialect not in DIALECTS:
            raise CfgError(f"dialect '{dialect}': expected one of auto, {', '.join(DIALECTS)}")
        self.dialect, self.dialect_reason = dialect, reason
        for module in self.modules():
            if isinstance(module, (BatchNorm, Yolo)):  # the batch norm at inference; [yolo]'s loss and `max` default
                module.alexeyab = dialect == "alexeyab"

    def set_training_build(self, build: str) -> None:
        """Train as AlexeyAB's "gpu" or "cpu" build (its dialect only; inference is the same in both).

        Its CPU build (src/network.c, convolutional_layer.c, batchnorm_layer.c at 59596d78) never zeroes a
        [route]'s or [upsample]'s delta (pydarknet.train.carried_delta), loses what a later layer adds to the
        delta of the layer before a [convolutional] (`forward_layers`), and trains batch norm its own way
        (BatchNorm: .9/.1, no bias gradient).  Its GPU build (GPU=1 CUDNN=1: forward_network_gpu,
        backward_convolutional_layer_gpu, forward/backward_batchnorm_layer_gpu, backward_yolo_layer_gpu) zeroes
        every delta, adds into the one before a convolution, trains batch norm with cuDNN (BatchNorm.gpu_build)
        and scales a [yolo]'s delta by its delta_normalizer (Yolo.input_delta)."""
        if build not in TRAINING_BUILDS:
            raise DarknetError(f"training build '{build}': expected one of {', '.join(TRAINING_BUILDS)}")
        self.training_build = build
        for module in self.modules():
            if isinstance(module, (BatchNorm, Yolo)):
                module.gpu_build = build == "gpu"

    def set_cpu_tree_quirk(self, on: bool = True) -> None:
        """Reproduce pjreddie's CPU build's broken YOLO9000 tree softmax at inference (NaNs: Region.cpu_tree_quirk),
        or (off, the default) compute the GPU build's per-group softmax, as Darknet trains and AlexeyAB computes."""
        for layer in self.layers:
            if isinstance(layer, Region):
                layer.cpu_tree_quirk = on

    @property
    def device(self) -> torch.device:
        """Where the network's tensors are (the CPU for a network that has none)."""
        return next(itertools.chain(self.parameters(), self.buffers()), torch.empty(0)).device

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

    def forward_layers(self, x: Tensor, output_hook: Callable[[int, Tensor], Tensor] | None = None) -> list[Tensor]:
        """The output of every layer, in cfg order.

        In training mode the layers up to the last one with `stopbackward=1`
        run without autograd (`backward_stop`): Darknet's backward_network
        stops before that layer's backward, so neither it nor any layer before
        it gets a gradient (update_network still decays their weights and
        applies their momentum, as DarknetSGD does for a missing gradient).
        In AlexeyAB's dialect, as its CPU build trains (`training_build`), a layer
        after a [convolutional] i that reads layer i-1's output (a [route], a
        [shortcut], ...) passes no gradient to it: the CPU backward of layer i
        overwrites that delta (`_lost_deltas`).
        `output_hook(index, output)`, if given, replaces each layer's output
        (the training floor's pydarknet.train.carried_delta).
        """
        self._check_input(x)
        frozen = self.backward_stop if self.training else 0
        lost = self._lost_deltas if self.training and self.dialect == "alexeyab" and self.training_build == "cpu" else set()
        outputs: list[Tensor] = []
        for layer in self.layers:
            inputs = [x if s < 0 else outputs[s].detach() if (layer.index, s) in lost else outputs[s] for s in layer.sources]
            with torch.set_grad_enabled(torch.is_grad_enabled() and layer.index >= frozen):
                output = layer(*inputs)
                outputs.append(output if output_hook is None else output_hook(layer.index, output))
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

    def layer_bflops(self, layer: Layer) -> float:
        """The BFLOPs of `layer` as the dialect's Darknet counts them: AlexeyAB's parser also counts every
        [maxpool] and [shortcut] and no [connected]/[local] (Layer.alexeyab_bflops)."""
        return layer.alexeyab_bflops() if self.dialect == "alexeyab" else layer.bflops()

    def bflops(self) -> float:
        return sum(self.layer_bflops(layer) for layer in self.layers)

    def summary(self) -> str:
        """Darknet's layer table: index, type, filters/size, input -> output, BFLOPs."""
        lines = ["layer     filters    size              input                output"]
        for layer in self.layers:
            c, h, w = layer.in_shapes[0]
            oc, oh, ow = layer.out_shape
            bflops = self.layer_bflops(layer)
            flops = f"  {bflops:6.3f} BFLOPs" if bflops else ""
            lines.append(
                f"{layer.index:5d} {layer.kind[:6]:<6s} {layer.describe():<19s} "
                f"{w:4d} x{h:4d} x{c:4d}   ->  {ow:4d} x{oh:4d} x{oc:4d}{flops}"
            )
        params = sum(p.numel() for p in self.parameters())
        lines.append(f"Total BFLOPs {self.bflops():.3f}; {params:,} parameters; seen {self.seen}")
        lines.append(f"Dialect: {self.dialect} ({self.dialect_reason})")
        return "\n".join(lines)
