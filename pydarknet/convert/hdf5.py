"""The `.h5` checkpoint: Darknet's tensors in HDF5, readable by any HDF5 tool.

Layout:
- root attributes: `format` ("pydarknet"), `version` (2), `cfg` (the cfg
  text), `cfg_name`, `width`, `height`, the .weights header fields
  `major`, `minor`, `revision`, `seen`, and `sha256`, the checksum of the
  metadata and the tensors (`embedded.checksum`; version 1 files have none);
- group `files`: one string dataset per file the cfg names (`tree=`,
  `map=`), its `path` attribute the value as written in the cfg;
- one group per layer that stores tensors, named `"{index:03d}_{kind}"`
  (`000_convolutional`), with attributes `index`, `type` and `order` (the
  dataset names in the order Darknet's weights file stores them), and one
  float32 dataset per tensor, named as in Darknet's C structs: `biases`,
  `scales`, `rolling_mean`, `rolling_variance`, `weights`.

HDF5 can make a file read other files (external links, external storage,
virtual datasets) or load filter plugins; reading a checkpoint allows none
of it: only groups at the root and datasets in them, each through a hard
link, stored inside the file (contiguous, chunked or compact, with HDF5's
own filters only) and claiming together no more bytes than the file has.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import h5py
import numpy as np
import torch
from h5py import h5d, h5z

from pydarknet.convert.embedded import (CHECKSUM, HEADER_KEYS, build_network, check_format, check_meta, checksum, describe,
                                        verify_checksum)
from pydarknet.errors import WeightsError, first_line
from pydarknet.layers.base import Layer
from pydarknet.network import Darknet
from pydarknet.weights import check_finite

BATCHNORM_NAMES = ["scales", "rolling_mean", "rolling_variance"]


def tensor_names(layer: Layer) -> list[str]:
    """Darknet's names for `layer.darknet_tensors()`, in the same (file) order.

    Convolutional: biases, [scales, rolling_mean, rolling_variance], weights
    (load_convolutional_weights); connected: biases, weights, then the batch
    norm (load_connected_weights); local: biases, weights; AlexeyAB's
    [shortcut] with weights_type and [implicit]: weights (load_shortcut_weights,
    load_implicit_weights).
    """
    bn = BATCHNORM_NAMES if getattr(layer, "bn", None) is not None else []
    if layer.kind in ("shortcut", "implicit"):
        return ["weights"]
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
    stored = _stored_layers(net)
    tensors = {f"{_group_name(layer)}/{name}": tensor.detach().to("cpu", torch.float32).numpy()
               for layer, layer_tensors in stored for name, tensor in zip(tensor_names(layer), layer_tensors, strict=True)}
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for key in ("format", "version", "cfg", "cfg_name", "width", "height"):
            f.attrs[key] = meta[key]
        for key, value in meta["header"].items():
            f.attrs[key] = np.uint64(value) if key == "seen" else np.int32(value)
        f.attrs[CHECKSUM] = checksum(meta, tensors.items())
        files = f.create_group("files")
        for number, (written, text) in enumerate(meta["files"].items()):
            dataset = files.create_dataset(f"{number}", data=text, dtype=h5py.string_dtype())
            dataset.attrs["path"] = written
        for layer, _ in stored:
            names = tensor_names(layer)
            group = f.create_group(_group_name(layer))
            group.attrs["index"] = layer.index
            group.attrs["type"] = layer.kind
            group.attrs["order"] = names
            for name in names:
                group.create_dataset(name, data=tensors[f"{_group_name(layer)}/{name}"])
    return buffer.getvalue()


PLAIN_LAYOUTS = {h5d.COMPACT: "compact", h5d.CONTIGUOUS: "contiguous", h5d.CHUNKED: "chunked"}
BUILTIN_FILTERS = {h5z.FILTER_DEFLATE, h5z.FILTER_SHUFFLE, h5z.FILTER_FLETCHER32, h5z.FILTER_SZIP, h5z.FILTER_NBIT,
                   h5z.FILTER_SCALEOFFSET}  # any other filter is a plugin HDF5 would load


def _member(group: h5py.Group, key: str, source: str | Path) -> h5py.Group | h5py.Dataset:
    """`group[key]`, reached through a hard link only (a soft link may point anywhere, an external one into another file)."""
    where = f"{group.name.rstrip('/')}/{key}".lstrip("/")
    link = group.get(key, getlink=True)
    if not isinstance(link, h5py.HardLink):
        kind = {h5py.SoftLink: "a soft link", h5py.ExternalLink: "an external link"}.get(type(link), "not a plain link")
        raise WeightsError(f"{source}: {where} is {kind}; a pydarknet checkpoint holds its own data through hard links only")
    return group[key]


def _check_storage(data: h5py.Dataset, where: str, source: str | Path) -> None:
    """Refuse a dataset whose values are not stored plainly inside the file."""
    plist = data.id.get_create_plist()
    layout = plist.get_layout()
    problem = ("a virtual dataset (its values live in other files)" if layout == h5d.VIRTUAL
               else f"stored in HDF5 layout {layout}" if layout not in PLAIN_LAYOUTS
               else "kept in external storage (its values live in another file)" if plist.get_external_count()
               else None)
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    unknown = [code for code in filters if code not in BUILTIN_FILTERS]
    if problem is None and unknown:
        problem = f"filtered by filter {unknown[0]}, which is not one HDF5 ships (it would load a plugin)"
    if problem:
        raise WeightsError(f"{source}: {where} is {problem}; a pydarknet checkpoint keeps its data inside the file")


def _scan(f: h5py.File, source: str | Path) -> dict[str, dict[str, h5py.Dataset]]:
    """The root's groups and their datasets, every one checked (see the module doc)."""
    groups: dict[str, dict[str, h5py.Dataset]] = {}
    claimed = 0
    for key in f:
        group = _member(f, key, source)
        if not isinstance(group, h5py.Group):
            raise WeightsError(f"{source}: {key} is a dataset; a pydarknet checkpoint holds groups at its root")
        groups[key] = {}
        for name in group:
            data = _member(group, name, source)
            if not isinstance(data, h5py.Dataset) or data.shape is None:
                raise WeightsError(f"{source}: {key}/{name} is {'an empty dataset' if isinstance(data, h5py.Dataset) else 'a group'}, "
                                   "not an array")
            _check_storage(data, f"{key}/{name}", source)
            claimed += data.size * data.dtype.itemsize
            groups[key][name] = data
    if claimed > f.id.get_filesize():
        raise WeightsError(f"{source}: its datasets claim {claimed} bytes, more than the file's {f.id.get_filesize()}")
    return groups


def _attribute(value: object) -> object:
    """An attribute as Python text or number when it is one; anything else as found (check_meta names it)."""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value
    return value.item() if isinstance(value, np.generic) and not isinstance(value, np.void) else value


def _read_files(datasets: dict[str, h5py.Dataset], source: str | Path) -> dict[str, str]:
    """The `files` group: file text by the path written in the cfg."""
    files = {}
    for key, data in datasets.items():
        path = _attribute(data.attrs.get("path"))
        if h5py.check_string_dtype(data.dtype) is None or data.shape != () or not isinstance(path, str):
            raise WeightsError(f"{source}: files/{key} is not a file text (a string with a 'path' attribute)")
        files[path] = data.asstr()[()]
    return files


def _read_meta(f: h5py.File, groups: dict[str, dict[str, h5py.Dataset]], name: str | Path) -> dict:
    meta = {key: _attribute(f.attrs.get(key)) for key in ("format", "version", "cfg", "cfg_name", "width", "height", CHECKSUM)}
    check_format(meta, name, "HDF5")
    meta["header"] = {key: _attribute(f.attrs.get(key)) for key in HEADER_KEYS}
    if "files" not in groups:
        raise WeightsError(f"{name}: pydarknet HDF5 checkpoint without its 'files' group")
    meta["files"] = _read_files(groups["files"], name)
    check_meta(meta, name)
    return meta


def _read_tensors(groups: dict[str, dict[str, h5py.Dataset]], name: str | Path) -> dict[str, np.ndarray]:
    """Every dataset of the layer groups, by `group/dataset`: floats only."""
    tensors = {}
    for key, datasets in groups.items():
        if key == "files":
            continue
        for dataset, data in datasets.items():
            if data.dtype.kind != "f":
                raise WeightsError(f"{name}: {key}/{dataset} holds {data.dtype}, not floats")
            tensors[f"{key}/{dataset}"] = data[()]
    return tensors


def _read(source: str | Path | BinaryIO, name: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata, tensors by `group/dataset`) of a `.h5` checkpoint; HDF5's own failures are one line."""
    try:
        f = h5py.File(source, "r")
    except OSError as err:
        raise WeightsError(f"{name}: not an HDF5 file ({first_line(err, 120)})") from None
    try:
        with f:
            groups = _scan(f, name)
            return _read_meta(f, groups, name), _read_tensors(groups, name)
    except (OSError, KeyError, TypeError, ValueError, RuntimeError) as err:  # HDF5 reports damage with any of these
        raise WeightsError(f"{name}: damaged HDF5 checkpoint ({type(err).__name__}: {first_line(err, 120)})") from None


def load_h5(cfg: str | Path | None, source: str | Path | BinaryIO, name: str | Path | None = None) -> Darknet:
    """The network of a `.h5` checkpoint (built from `cfg` if given, else from the embedded cfg).

    The checksum is checked once the tensors are known to fit the network.
    """
    name = name or source  # type: ignore[assignment]
    meta, tensors = _read(source, name)  # type: ignore[arg-type]
    net = build_network(cfg, meta, name)  # type: ignore[arg-type]
    stored = _stored_layers(net)
    groups = {key.split("/")[0] for key in tensors}
    extra = sorted(groups - {_group_name(layer) for layer, _ in stored})
    if extra:
        raise WeightsError(f"{name}: group {extra[0]} has no layer with tensors in {net.cfg_path}")
    pairs = [(tensor, _tensor(tensors, layer, key, tensor, name)) for layer, layer_tensors in stored  # type: ignore[arg-type]
             for key, tensor in zip(tensor_names(layer), layer_tensors, strict=True)]
    verify_checksum(meta, tensors.items(), name)  # type: ignore[arg-type]
    with torch.no_grad():
        for tensor, data in pairs:
            tensor.copy_(torch.from_numpy(data.astype(np.float32, copy=False)))
    check_finite(net, name)  # type: ignore[arg-type]
    return net


def _tensor(tensors: dict[str, np.ndarray], layer: Layer, key: str, tensor: torch.Tensor, name: str | Path) -> np.ndarray:
    """The stored values of one of the layer's tensors, of its shape."""
    data = tensors.get(f"{_group_name(layer)}/{key}")
    if data is None or tuple(data.shape) != tuple(tensor.shape):
        found = "missing" if data is None else f"has shape {tuple(data.shape)}"
        raise WeightsError(f"{name}: {_group_name(layer)}/{key} {found}, layer {layer.index} needs {tuple(tensor.shape)}")
    return data
