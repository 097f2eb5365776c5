"""Darknet .weights I/O: headers, layer order, sizes, cutoff, atomic saves."""

from __future__ import annotations

import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import cfg_path
from pydarknet import Darknet, WeightsError
from pydarknet.weights import WeightsHeader, read_weights_file


def net_for(cfg: str) -> Darknet:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Darknet(cfg_path(cfg))


def with_header(src_bytes: bytes, header: WeightsHeader) -> bytes:
    """The same floats behind another header version."""
    old = WeightsHeader(*np.frombuffer(src_bytes[:12], dtype="<i4").tolist())
    return header.to_bytes() + src_bytes[old.size :]


@pytest.mark.parametrize("cfg", ["yolov2-slim.cfg", "yolov2-tiny-slim.cfg", "yolov2-tiny.cfg"])
@pytest.mark.parametrize("version", [(0, 2, 0, 12800), (0, 1, 0, 32), (0, 2, 5, 2**40 + 7)])
def test_round_trip_is_byte_identical(tmp_path, random_weights, cfg, version):
    header = WeightsHeader(*version)
    src = tmp_path / "in.weights"
    src.write_bytes(with_header(random_weights(cfg).read_bytes(), header))
    net = net_for(cfg)
    net.load_weights(src)
    assert net.seen == version[3]
    out = tmp_path / "out.weights"
    net.save_weights(out)
    assert out.read_bytes() == src.read_bytes()
    assert read_weights_file(out)[0].seen_bytes == (8 if version[1] >= 2 else 4)


CONNECTED_CFG = """[net]
width=8
height=8
channels=3

[convolutional]
filters=4
size=3
stride=2
pad=1
activation=leaky

[connected]
output=10
activation=linear
"""


def test_connected_transpose_flag_round_trip(tmp_path):
    """Headers with major or minor > 1000 store connected weights transposed (a non-square
    [connected] layer, as yolov1-tiny's, so that the transpose shows)."""
    cfg = tmp_path / "connected.cfg"
    cfg.write_text(CONNECTED_CFG)
    net = Darknet(cfg)
    torch.manual_seed(0)
    for p in net.parameters():
        p.data.normal_()
    plain = tmp_path / "plain.weights"
    net.save_weights(plain)
    net.header = WeightsHeader(0, 1001, 0)
    flipped = tmp_path / "flipped.weights"
    net.save_weights(flipped)
    fresh = Darknet(cfg)
    fresh.load_weights(flipped)
    connected = next(layer for layer in fresh.layers if layer.kind == "connected")
    original = next(layer for layer in net.layers if layer.kind == "connected")
    assert torch.equal(connected.linear.weight, original.linear.weight)
    a, b = read_weights_file(plain)[1], read_weights_file(flipped)[1]
    assert a.size == b.size and not np.array_equal(a, b)
    fresh.save_weights(tmp_path / "again.weights")
    assert (tmp_path / "again.weights").read_bytes() == flipped.read_bytes()


def test_conv_order_biases_bn_then_weights(tmp_path, random_weights):
    net = net_for("yolov2-tiny-slim.cfg")
    net.load_weights(random_weights("yolov2-tiny-slim.cfg"))
    floats = read_weights_file(random_weights("yolov2-tiny-slim.cfg"))[1]
    conv = net.layers[0]
    n = conv.filters
    assert np.array_equal(conv.bn.bias.detach().numpy(), floats[:n])
    assert np.array_equal(conv.bn.weight.detach().numpy(), floats[n : 2 * n])
    assert np.array_equal(conv.bn.running_mean.numpy(), floats[2 * n : 3 * n])
    assert np.array_equal(conv.bn.running_var.numpy(), floats[3 * n : 4 * n])
    assert np.array_equal(conv.conv.weight.detach().numpy().ravel(), floats[4 * n : 4 * n + conv.conv.weight.numel()])


def test_too_short_and_too_long_say_how_many_floats(tmp_path, random_weights):
    data = random_weights("yolov2-tiny-slim.cfg").read_bytes()
    short, long = tmp_path / "short.weights", tmp_path / "long.weights"
    short.write_bytes(data[:-8])
    long.write_bytes(data + b"\0" * 8)
    need = (len(data) - 20) // 4
    with pytest.raises(WeightsError, match=rf"too short .*expected {need} floats, found {need - 2}"):
        net_for("yolov2-tiny-slim.cfg").load_weights(short)
    with pytest.raises(WeightsError, match=rf"too long .*expected {need} floats, found {need + 2}"):
        net_for("yolov2-tiny-slim.cfg").load_weights(long)
    with pytest.raises(WeightsError, match="too short for .*yolov2-slim.cfg"):
        net_for("yolov2-slim.cfg").load_weights(random_weights("yolov2-tiny-slim.cfg"))


def test_not_a_weights_file(tmp_path):
    bad = tmp_path / "bad.weights"
    bad.write_bytes(b"hello")
    with pytest.raises(WeightsError, match="too short for a Darknet weights header"):
        net_for("yolov2-tiny-slim.cfg").load_weights(bad)
    bad.write_bytes(b"<html>not weights at all</html>!")
    with pytest.raises(WeightsError, match="not a Darknet weights file|too short"):
        net_for("yolov2-tiny-slim.cfg").load_weights(bad)
    with pytest.raises(WeightsError, match="cannot read"):
        net_for("yolov2-tiny-slim.cfg").load_weights(tmp_path / "missing.weights")


def test_cutoff_loads_and_saves_the_first_layers(tmp_path, random_weights):
    full = net_for("yolov2-slim.cfg")
    full.load_weights(random_weights("yolov2-slim.cfg"))
    part = tmp_path / "slim.conv.23"
    full.save_weights(part, cutoff=23)
    fresh = net_for("yolov2-slim.cfg")
    before = fresh.layers[30].conv.weight.detach().clone()
    with pytest.raises(WeightsError, match="too short"):
        fresh.load_weights(part)
    assert fresh.load_weights(part, partial=True) == 18  # the convs among layers 0..22
    assert torch.equal(fresh.layers[22].conv.weight, full.layers[22].conv.weight)
    assert torch.equal(fresh.layers[30].conv.weight, before)
    cut = net_for("yolov2-slim.cfg")
    cut.load_weights(random_weights("yolov2-slim.cfg"), cutoff=23)
    assert torch.equal(cut.layers[22].conv.weight, full.layers[22].conv.weight)


def test_partial_file_must_end_on_a_layer_boundary(tmp_path, random_weights):
    data = random_weights("yolov2-slim.cfg").read_bytes()
    cut = tmp_path / "cut.weights"
    cut.write_bytes(data[: len(data) // 2 // 4 * 4])
    with pytest.raises(WeightsError, match="too short"):
        net_for("yolov2-slim.cfg").load_weights(cut, partial=True)


def test_save_is_atomic(tmp_path, random_weights, monkeypatch):
    net = net_for("yolov2-tiny-slim.cfg")
    net.load_weights(random_weights("yolov2-tiny-slim.cfg"))
    target = tmp_path / "model.weights"
    target.write_bytes(b"previous")
    import pydarknet.weights as w

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(w.os, "fsync", fail)
    with pytest.raises(WeightsError, match="No space left"):
        net.save_weights(target)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["model.weights"]


def read_counters() -> tuple[int, int]:
    """(bytes, read calls) this thread has read so far: Linux's /proc/thread-self/io rchar and syscr."""
    fields = dict(line.split(": ") for line in Path("/proc/thread-self/io").read_text().splitlines())
    return int(fields["rchar"]), int(fields["syscr"])


@pytest.mark.skipif(not Path("/proc/thread-self/io").exists(), reason="counts reads with Linux's /proc/thread-self/io")
def test_load_reads_the_file_once_into_the_network(random_weights):
    """yolov2's 204 MB file is read once, one read per tensor (it has 112) straight into the network's
    tensors, so no copy of the file is ever held: deterministic stand-ins for a wall-clock bound and the peak
    RSS of `pydarknet detect` (tools/bench.py --only weights, startup).  Measured: the file's size plus under
    100 bytes in 118 calls; numpy's peak a quarter of the largest tensor (np.isfinite's one byte per float)."""
    path = random_weights("yolov2.cfg")
    size = path.stat().st_size
    net = net_for("yolov2.cfg")
    tensors = [t for layer in net.layers for t in layer.darknet_tensors(loading=True)]
    largest = max(t.numel() for t in tensors) * 4
    start_bytes, start_calls = read_counters()
    tracemalloc.start()
    try:
        net.load_weights(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    end_bytes, end_calls = read_counters()
    assert size <= end_bytes - start_bytes < size + 2**16
    assert end_calls - start_calls <= len(tensors) + 8
    assert peak < 0.5 * largest  # a copy of a tensor would be its size, of the file 4x that
