"""Converting Darknet checkpoints: `.weights` <-> `.pt` <-> `.h5`, and ONNX export.

The format of a file is chosen by its extension: `.pt`/`.pth` (PyTorch,
`torch_format`), `.h5`/`.hdf5` (HDF5, `hdf5`), `.onnx` (export only,
`onnx_export`); anything else is a Darknet weights file (Darknet's own
names vary: `.weights`, `.backup`, `darknet19_448.conv.23`).  Every output
is written atomically (temporary file, then rename) and an existing one is
kept unless `force`.  Conversions between `.weights`, `.pt` and `.h5` are
lossless, and a round trip to `.weights` is byte-identical (the header
version travels with the checkpoint).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from pydarknet.convert.fuse import fuse_batchnorm
from pydarknet.convert.hdf5 import h5_bytes, load_h5
from pydarknet.convert.torch_format import load_pt, pt_bytes
from pydarknet.errors import DarknetError, WeightsError
from pydarknet.network import Darknet
from pydarknet.weights import load_weights, weights_bytes, write_atomic

__all__ = ["convert", "fuse_batchnorm", "input_format", "load_checkpoint", "output_format"]

TORCH_EXTENSIONS = (".pt", ".pth")
HDF5_EXTENSIONS = (".h5", ".hdf5")
OUTPUT_FORMATS = {".weights": "weights", ".pt": "pt", ".pth": "pt", ".h5": "h5", ".hdf5": "h5", ".onnx": "onnx"}


def input_format(path: str | Path) -> str:
    """'pt', 'h5' or 'weights', from the input's extension (ONNX cannot be read back)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":
        raise DarknetError(f"{path}: ONNX is an export format; convert from the .weights, .pt or .h5 file")
    return "pt" if suffix in TORCH_EXTENSIONS else "h5" if suffix in HDF5_EXTENSIONS else "weights"


def output_format(path: str | Path) -> str:
    """'weights', 'pt', 'h5' or 'onnx', from the output's extension."""
    fmt = OUTPUT_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        known = ", ".join(OUTPUT_FORMATS)
        raise DarknetError(f"{path}: unknown output format '{Path(path).suffix}'; use one of {known}")
    return fmt


def load_checkpoint(cfg: str | Path | None, path: str | Path, width: int | None = None, height: int | None = None) -> Darknet:
    """A network with the tensors of a `.weights`, `.pt` or `.h5` file.

    A `.weights` file needs its cfg; a `.pt`/`.h5` rebuilds the network from
    its embedded cfg, or from `cfg` when given (checked against the embedded one).
    """
    fmt = input_format(path)
    if not Path(path).is_file():
        raise WeightsError(f"{path}: no such file")
    if fmt == "pt":
        net = load_pt(cfg, path)
    elif fmt == "h5":
        net = load_h5(cfg, path)
    else:
        if cfg is None:
            raise DarknetError(f"{path}: a Darknet weights file has no cfg; give the cfg it was trained with")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = Darknet(cfg)
        load_weights(net, path)
    if width or height:
        net.resize(width or net.width, height or net.height)
    return net.eval()


def network_with_weights(cfg: str | Path, weights: str | Path, width: int | None = None, height: int | None = None) -> Darknet:
    """The network of `cfg` (its warnings shown) with the tensors of a `.weights`, or of a `.pt`/`.h5` made from it."""
    if input_format(weights) != "weights":
        return load_checkpoint(cfg, weights, width, height)
    net = Darknet(cfg, width, height)
    load_weights(net, weights)
    return net


def _check_options(fmt: str, fuse: bool, decode: bool, size: tuple[int, int] | None) -> None:
    """The ONNX-only options, refused for the lossless formats before any work is done."""
    if fmt == "onnx":
        from pydarknet.convert.onnx_export import require_onnx

        require_onnx()
        return
    if fuse:
        raise DarknetError("--fuse is for ONNX exports: a fused .weights/.pt/.h5 would no longer match its cfg")
    if decode:
        raise DarknetError("--decode is for ONNX exports")
    if size is not None:
        raise DarknetError("--size is for ONNX exports (the other formats keep the checkpoint's size)")


def _encode(net: Darknet, fmt: str, fuse: bool, decode: bool) -> bytes:
    if fmt == "onnx":
        from pydarknet.convert.onnx_export import onnx_bytes  # onnx is an optional extra

        return onnx_bytes(fuse_batchnorm(net) if fuse else net, decode)
    return {"weights": weights_bytes, "pt": pt_bytes, "h5": h5_bytes}[fmt](net)


def convert(
    cfg: str | Path | None,
    src: str | Path,
    dst: str | Path,
    force: bool = False,
    fuse: bool = False,
    decode: bool = False,
    size: tuple[int, int] | None = None,
    dialect: str = "auto",
) -> Darknet:
    """Convert `src` to `dst`, formats chosen by extension; returns the network converted.

    `size` (width, height) sets the ONNX input size (default: the cfg's);
    `dialect` the Darknet whose numbers a fused ONNX export computes
    (the lossless formats store tensors, which both Darknets read alike).
    """
    fmt = output_format(dst)
    if Path(dst).exists() and not force:
        raise DarknetError(f"{dst}: already exists; pass --force to overwrite it")
    _check_options(fmt, fuse, decode, size)
    net = load_checkpoint(cfg, src, *(size or (None, None)))
    net.set_dialect(dialect)
    data = _encode(net, fmt, fuse, decode)
    try:
        write_atomic(dst, data)
    except OSError as err:
        raise DarknetError(f"{dst}: cannot write: {err.strerror or err}") from None
    return net
