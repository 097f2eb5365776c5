"""The `.h5` checkpoint: Darknet's tensors in HDF5, readable by any HDF5 tool.

Layout:
- root attributes: `format` ("pydarknet"), `version` (1), `cfg` (the cfg
  text), `cfg_name`, `width`, `height`, and the .weights header fields
  `major`, `minor`, `revision`, `seen`;
- group `files`: one string dataset per file the cfg names (`tree=`,
  `map=`), its `path` attribute the value as written in the cfg;
- one group per layer that stores tensors, named `"{index:03d}_{kind}"`
  (`000_convolutional`), with attributes `index`, `type` and `order` (the
  dataset names in the order Darknet's weights file stores them), and one
  float32 dataset per tensor, named as in Darknet's C structs: `biases`,
  `scales`, `rolling_mean`, `rolling_variance`, `weights`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import h5py
import numpy as np
import torch

from pydarknet.convert.embedded import build_network, check_format, check_meta, describe
from pydarknet.errors import WeightsError
from pydarknet.layers.base import Layer
from pydarknet.network import Darknet
from pydarknet.weights import check_finite

BATCHNORM_NAMES = ["scales", "rolling_mean", "rolling_variance"]


def tensor_names(layer: Layer) -> list[str]:
    """Darknet's names for `layer.darknet_tensors()`, in the same (file) order.

    Convolutional: biases, [scales, rolling_mean, rolling_variance], weights
    (load_convolutional_weights); connected: biases, weights, then the batch
    norm (load_connected_weights); local: biases, weights.
    """
    bn = BATCHNORM_NAMES if getattr(layer, "bn", None) is not None else []
    if layer.kind == "convolutional":
        return ["biases", *bn, "weights"]
    return ["biases", "weights", *bn]


def _stored_layers(net: Darknet) -> list[tuple[Layer, list[torch.Tensor]]]:
    """Every layer with tensors, and its tensors in Darknet's memory layout (not transposed)."""
    pairs = [(layer, layer.darknet_tensors()) for layer in net.layers]
    return [(layer, tensors) for layer, tensors in pairs if tensors]


def _group_name(layer: Layer) -> str:
    return f"{layer.index:03d}_{layer.kind}"


def h5_bytes(net: Darknet) -> bytes:
    """The bytes of the `.h5` checkpoint of `net`."""
    meta = describe(net)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for key in ("format", "version", "cfg", "cfg_name", "width", "height"):
            f.attrs[key] = meta[key]
        for key, value in meta["header"].items():
            f.attrs[key] = np.uint64(value) if key == "seen" else np.int32(value)
        files = f.create_group("files")
        for number, (written, text) in enumerate(meta["files"].items()):
            dataset = files.create_dataset(f"{number}", data=text, dtype=h5py.string_dtype())
            dataset.attrs["path"] = written
        for layer, tensors in _stored_layers(net):
            names = tensor_names(layer)
            group = f.create_group(_group_name(layer))
            group.attrs["index"] = layer.index
            group.attrs["type"] = layer.kind
            group.attrs["order"] = names
            for name, tensor in zip(names, tensors, strict=True):
                group.create_dataset(name, data=tensor.detach().to("cpu", torch.float32).numpy())
    return buffer.getvalue()


def _read_meta(f: h5py.File, name: str | Path) -> dict:
    attrs = dict(f.attrs)
    meta = {key: attrs.get(key) for key in ("format", "version", "cfg", "cfg_name", "width", "height")}
    meta = {k: (v.decode() if isinstance(v, bytes) else v.item() if isinstance(v, np.generic) else v) for k, v in meta.items()}
    check_format(meta, name, "HDF5")
    try:
        meta["header"] = {key: int(attrs[key]) for key in ("major", "minor", "revision", "seen")}
        meta["files"] = {str(d.attrs["path"]): d.asstr()[()] for d in f["files"].values()}
    except KeyError as err:
        raise WeightsError(f"{name}: pydarknet HDF5 checkpoint without {err}") from None
    except (TypeError, ValueError) as err:
        raise WeightsError(f"{name}: damaged pydarknet checkpoint: header or files unreadable ({err})") from None
    check_meta(meta, name)
    return meta


def load_h5(cfg: str | Path | None, source: str | Path | BinaryIO, name: str | Path | None = None) -> Darknet:
    """The network of a `.h5` checkpoint (built from `cfg` if given, else from the embedded cfg)."""
    name = name or source  # type: ignore[assignment]
    try:
        f = h5py.File(source, "r")
    except OSError as err:
        raise WeightsError(f"{name}: not an HDF5 file ({str(err).splitlines()[0][:120]})") from None
    with f:
        meta = _read_meta(f, name)  # type: ignore[arg-type]
        net = build_network(cfg, meta, name)  # type: ignore[arg-type]
        stored = _stored_layers(net)
        expected = {_group_name(layer) for layer, _ in stored}
        extra = sorted(set(f.keys()) - expected - {"files"})
        if extra:
            raise WeightsError(f"{name}: group {extra[0]} has no layer with tensors in {net.cfg_path}")
        with torch.no_grad():
            for layer, tensors in stored:
                group = f.get(_group_name(layer))
                if group is None:
                    raise WeightsError(f"{name}: no group {_group_name(layer)} for layer {layer.index} of {net.cfg_path}")
                for key, tensor in zip(tensor_names(layer), tensors, strict=True):
                    data = group.get(key)
                    if data is None or tuple(data.shape) != tuple(tensor.shape):
                        found = "missing" if data is None else f"has shape {tuple(data.shape)}"
                        raise WeightsError(f"{name}: {_group_name(layer)}/{key} {found}, layer {layer.index} needs {tuple(tensor.shape)}")
                    tensor.copy_(torch.from_numpy(data[()].astype(np.float32, copy=False)))
    check_finite(net, name)
    return net
