"""Reduced precision for the inference mode: which precisions exist, where they run, which layers stay float32.

Darknet computes in float32 only; `fp32` is its numbers (`InferenceModel`'s
default).  `bf16` runs the convolutional trunk in bfloat16 (8 bits of
mantissa: the same exponent range as float32, so no scaling is needed) with
float32 accumulation inside oneDNN's and cuDNN's kernels; it is offered
where the hardware computes bfloat16 natively: a CPU with AVX-512 BF16 or
AMX, or a CUDA device with bfloat16 arithmetic (Ampere and later).  `int8`
is post-training quantisation for x86 CPUs (`pydarknet.infer.quantize`).

In both reduced precisions the layers of `float_layers` stay float32: the
first convolution (it sees the image's 8-bit pixels; its output has the
widest range of values), every detection head ([region], [yolo],
[Gaussian_yolo], [detection]: their logistic, softmax and exp decode the
boxes) and the convolutions whose output goes only to heads (the 1x1
convolution before a [region] or [yolo], whose raw outputs are the box
offsets, objectness and class scores).
"""

from __future__ import annotations

import platform
from collections.abc import Sequence

import torch
from torch import nn

from pydarknet.errors import DarknetError
from pydarknet.layers.convolutional import Convolutional

PRECISIONS = ("fp32", "bf16", "int8")


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively: AVX-512 BF16 (`avx512_bf16`) or AMX tiles (`amx_bf16`)."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse, in one line, a precision this device cannot run well."""
    if precision not in PRECISIONS:
        raise DarknetError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "bf16":
        if device.type == "cuda" and torch.cuda.get_device_capability(device) < (8, 0):
            raise DarknetError(f"precision bf16: {torch.cuda.get_device_name(device)} has no bfloat16 arithmetic "
                               "(Ampere or later has); use fp32")
        if device.type == "cpu" and not cpu_has_bf16():
            raise DarknetError("precision bf16: this CPU has neither AVX-512 BF16 nor AMX, so bfloat16 would be "
                               "emulated (slower than fp32); use fp32, or int8 on x86")
        if device.type not in ("cpu", "cuda"):
            raise DarknetError(f"precision bf16: runs on a CPU or CUDA device, not {device.type}")
    if precision == "int8":
        if device.type != "cpu":
            raise DarknetError(f"precision int8: x86 CPUs only (PyTorch's X86InductorQuantizer); the network is on "
                               f"{device}: use bf16 there, or --device cpu")
        if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
            raise DarknetError(f"precision int8: x86 CPUs only (PyTorch's X86InductorQuantizer); this is {platform.machine()}")


def float_layers(layers: nn.ModuleList, output_indices: Sequence[int]) -> frozenset[int]:
    """The indices of the layers kept in float32: the first convolution, the outputs (the heads), and the
    convolutions all of whose consumers are outputs."""
    heads = set(output_indices)
    consumers: dict[int, set[int]] = {}
    for layer in layers:
        for source in layer.sources:
            consumers.setdefault(source, set()).add(layer.index)
    convolutions = [layer.index for layer in layers if isinstance(layer, Convolutional)]
    feeding_heads = {i for i in convolutions if consumers.get(i) and consumers[i] <= heads}
    return frozenset(heads | feeding_heads | set(convolutions[:1]))


def bfloat16_layers(layers: nn.ModuleList, keep: frozenset[int]) -> list[torch.dtype]:
    """Cast every layer but those of `keep` to bfloat16 in place; the dtype each layer computes in, by index."""
    dtypes = []
    for layer in layers:
        dtype = torch.float32 if layer.index in keep else torch.bfloat16
        layer.to(dtype)
        dtypes.append(dtype)
    return dtypes
