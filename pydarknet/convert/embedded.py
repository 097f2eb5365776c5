"""What a converted checkpoint carries besides tensors, so the file alone rebuilds the network.

A `.pt` or `.h5` checkpoint embeds the cfg text, the files the cfg names
(`tree=`/`map=`, e.g. YOLO9000's `data/9k.tree`), the network size and the
.weights header (major, minor, revision, seen): keeping the header version
is what makes a round trip back to `.weights` byte-identical (the version
decides the width of `seen` and whether connected weights are transposed).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

from pydarknet.cfg import parse_cfg, read_cfg
from pydarknet.errors import CfgError, WeightsError
from pydarknet.network import LAYER_TYPES, Darknet
from pydarknet.weights import WeightsHeader

FORMAT = "pydarknet"
VERSION = 1
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
        "header": {"major": net.header.major, "minor": net.header.minor, "revision": net.header.revision, "seen": net.seen},
    }


def check_format(meta: dict, source: str | Path, what: str) -> None:
    """A one-line error unless `meta` is a pydarknet checkpoint of a version this code reads."""
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{source}: a {what} file, but not a pydarknet checkpoint (no format='{FORMAT}'); "
                           f"convert the Darknet .weights with `pydarknet convert`")
    if meta.get("version") != VERSION:
        raise WeightsError(f"{source}: pydarknet checkpoint version {meta.get('version')}; this pydarknet reads version {VERSION}")


def check_meta(meta: dict, source: str | Path) -> None:
    """A one-line error naming the first field of the checkpoint's metadata that is missing or of the wrong type."""
    def bad(key: str, expected: str) -> WeightsError:
        found = "missing" if meta.get(key) is None else f"a {type(meta[key]).__name__}"
        return WeightsError(f"{source}: damaged pydarknet checkpoint: '{key}' is {found}, not {expected}")

    for key in ("cfg", "cfg_name"):
        if not isinstance(meta.get(key), str):
            raise bad(key, "text")
    for key in ("width", "height"):
        if not isinstance(meta.get(key), int) or meta[key] < 1:
            raise bad(key, "a positive whole number")
    header = meta.get("header")
    if not isinstance(header, dict) or not all(isinstance(header.get(k), int) and header[k] >= 0 for k in ("major", "minor", "revision", "seen")):
        raise bad("header", "whole numbers major, minor, revision, seen")
    files = meta.get("files")
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise bad("files", "a table of file texts")


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
            target = (root / written).resolve()
            if target.is_relative_to(root.resolve()):  # absolute or '..' paths are looked up as written
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
        cfg = root / Path(meta["cfg_name"]).name
        cfg.write_text(meta["cfg"])
        embedded = f"{source} (embedded {meta['cfg_name']})"
        try:
            net = Darknet(cfg, meta["width"], meta["height"])
        except CfgError as err:  # name the checkpoint, not the temporary file
            raise CfgError(str(err).replace(str(cfg), embedded)) from None
    net.cfg_path = embedded
    net.embedded_files = dict(meta["files"])
    return net
