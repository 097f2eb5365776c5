"""Rebuild the goldens' random weights from their seed (../shared/tools/random_weights.py).

The formula, as that tool's docstring states it: header 0.2.0 with a 64-bit
seen of 0, then per [convolutional] in cfg order biases U(-.1, .1), with
batch norm scales U(.5, 1.5), rolling mean U(-.1, .1), rolling variance
U(.5, 2), then weights U(-a, a) with a = sqrt(6 / fan_in); per [connected] (yolov1) biases, weights
(outputs x inputs) with a = sqrt(6 / inputs), then the batch-norm triple if
any (parser.c load_connected_weights order); with `--harsh-bn` the batch-norm
triple is scales U(-1.5, 1.5), rolling mean U(-.1, .1), rolling variance
10 ** U(-6, 3) (float64, then float32), same stream positions; all drawn from one
numpy PCG64 stream as lo + (hi - lo) * random() in float64, stored as float32.
Shapes come from our own cfg parser, so the sha256 check also checks them.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from pathlib import Path

import numpy as np

from pydarknet import Darknet
from pydarknet.layers.connected import Connected
from pydarknet.layers.convolutional import Convolutional


def random_weights_bytes(cfg: str | Path, seed: int, harsh_bn: bool = False) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(cfg)
    rng = np.random.Generator(np.random.PCG64(seed))

    def uniform(lo: float, hi: float, count: int) -> bytes:
        return (lo + (hi - lo) * rng.random(count)).astype("<f4").tobytes()

    def batchnorm(n: int) -> list[bytes]:
        if harsh_bn:
            return [uniform(-1.5, 1.5, n), uniform(-0.1, 0.1, n), (10.0 ** (-6.0 + 9.0 * rng.random(n))).astype("<f4").tobytes()]
        return [uniform(0.5, 1.5, n), uniform(-0.1, 0.1, n), uniform(0.5, 2.0, n)]

    parts = [np.array([0, 2, 0], dtype="<i4").tobytes(), np.array([0], dtype="<u8").tobytes()]
    for layer in net.layers:
        if isinstance(layer, Connected):
            n, inputs = layer.outputs, layer.inputs
            parts.append(uniform(-0.1, 0.1, n))
            a = math.sqrt(6.0 / inputs)
            parts.append(uniform(-a, a, n * inputs))
            if layer.batch_normalize:
                parts += batchnorm(n)
            continue
        if not isinstance(layer, Convolutional):
            continue
        n = layer.filters
        parts.append(uniform(-0.1, 0.1, n))
        if layer.batch_normalize:
            parts += batchnorm(n)
        fan_in = layer.conv.in_channels // layer.groups * layer.size * layer.size
        a = math.sqrt(6.0 / fan_in)
        parts.append(uniform(-a, a, n * fan_in))
    return b"".join(parts)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


def build_random_weights(cfg: str | Path, seed: int, out: Path, sha256: str, harsh_bn: bool = False) -> Path:
    """The weights at `out`, checked against the manifest's sha256 every time (a cached file that
    differs, e.g. cut short or edited, is rebuilt from the seed and checked again)."""
    if out.exists() and _file_sha256(out) == sha256:
        return out
    data = random_weights_bytes(cfg, seed, harsh_bn)
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise AssertionError(f"random weights for {cfg} seed {seed}: sha256 {digest} != manifest {sha256}")
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.rename(out)
    return out
