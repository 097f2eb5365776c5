"""The fast inference mode: a network prepared once for many forwards.

`InferenceModel(net)` takes a batch-norm-folded copy of `net`
(`pydarknet.convert.fuse.fuse_batchnorm`: Darknet's CPU inference formula
`(x - mean) / (sqrt(var) + 1e-6)` folded into the convolution weights),
runs its convolutional trunk in channels_last memory format under
`torch.inference_mode`, runs the high-resolution first layers of a batch
one image at a time on the CPU (cache-sized), there prepacks its
convolutions (`pydarknet.infer.prepack`), pools 2x2 by two maxima
(`pydarknet.infer.maxpool`) and keeps freed activations in the C heap for
the next forward (`pydarknet.infer.heap`, process-wide), with `winograd=True` computes
the 3x3 layers with many channels (both counts >= 128: yolov2's layers from
52x52 down) on the CPU with Winograd's F(4x4, 3x3) (`pydarknet.infer.winograd`),
and with `compile=True` compiles it with
`torch.compile` (inductor, weights frozen as constants).  Calling it maps a
batch (N, C, H, W) to the heads' outputs, as `Darknet.forward` does, in the
usual contiguous layout; every head (the `[region]` tree CPU quirk included)
runs unchanged on that layout, so the outputs stay within the golden
tolerances.  The network's weights are copied (unless `in_place=True`): load new weights, then make
a new InferenceModel -- or call `inference_model(net)`, which keeps one per
network and makes a new one when the weights, the input size, the device or
the dialect changed (the default model of `pydarknet.infer.detect.predict`,
hence of `Darknet.detect`, `detect_batch` and the `pydarknet.darknet` calls).
`eager_model(net)` is the network's own forward, for debugging.

Compiling takes a while (tens of seconds for yolov2) and pays back over a
long run (video, `valid`, `map`).  A compiled model is specialised to one
batch size: smaller batches are padded to the first batch size seen.  If
compilation fails (no C++ compiler, an unsupported op), the model warns in
one line and stays eager.

`precision="bf16"` or `"int8"` trades Darknet's float32 numbers for speed
(`pydarknet.infer.precision`; docs/precision.md gives what each costs): bf16
runs the trunk in bfloat16, int8 is quantised on calibration images and
always compiled, for one image (a batch runs image by image:
`pydarknet.infer.quantize`); both keep the first convolution and the
heads in float32 and run without Winograd.
"""

from __future__ import annotations

import itertools
import math
import warnings
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from pydarknet.convert.fuse import fuse_batchnorm
from pydarknet.errors import DarknetError
from pydarknet.layers.convolutional import Convolutional
from pydarknet.layers.empty import Empty
from pydarknet.layers.maxpool import Maxpool
from pydarknet.layers.route import Route
from pydarknet.layers.sam import Sam
from pydarknet.layers.scale_channels import ScaleChannels
from pydarknet.layers.shortcut import Shortcut
from pydarknet.network import Darknet
from pydarknet.infer import heap, maxpool
from pydarknet.infer import prepack as prepacked
from pydarknet.infer.precision import bfloat16_layers, check_precision, float_layers
from pydarknet.infer.quantize import Calibration, Image, compile_quantized, quantize
from pydarknet.infer.winograd import WinogradConv2d
from pydarknet.infer.winograd import suits as winograd_suits
from pydarknet.layers.activations import Activation

# Layers whose forward works on any memory format; every other layer (heads
# use .view on Darknet's channel layout) gets a contiguous input.
CHANNELS_LAST_LAYERS = (Convolutional, Maxpool, Route, Shortcut, Sam, ScaleChannels, Empty)


class InferenceWarning(UserWarning):
    """torch.compile was not usable; the model runs eagerly."""


# A layer whose output holds more than this per image runs image by image in
# a batch: on 2 cores with ~1 MB of L2 each, yolov2-tiny's 416x416x16 first
# layers at batch 8 (88 MB) take 2-4x longer per image than at batch 1
# (tools/BENCHMARKS.md); the low-resolution layers gain from the batch.
IMAGE_BY_IMAGE_BYTES = 2**21


def image_by_image_prefix(layers: nn.ModuleList, bytes_per_value: int = 4) -> int:
    """How many leading layers run one image at a time: up to the last whose output exceeds IMAGE_BY_IMAGE_BYTES."""
    large = [layer.index for layer in layers if math.prod(layer.out_shape) * bytes_per_value > IMAGE_BY_IMAGE_BYTES]
    return large[-1] + 1 if large else 0


class _FusedForward(nn.Module):
    """Darknet.forward over a folded copy's layers, channels_last where the layer allows it.

    On the CPU a batch runs its high-resolution prefix (`image_by_image_prefix`)
    one image at a time, then the rest batched: the same numbers, better cache
    use (a GPU has no such caches to fit: there the batch runs whole).
    """

    def __init__(self, fused: Darknet, channels_last: bool, image_by_image: bool,
                 dtypes: list[torch.dtype] | None = None) -> None:
        super().__init__()
        self.layers = fused.layers
        self.keep = fused._keep
        self.output_indices = fused.output_indices
        self.channels_last = channels_last
        self.dtypes = dtypes  # the dtype each layer computes in (inputs cast to it), None: all float32
        # bf16 too: batching more of its high-resolution layers measured slower (yolov2-tiny-shapes, batch 8: 73 vs 60 ms)
        self.prefix = image_by_image_prefix(fused.layers) if image_by_image else 0

    def forward(self, x: Tensor) -> list[Tensor]:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if not self.prefix or x.shape[0] == 1:
            kept: dict[int, Tensor] = {}
            self._run(x, x, kept, 0, len(self.layers))
        else:
            parts = [{} for _ in range(x.shape[0])]
            outs = [self._run(x[k : k + 1], x[k : k + 1], parts[k], 0, self.prefix) for k in range(x.shape[0])]
            kept = {i: torch.cat([part[i] for part in parts]) for i in parts[0]}
            self._run(x, torch.cat(outs), kept, self.prefix, len(self.layers))
        return [kept[i].contiguous() for i in self.output_indices]

    def _run(self, x: Tensor, out: Tensor, kept: dict[int, Tensor], start: int, stop: int) -> Tensor:
        """Layers start..stop-1 from `out` (the output of layer start-1), filling `kept`; the last output."""
        for layer in self.layers[start:stop]:
            i = layer.index
            inputs = [out if s == i - 1 else (x if s < 0 else kept[s]) for s in layer.sources]
            if not isinstance(layer, CHANNELS_LAST_LAYERS):
                inputs = [t.contiguous() for t in inputs]
            if self.dtypes is not None:
                inputs = [t.to(self.dtypes[i]) for t in inputs]
            out = layer(*inputs)
            if i in self.keep:
                kept[i] = out
        return out


def _choose_kernels(fused: Darknet, winograd: bool, prepack: bool, pool_2x2: bool) -> None:
    """Each convolution of `fused` by Winograd's algorithm where `winograd` and it suits, else prepacked where
    `prepack` and it suits (its activation then inside the convolution); each 2x2 max pool by two maxima where
    `pool_2x2` and it suits (`pydarknet.infer.maxpool`)."""
    for layer in fused.layers:
        if isinstance(layer, Maxpool) and pool_2x2 and maxpool.suits(layer):
            layer._pool = maxpool.max_pool_2x2
        if not isinstance(layer, Convolutional):
            continue
        if winograd and winograd_suits(layer.conv):
            layer.conv = WinogradConv2d(layer.conv)
        elif prepack and prepacked.suits(layer.conv, layer.activation.name):
            layer.conv = prepacked.PrepackedConv(layer.conv, layer.activation.name, [1, *layer.in_shapes[0]])
            layer.activation = Activation("linear")
            heap.release_freed_memory()  # the unpacked weights just freed


class InferenceModel:
    """`net`'s forward, batch-norm folded, channels_last, in inference mode; optionally compiled.

    `model(batch)` returns the head outputs of `net(batch)` (within float32
    rounding).  `net` itself is left untouched (but with `in_place`).  `winograd=True` runs the
    layers `pydarknet.infer.winograd.suits` picks with Winograd's algorithm (fp32 only);
    off by default: on the 2-core AVX-512 machine of tools/BENCHMARKS.md it is
    slower than oneDNN's direct convolution in 7 of 8 cases, and its
    transformed weights take 4x the memory of those layers' (yolov2: +650 MB).
    `prepack` (default: on the CPU, in fp32, when not compiled) runs each other
    convolution with a leaky, relu or linear activation as one oneDNN call
    with its weights reordered once and the activation fused
    (`pydarknet.infer.prepack`).  `in_place=True` (fp32) folds and converts
    `net` itself instead of a copy: no second set of weights in memory, and
    `net` is then for inference only (the CLI's detection verbs, which run
    nothing else on it).  `precision` is "fp32" (Darknet's numbers), "bf16"
    or "int8" (`pydarknet.infer.precision`); int8 needs `calibration`: images
    (paths, load_image arrays or BGR frames, a few hundred like those to be detected) or
    a saved calibration (a `Calibration`, or the path of one saved with
    `model.calibration.save(path)`), and is always compiled.
    """

    def __init__(self, net: Darknet, compile: bool = False, channels_last: bool = True, winograd: bool = False,
                 in_place: bool = False, prepack: bool | None = None, precision: str = "fp32",
                 calibration: Sequence[Image] | Calibration | str | Path | None = None) -> None:
        device = net.device
        check_precision(precision, device)
        if precision == "int8" and calibration is None:
            raise DarknetError("precision int8 needs calibration: images like those to detect, or a saved calibration file")
        fp32 = precision == "fp32"
        # in place in fp32 only: an int8 calibration names the weights as loaded (quantize's weights_digest)
        fused = fuse_batchnorm(net, in_place and fp32)
        self.check_input = fused._check_input  # the size the model was made for
        for p in fused.parameters():
            p.requires_grad_(False)
        cpu = device.type == "cpu"
        if prepack is None:  # compiled: inductor's freezing prepacks itself
            prepack = cpu and fp32 and not compile and prepacked.available()
        # before channels_last: prepacking reorders the weights as they are (a channels_last copy would be one more)
        # on CUDA cuDNN picks its own algorithms; compiled, inductor writes its own pooling; int8's quantizer knows max_pool2d
        _choose_kernels(fused, winograd and cpu and fp32, prepack, cpu and not compile and precision != "int8")
        if channels_last:
            fused = fused.to(memory_format=torch.channels_last)
        keep = float_layers(fused.layers, fused.output_indices)
        dtypes = bfloat16_layers(fused.layers, keep) if precision == "bf16" else None
        self.module: nn.Module = _FusedForward(fused, channels_last, image_by_image=cpu and precision != "int8", dtypes=dtypes)
        self.calibration: Calibration | None = None
        self.compiled = bool(compile) or precision == "int8"
        self._pads = bool(compile) and precision != "int8"  # a graph for the batch: pad smaller ones (int8: per image)
        self._batch: int | None = None
        self._forwards = 0
        if precision == "int8":
            what = str(calibration) if isinstance(calibration, (str, Path)) else "calibration"
            saved = Calibration.load(calibration) if isinstance(calibration, (str, Path)) else calibration
            self.module, self.calibration = quantize(net, self.module, keep, saved, what)
            self._run = compile_quantized(self.module)
        else:
            self._run = torch.compile(self.module, dynamic=False, options={"freezing": True}) if compile else self.module
        self._cpu = cpu

    def __call__(self, x: Tensor) -> list[Tensor]:
        self.check_input(x)
        n = x.shape[0]
        if self.compiled and self._pads:
            if self._batch is None or n > self._batch:
                self._batch = n
            if n < self._batch:  # one compiled graph: pad to the batch size it was made for
                x = torch.cat([x, x.new_zeros(self._batch - n, *x.shape[1:])])
        if self._cpu and self._forwards == 1:  # from the second forward on, in memory already mapped (one image: no
            heap.keep_freed_blocks()          # gain, and the heap's fragments would raise a one-off run's peak RSS)
        self._forwards += 1
        with torch.inference_mode():
            if not self.compiled:
                return self._run(x)
            try:
                heads = self._run(x)
            except Exception as err:  # noqa: BLE001 - any compiler failure: warn once, run eagerly
                first = str(err).splitlines()[0] if str(err) else ""
                warnings.warn(f"torch.compile failed ({type(err).__name__}: {first}); running eagerly", InferenceWarning, stacklevel=2)
                self.compiled, self._run = False, self.module
                heads = self._run(x)
            return [h[:n] for h in heads]


# torch.compile's first call takes 10-60 s.  Against the prepacked eager model
# (tools/BENCHMARKS.md, session 10) it loses at batch 1 on all four networks
# measured, and at batch 8 gains on yolov7-tiny (0.49 vs 0.56 of eager
# PyTorch's time, 3.1 ms an image) and yolov4-tiny (0.53 vs 0.56) but loses
# on yolov2 and yolov2-tiny (3-4% slower): the best gain pays back a 21 s
# first call after ~7000 images, so a run is compiled from 10000 images on.
COMPILE_MIN_IMAGES = 10000


def compile_pays_back(images: int) -> bool:
    """Whether a run over `images` images is long enough for torch.compile to pay for itself."""
    return images >= COMPILE_MIN_IMAGES


def model_key(net: Darknet) -> tuple:
    """What an InferenceModel copies from `net`, to tell whether one made earlier still computes `net`: each
    parameter's and buffer's storage and in-place version (torch counts every in-place write: load_weights,
    an optimizer step, load_state_dict), the input size, the dialect (batch norm's formula) and the [region]
    CPU-tree quirk (`Darknet.set_cpu_tree_quirk`)."""
    tensors = tuple((t.data_ptr(), t._version, t.device) for t in itertools.chain(net.parameters(), net.buffers()))
    quirks = tuple(getattr(layer, "cpu_tree_quirk", False) for layer in net.layers)
    return net.width, net.height, net.dialect, quirks, tensors


_MODELS: weakref.WeakKeyDictionary[Darknet, tuple[tuple, InferenceModel]] = weakref.WeakKeyDictionary()


def inference_model(net: Darknet) -> InferenceModel:
    """`net`'s InferenceModel (not compiled), made at the first call and kept while `net` lives; made anew when
    `model_key(net)` changed.  It holds a folded copy of the weights: memory for a second set of them."""
    key = model_key(net)
    cached = _MODELS.get(net)
    if cached is None or cached[0] != key:
        _MODELS.pop(net, None)  # the old copy goes before the new one is made
        cached = _MODELS[net] = (key, InferenceModel(net))
    return cached[1]


def eager_model(net: Darknet) -> Callable[[Tensor], list[Tensor]]:
    """`net`'s own forward in eval mode without autograd (its mode restored after): the unfolded, unoptimised
    computation, to pass as `model=` for debugging."""

    def forward(x: Tensor) -> list[Tensor]:
        was_training = net.training
        net.eval()
        try:
            with torch.inference_mode():
                return net(x)
        finally:
            net.train(was_training)

    return forward
