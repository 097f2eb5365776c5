"""What a converted checkpoint carries besides tensors, so the file alone rebuilds the network.

A `.pt` or `.h5` checkpoint embeds the cfg text, the files the cfg names
(`tree=`/`map=`, e.g. YOLO9000's `data/9k.tree`), the network size and the
.weights header (major, minor, revision, seen): keeping the header version
is what makes a round trip back to `.weights` byte-identical (the version
decides the width of `seen` and whether connected weights are transposed).

Version 2 adds `sha256`, a checksum of the metadata and the tensors
(`checksum`): a file damaged after it was written (a flipped bit) is
refused.  Version 1 files, which have none, are still read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from pydarknet.cfg import parse_cfg, read_cfg
from pydarknet.errors import CfgError, WeightsError
from pydarknet.network import LAYER_TYPES, Darknet
from pydarknet.weights import WeightsHeader, header_to_save

FORMAT = "pydarknet"
VERSION = 2
READ_VERSIONS = (1, 2)  # 1: no checksum
CHECKSUM = "sha256"
META_KEYS = ("format", "version", "cfg", "cfg_name", "files", "width", "height", "header")  # what the checksum covers
HEADER_KEYS = ("major", "minor", "revision", "seen")
C_INT = 2**31  # Darknet keeps width, height, major, minor and revision in C ints
FILE_OPTIONS = ("tree", "map")  # options whose value is a file the layer reads


def cfg_files(net: Darknet) -> dict[str, str]:
    """The text of every file the cfg names (`tree=`, `map=`), keyed by the value as written.

    A network rebuilt from a checkpoint keeps the checkpoint's files (`embedded_files`).
    """
    if hasattr(net, "embedded_files"):
        return dict(net.embedded_files)
    files = {}
    for section in read_cfg(net.cfg_path)[1:]:
        for key in FILE_OPTIONS:
            if key in section.options:
                path = section.get_path(key)
                files[section.get_str(key)] = Path(path).read_text()  # type: ignore[arg-type]
    return files


def describe(net: Darknet) -> dict:
    """The checkpoint's metadata: cfg text and files, input size, .weights header."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "cfg": net.cfg_text,
        "cfg_name": Path(net.cfg_path).name,
        "files": cfg_files(net),
        "width": net.width,
        "height": net.height,
        "header": dataclasses.asdict(header_to_save(net)),
    }


def check_format(meta: dict, source: str | Path, what: str) -> None:
    """A one-line error unless `meta` is a pydarknet checkpoint of a version this code reads."""
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{source}: a {what} file, but not a pydarknet checkpoint (no format='{FORMAT}'); "
                           f"convert the Darknet .weights with `pydarknet convert`")
    version = meta.get("version")
    if type(version) is not int or version not in READ_VERSIONS:
        raise WeightsError(f"{source}: pydarknet checkpoint version {version!r}; this pydarknet reads versions "
                           f"{', '.join(map(str, READ_VERSIONS))}")


def _whole(value: object, low: int, high: int) -> bool:
    """`value` is an int (not a bool) with low <= value < high."""
    return type(value) is int and low <= value < high


def _found(value: object) -> str:
    if value is None:
        return "missing"
    return str(value) if type(value) is int else f"a {type(value).__name__}"


def check_meta(meta: dict, source: str | Path) -> None:
    """A one-line error naming the first field of the checkpoint's metadata that is missing, of the wrong type or out of range.

    Width, height and the header version are C ints in Darknet; `seen` must
    fit the 4 or 8 bytes its header version gives it in a .weights file.
    """
    def bad(name: str, value: object, expected: str) -> WeightsError:
        return WeightsError(f"{source}: damaged pydarknet checkpoint: {name} is {_found(value)}, not {expected}")

    for key in ("cfg", "cfg_name"):
        if not _is_text(meta.get(key)):
            raise bad(f"'{key}'", meta.get(key), "text")
    if meta["cfg_name"] in ("", ".", "..") or "/" in meta["cfg_name"] or "\0" in meta["cfg_name"]:
        raise WeightsError(f"{source}: damaged pydarknet checkpoint: 'cfg_name' {meta['cfg_name']!r} is not a file name")
    for key in ("width", "height"):
        if not _whole(meta.get(key), 1, C_INT):
            raise bad(f"'{key}'", meta.get(key), f"a whole number from 1 to {C_INT - 1}")
    header = meta.get("header")
    if not isinstance(header, dict):
        raise bad("'header'", header, "a table of " + ", ".join(HEADER_KEYS))
    for key in HEADER_KEYS[:3]:
        if not _whole(header.get(key), 0, C_INT):
            raise bad(f"'header' {key}", header.get(key), f"a whole number from 0 to {C_INT - 1}")
    seen_bytes = WeightsHeader(header["major"], header["minor"]).seen_bytes
    if not _whole(header.get("seen"), 0, 2 ** (8 * seen_bytes)):
        raise bad("'header' seen", header.get("seen"),
                  f"a whole number that fits the {seen_bytes} bytes of version {header['major']}.{header['minor']}")
    files = meta.get("files")
    if not isinstance(files, dict) or not all(_is_text(k) and "\0" not in k and _is_text(v) for k, v in files.items()):
        raise bad("'files'", files, "a table of file texts")


def _is_text(value: object) -> bool:
    """A str that can be written as UTF-8 (a pickle may hold lone surrogates)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def checksum(meta: dict, tensors: Iterable[tuple[str, np.ndarray]]) -> str:
    """sha256 of the metadata (META_KEYS as sorted JSON) and each tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256(json.dumps({key: meta[key] for key in META_KEYS}, sort_keys=True).encode())
    for name, array in sorted(tensors, key=lambda item: item[0]):
        array = np.ascontiguousarray(array)
        digest.update(f"\n{name} {array.dtype.str} {array.shape}\n".encode())
        digest.update(array)
    return digest.hexdigest()


def verify_checksum(meta: dict, tensors: Iterable[tuple[str, np.ndarray]], source: str | Path) -> None:
    """A one-line error unless the stored checksum matches (a version-1 file has none to check)."""
    stored = meta.get(CHECKSUM)
    if stored is None and meta["version"] == 1:
        return
    if not isinstance(stored, str):
        raise WeightsError(f"{source}: damaged pydarknet checkpoint: no '{CHECKSUM}' checksum in a version {meta['version']} file")
    if stored != checksum(meta, tensors):
        raise WeightsError(f"{source}: damaged: checksum mismatch (the file changed after pydarknet wrote it)")


def _layer_kinds(sections_kinds: list[str]) -> list[str]:
    return [LAYER_TYPES[k].kind if k in LAYER_TYPES else k for k in sections_kinds]


def check_cfg_matches(net: Darknet, meta: dict, source: str | Path) -> None:
    """The cfg given on the command line must have the embedded cfg's layers, in order."""
    _, sections = parse_cfg(meta["cfg"], f"{source} (embedded cfg)")
    theirs = _layer_kinds([s.kind for s in sections[1:]])
    ours = [layer.kind for layer in net.layers]
    if ours != theirs:
        where = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
        raise WeightsError(
            f"{source}: made from {meta['cfg_name']} ({len(theirs)} layers), which does not match {net.cfg_path} "
            f"({len(ours)} layers; first difference at layer {where})"
        )


def build_network(cfg: str | Path | None, meta: dict, source: str | Path) -> Darknet:
    """The network a checkpoint describes: from `cfg` (checked against the embedded one) or
    from the embedded cfg and files, at the checkpoint's input size; header and seen restored."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if cfg is not None:
            net = Darknet(cfg, meta["width"], meta["height"])
            check_cfg_matches(net, meta, source)
        else:
            net = _from_embedded(meta, source)
    h = meta["header"]
    net.header = WeightsHeader(int(h["major"]), int(h["minor"]), int(h["revision"]), int(h["seen"]))
    net.seen = int(h["seen"])
    return net


def _from_embedded(meta: dict, source: str | Path) -> Darknet:
    """Write the cfg and its files into a temporary folder, where the cfg's relative paths find them."""
    with tempfile.TemporaryDirectory(prefix="pydarknet-cfg-") as tmp:
        root = Path(tmp)
        for written, text in meta["files"].items():
            _place(root, written, text, source)
        cfg = root / meta["cfg_name"]
        cfg.write_text(meta["cfg"])
        embedded = f"{source} (embedded {meta['cfg_name']})"
        try:
            net = Darknet(cfg, meta["width"], meta["height"])
        except CfgError as err:  # name the checkpoint, not the temporary file
            raise CfgError(str(err).replace(str(cfg), embedded)) from None
    net.cfg_path = embedded
    net.embedded_files = dict(meta["files"])
    return net


def _place(root: Path, written: str, text: str, source: str | Path) -> None:
    """Write an embedded file where the cfg's relative path finds it under `root` (absolute or '..' paths are looked up as written)."""
    target = (root / written).resolve()
    if target == root.resolve() or not target.is_relative_to(root.resolve()):
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    except OSError as err:
        raise WeightsError(f"{source}: damaged pydarknet checkpoint: embedded file {written!r} cannot be placed ({err.strerror or err})") from None
