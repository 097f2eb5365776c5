"""Lossless conversions: .weights -> .pt / .h5 -> .weights byte for byte, golden outputs
from a converted .pt, and Darknet's `partial`."""

from __future__ import annotations

import io
import warnings

import h5py
import numpy as np
import pytest
import torch

from conftest import GOLDEN, MANIFEST, cfg_path, golden_close
from helpers import case_input
from pydarknet import Darknet, WeightsError
from pydarknet.commands.partial import partial
from pydarknet.convert import load_checkpoint
from pydarknet.convert.hdf5 import h5_bytes, load_h5
from pydarknet.convert.torch_format import load_pt, pt_bytes
from pydarknet.weights import read_weights_file, weights_bytes

# A golden forward case per network: the converted .pt must reproduce Darknet's numbers
# (yolov3's 66-BFLOP case is left to test_forward_golden: its bytes are checked identical here).
ROUND_TRIPS = {
    "yolov2.cfg": "yolov2_dog_416",
    "yolov2-tiny.cfg": "yolov2-tiny_dog_416",
    "yolo9000.cfg": "yolo9000_dog_224",
    "yolov3.cfg": None,
}
CASES = {case["name"]: case for case in MANIFEST["forward"]}


def assert_golden(net: Darknet, name: str) -> None:
    case = CASES[name]
    net.resize(case["width"], case["height"])
    net.set_cpu_tree_quirk()  # the forward goldens are Darknet's CPU build's (yolo9000: Region.cpu_tree_quirk)
    with torch.no_grad():
        outputs = net.eval().forward_layers(torch.from_numpy(case_input(case)).reshape(1, *net.input_shape))
    files = sorted((GOLDEN / "forward" / name).glob("layer_*.npy"))
    assert files
    for f in files:
        index = int(f.stem.split("_")[1])
        ok, how = golden_close(outputs[index][0].numpy(), np.load(f))
        assert ok, f"{name} layer {index}: {how}"


@pytest.mark.parametrize("cfg", list(ROUND_TRIPS))
def test_round_trips_are_byte_identical_and_pt_gives_golden_outputs(cfg, random_weights):
    """weights -> pt -> weights and weights -> h5 -> weights, in memory, from the embedded cfg."""
    original = random_weights(cfg).read_bytes()
    net = load_checkpoint(cfg_path(cfg), random_weights(cfg))
    h5 = h5_bytes(net)
    pt = pt_bytes(net)
    del net
    from_h5 = load_h5(None, io.BytesIO(h5), "model.h5")
    del h5
    assert weights_bytes(from_h5) == original
    del from_h5
    from_pt = load_pt(None, io.BytesIO(pt), "model.pt")
    del pt
    assert weights_bytes(from_pt) == original
    if ROUND_TRIPS[cfg]:
        assert_golden(from_pt, ROUND_TRIPS[cfg])


@pytest.mark.parametrize("version", [(0, 1, 0, 32), (0, 2, 5, 2**40 + 7)])
def test_header_version_and_seen_survive(tmp_path, random_weights, version):
    """The header decides `seen`'s width: it travels with the checkpoint."""
    data = random_weights("yolov2-tiny-slim.cfg").read_bytes()
    src = tmp_path / "in.weights"
    major, minor, revision, seen = version
    wide = minor >= 2
    src.write_bytes(np.array([major, minor, revision], "<i4").tobytes()
                    + np.array([seen], "<u8" if wide else "<u4").tobytes() + data[20:])
    net = load_checkpoint(cfg_path("yolov2-tiny-slim.cfg"), src)
    for encode, load in ((pt_bytes, load_pt), (h5_bytes, load_h5)):
        back = load(None, io.BytesIO(encode(net)), "x")
        assert back.seen == seen
        assert weights_bytes(back) == src.read_bytes()


def test_pt_has_readable_names_and_the_cfg(random_weights):
    net = load_checkpoint(cfg_path("yolov2-slim.cfg"), random_weights("yolov2-slim.cfg"))
    checkpoint = torch.load(io.BytesIO(pt_bytes(net)), weights_only=True)
    assert checkpoint["format"] == "pydarknet" and checkpoint["version"] == 2 and len(checkpoint["sha256"]) == 64
    assert checkpoint["cfg"] == cfg_path("yolov2-slim.cfg").read_text()
    assert checkpoint["header"] == {"major": 0, "minor": 2, "revision": 0, "seen": 0}
    state = checkpoint["state_dict"]
    assert {"layers.0.conv.weight", "layers.0.bn.weight", "layers.0.bn.running_var", "layers.30.conv.bias"} <= set(state)
    floats = read_weights_file(random_weights("yolov2-slim.cfg"))[1]
    n = net.layers[0].filters
    assert np.array_equal(state["layers.0.bn.running_var"].numpy(), floats[3 * n : 4 * n])


def test_h5_layout_is_darknets(random_weights):
    net = load_checkpoint(cfg_path("yolov2-slim.cfg"), random_weights("yolov2-slim.cfg"))
    floats = read_weights_file(random_weights("yolov2-slim.cfg"))[1]
    with h5py.File(io.BytesIO(h5_bytes(net)), "r") as f:
        assert f.attrs["cfg"] == cfg_path("yolov2-slim.cfg").read_text()
        assert (f.attrs["major"], f.attrs["minor"], f.attrs["revision"], f.attrs["seen"]) == (0, 2, 0, 0)
        first = f["000_convolutional"]
        order = list(first.attrs["order"])
        assert order == ["biases", "scales", "rolling_mean", "rolling_variance", "weights"]
        stream = np.concatenate([first[name][()].ravel() for name in order])
        assert np.array_equal(stream, floats[: stream.size])
        assert "001_maxpool" not in f and "030_convolutional" in f
        assert list(f["030_convolutional"].attrs["order"]) == ["biases", "weights"]


def test_yolo9000_rebuilds_from_the_file_alone(tmp_path, random_weights, monkeypatch):
    """The tree and map files the cfg names travel inside the checkpoint."""
    net = load_checkpoint(cfg_path("yolo9000.cfg"), random_weights("yolo9000.cfg"))
    path = tmp_path / "yolo9000.pt"
    path.write_bytes(pt_bytes(net))
    monkeypatch.chdir(tmp_path)  # no data/9k.tree around
    rebuilt = load_checkpoint(None, path)
    assert rebuilt.layers[-1].tree.n == 9418 and rebuilt.layers[-1].map == net.layers[-1].map


def test_cfg_must_match_the_embedded_one(random_weights):
    net = load_checkpoint(cfg_path("yolov2-slim.cfg"), random_weights("yolov2-slim.cfg"))
    pt, h5 = pt_bytes(net), h5_bytes(net)
    with pytest.raises(WeightsError, match="made from yolov2-slim.cfg .*does not match .*yolov2-tiny-slim.cfg"):
        load_pt(cfg_path("yolov2-tiny-slim.cfg"), io.BytesIO(pt), "x.pt")
    with pytest.raises(WeightsError, match="layers.0.conv.weight has shape .*needs"):
        load_pt(cfg_path("yolov2-voc.cfg"), io.BytesIO(pt), "x.pt")
    with pytest.raises(WeightsError, match="000_convolutional/biases has shape"):
        load_h5(cfg_path("yolov2-voc.cfg"), io.BytesIO(h5), "x.h5")
    assert weights_bytes(load_pt(cfg_path("yolov2-slim.cfg"), io.BytesIO(pt), "x.pt")) == random_weights("yolov2-slim.cfg").read_bytes()


def truncated_cfg(tmp_path, cfg: str, layers: int):
    """The cfg's [net] and first `layers` sections (Darknet's truncated network)."""
    text = cfg_path(cfg).read_text()
    starts = [i for i, line in enumerate(text.splitlines()) if line.strip().startswith("[")]
    lines = text.splitlines()
    path = tmp_path / f"cut{layers}.cfg"
    path.write_text("\n".join(lines[: starts[layers + 1]]) + "\n")
    return path


def test_partial_is_darknets(tmp_path, random_weights):
    """First N layers, header 0.2.0, seen reset to 0 (load_network(..., clear=1))."""
    src = tmp_path / "in.weights"
    data = random_weights("yolov2-slim.cfg").read_bytes()
    src.write_bytes(np.array([0, 1, 0, 12800], "<i4").tobytes() + data[20:])  # 0.1.0: 4-byte seen
    out = tmp_path / "slim.conv.23"
    partial(cfg_path("yolov2-slim.cfg"), src, out, 23)
    header, floats = read_weights_file(out)
    assert (header.major, header.minor, header.revision, header.seen, header.seen_bytes) == (0, 2, 0, 0, 8)
    assert np.array_equal(floats, read_weights_file(src)[1][: floats.size])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cut = Darknet(truncated_cfg(tmp_path, "yolov2-slim.cfg", 23))
        full = Darknet(cfg_path("yolov2-slim.cfg"))
    cut.load_weights(out)  # exactly the floats of the 23 layers
    assert cut.seen == 0
    fresh = {k: v.clone() for k, v in full.state_dict().items()}
    source = load_checkpoint(cfg_path("yolov2-slim.cfg"), random_weights("yolov2-slim.cfg")).state_dict()
    full.load_weights(out, partial=True)
    for key, value in full.state_dict().items():
        expected = source[key] if int(key.split(".")[1]) < 23 else fresh[key]
        assert torch.equal(value, expected), key
    with pytest.raises(Exception, match="already exists"):
        partial(cfg_path("yolov2-slim.cfg"), src, out, 23)
