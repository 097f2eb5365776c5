"""int8 inference on x86 CPUs: PyTorch 2 Export post-training quantisation (torchao's X86InductorQuantizer).

The folded network's forward (`pydarknet.infer.engine`) is exported with
`torch.export` (the batch size left free) and annotated by
X86InductorQuantizer's default recipe: activations uint8 per tensor,
weights int8 per output channel (symmetric), the form oneDNN's VNNI/AMX
kernels take; the layers of `pydarknet.infer.precision.float_layers` (first
convolution, heads, convolutions that feed only heads) are left in float32.
`prepare_pt2e` puts observers on the activations (HistogramObserver:
the range that minimises the quantisation error of the values seen) and
weights; the calibration images run through it; `convert_pt2e` makes the
quantize/dequantize graph, and inductor (with freezing) fuses it into
oneDNN's int8 convolutions.  torchao is the optional extra `int8`
(`pip install -e '.[int8]'`), imported only here, only when int8 is asked.

A calibration (`Calibration`: every observer's statistics) is saved as
JSON and applied again to the same network without images: quantising
the same weights with the same statistics gives the same model.  Not
torch.export's `.pt2`: `torch.export.load` unpickles (an unrestricted
`torch.load`, and pickle's own loads) every payload the archive marks as
pickled, so a `.pt2` from someone else can run code when loaded.  A JSON
calibration holds numbers only and is checked before use.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import Tensor, nn

from pydarknet.errors import DarknetError
from pydarknet.image import load_image
from pydarknet.infer.inputs import network_batch
from pydarknet.network import Darknet
from pydarknet.progress import progress
from pydarknet.weights import write_atomic

FORMAT = "pydarknet int8 calibration"
VERSION = 1
CALIBRATION_BATCH = 8  # images per calibration forward
CALIBRATION_IMAGES = 200  # the default most, spread over a longer list (`calibration_sample`)

Image = str | Path | np.ndarray


def import_pt2e() -> SimpleNamespace:
    """torchao's PT2E quantisation API, or a one-line error naming the extra that installs it.

    torchao logs warnings at import on a CPU-only machine (its CUDA kernels'
    libraries do not load) and uses deprecated torch.jit decorators; both
    are kept quiet.
    """
    loggers = [logging.getLogger(name) for name in ("torchao", "torch.utils._pytree")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
            from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
                X86InductorQuantizer, get_default_x86_inductor_quantization_config)
    except ImportError as err:
        raise DarknetError(f"precision int8 needs torchao ({err}): pip install 'pydarknet[int8]' "
                           "(in a checkout: pip install -e '.[int8]')") from None
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
    return SimpleNamespace(prepare_pt2e=prepare_pt2e, convert_pt2e=convert_pt2e, X86InductorQuantizer=X86InductorQuantizer,
                           config=get_default_x86_inductor_quantization_config)


def weights_digest(net: Darknet) -> str:
    """SHA-256 of the network's parameters and buffers (in module order, float32 bytes): a calibration applies to these."""
    digest = hashlib.sha256()
    for tensor in itertools.chain(net.parameters(), net.buffers()):
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass
class Calibration:
    """The observers' statistics of a calibrated network (name -> buffer -> tensor) and what they were made for."""

    observers: dict[str, dict[str, Tensor]]
    width: int
    height: int
    digest: str
    images: int

    def save(self, path: str | Path) -> None:
        """Write the calibration as JSON (numbers only), atomically."""
        document = {"format": FORMAT, "version": VERSION, "width": self.width, "height": self.height,
                    "weights_sha256": self.digest, "images": self.images,
                    "observers": {name: {key: value.tolist() for key, value in buffers.items()}
                                  for name, buffers in self.observers.items()}}
        write_atomic(Path(path), json.dumps(document).encode())

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        """A calibration written by `save`; anything else is refused in one line naming the file."""
        try:
            document = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise DarknetError(f"{path}: cannot read an int8 calibration: {err}") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise DarknetError(f"{path}: not a pydarknet int8 calibration (no \"format\": \"{FORMAT}\")")
        if document.get("version") != VERSION:
            raise DarknetError(f"{path}: int8 calibration version {document.get('version')!r}; this pydarknet reads {VERSION}")
        try:
            observers = {str(name): {str(key): _tensor(value) for key, value in buffers.items()}
                         for name, buffers in document["observers"].items()}
            return cls(observers, int(document["width"]), int(document["height"]), str(document["weights_sha256"]),
                       int(document["images"]))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as err:
            raise DarknetError(f"{path}: a malformed int8 calibration ({type(err).__name__}: {err})") from None

    def check(self, net: Darknet, source: str) -> None:
        """Refuse to apply the calibration to another network, size or weights."""
        if (self.width, self.height) != (net.width, net.height):
            raise DarknetError(f"{source}: calibrated at {self.width}x{self.height}, the network is {net.width}x{net.height}")
        if self.digest != weights_digest(net):
            raise DarknetError(f"{source}: calibrated for other weights (SHA-256 {self.digest[:12]}...); calibrate again")


def _tensor(value: object) -> Tensor:
    """A float32 tensor from the JSON of `Tensor.tolist()`: a number or a (nested) list of numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float, list)):
        raise TypeError(f"{type(value).__name__} where numbers were expected")
    return torch.tensor(value, dtype=torch.float32)


def calibration_sample(paths: Sequence[Image], count: int = CALIBRATION_IMAGES) -> list[Image]:
    """At most `count` of the images, spread evenly over the list (a list is often ordered by scene or source)."""
    n = min(count, len(paths))
    return [paths[k * len(paths) // n] for k in range(n)]


def calibration_batches(net: Darknet, images: Sequence[Image], batch: int = CALIBRATION_BATCH) -> Iterator[Tensor]:
    """The network inputs of the calibration images (paths are loaded as `load_image` does), `batch` at a time."""
    for start in range(0, len(images), batch):
        chunk = [load_image(im) if isinstance(im, (str, Path)) else im for im in images[start : start + batch]]
        yield network_batch(net, chunk)


def _observers(graph: nn.Module) -> dict[str, nn.Module]:
    """The observer modules prepare_pt2e inserted, by name."""
    return {name: module for name, module in graph.named_children() if name.startswith("activation_post_process_")}


def _prepared(module: nn.Module, example: Tensor, keep: frozenset[int], pt2e: SimpleNamespace) -> torch.fx.GraphModule:
    """`module` exported (batch size free) and annotated for X86InductorQuantizer, `keep`'s layers left in float32."""
    graph = torch.export.export(module, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},)).module()
    quantizer = pt2e.X86InductorQuantizer()
    # Without VNNI, uint8 x int8 products can overflow int16 in the older kernels: the recipe's reduce_range.
    quantizer.set_global(pt2e.config(reduce_range=not torch.cpu._is_vnni_supported()))
    for index in sorted(keep):
        quantizer.set_module_name_qconfig(f"layers.{index}", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the input of maxpool2d is not quantized": after a float32 layer
        return pt2e.prepare_pt2e(graph, quantizer)


def quantize(net: Darknet, module: nn.Module, keep: frozenset[int], calibration: Sequence[Image] | Calibration,
             what: str = "calibration") -> tuple[torch.fx.GraphModule, Calibration]:
    """`module` (computing `net`) quantised to int8: calibrated on images, or with a saved `Calibration`.

    Returns the converted graph (quantize/dequantize pairs around int8
    weights; `compile_quantized` makes it fast) and the calibration.  `what`
    names the calibration's source in errors.
    """
    pt2e = import_pt2e()
    if isinstance(calibration, Calibration):
        calibration.check(net, what)
    elif not len(calibration):
        raise DarknetError(f"{what}: no calibration images")
    example = torch.zeros(2, *net.input_shape)  # export specialises a size of 1
    with torch.no_grad():
        prepared = _prepared(module, example, keep, pt2e)
        observers = _observers(prepared)
        if isinstance(calibration, Calibration):
            _restore(observers, calibration, what)
        else:
            with progress(len(calibration), "int8 calibration", "image") as bar:
                for batch in calibration_batches(net, calibration):
                    prepared(batch)
                    bar.update(len(batch))
            calibration = Calibration({name: {k: v.clone() for k, v in obs.state_dict().items()} for name, obs in observers.items()},
                                      net.width, net.height, weights_digest(net), len(calibration))
        converted = pt2e.convert_pt2e(prepared)
    return converted, calibration


def _restore(observers: dict[str, nn.Module], calibration: Calibration, what: str) -> None:
    """Load the saved statistics into the fresh observers; the graph must have the same observers."""
    if set(observers) != set(calibration.observers):
        raise DarknetError(f"{what}: its {len(calibration.observers)} observers do not match this network's "
                           f"{len(observers)} (another network, or another torch/torchao version); calibrate again")
    for name, observer in observers.items():
        saved, buffers = calibration.observers[name], dict(observer.named_buffers())
        if set(saved) != set(buffers):
            raise DarknetError(f"{what}: observer {name} has {sorted(saved)}, this network's {sorted(buffers)}")
        for key, value in saved.items():
            buffer = buffers[key]
            if buffer.numel() and buffer.shape != value.shape:  # a per-channel range starts empty (its size unknown)
                raise DarknetError(f"{what}: observer {name}: {key} has shape {list(value.shape)}, expected {list(buffer.shape)}")
            if not all(math.isfinite(v) for v in value.flatten().tolist()):
                raise DarknetError(f"{what}: observer {name}: {key} is not finite (the observer saw no data)")
            # Assigned, not load_state_dict: without the module's version metadata an observer resets its eps.
            buffer.resize_(value.shape).copy_(value)


def compile_quantized(graph: torch.fx.GraphModule) -> Callable[[Tensor], list[Tensor]]:
    """The converted graph compiled by inductor with freezing, which turns its quantize/dequantize pairs and
    int8 weights into oneDNN's int8 convolutions; a batch runs one image at a time through the graph
    compiled for one (faster per image than whole batches here: yolov2 at batch 8, 32 against 43 ms an
    image; yolov2-tiny 9.5 against 15.8 ms).

    Freezing is set in inductor's config around the calls: passed as a
    torch.compile option (as the fp32 model does) it fails here (torch 2.13:
    "UnsupportedOperatorException: onednn.qconv_prepack" while compiling).
    """
    compiled = torch.compile(graph, dynamic=False)

    def run(x: Tensor) -> list[Tensor]:
        with torch._inductor.config.patch(freezing=True):
            heads = [compiled(x[k : k + 1]) for k in range(x.shape[0])]
        return [torch.cat(outputs) for outputs in zip(*heads)]

    return run
