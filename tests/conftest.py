"""Shared fixtures: the golden files (copied from the C Darknet's outputs into
tests/golden) and the seeded random weights they were made with, rebuilt
once into pytest's cache directory and checked against the manifest's sha256."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from pydarknet import Darknet
from pydarknet.layers.base import Layer
from golden_weights import build_random_weights

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
CFG = ROOT / "cfg"
DEMO_CFG = CFG / "yolov2-tiny-shapes.cfg"  # the shipped demo model (weights/README.md) and its image
DEMO_WEIGHTS = ROOT / "weights" / "yolov2-tiny-shapes.weights"
DEMO_IMAGE = ROOT / "data" / "shapes-demo.jpg"
MANIFEST = json.loads((GOLDEN / "manifest.json").read_text())
GOLDEN_AB = ROOT / "tests" / "golden-alexeyab"  # AlexeyAB's Darknet (YOLOv4 / v7 family)
MANIFEST_AB = json.loads((GOLDEN_AB / "manifest.json").read_text())

# One process on two torch threads, or (pytest-xdist's workers, pyproject.toml's default) one worker per core
# on one thread each, its `pydarknet` subprocesses too: oversubscribed cores run torch far slower.
THREADS = 1 if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1 else 2
torch.set_num_threads(THREADS)


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run the real `pydarknet` console script (this checkout's code) in a subprocess (`stdin`: the text it reads)."""
    script = Path(sys.executable).parent / "pydarknet"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "pydarknet"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS=str(THREADS))
    return subprocess.run([*command, *map(str, args)], cwd=cwd or ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                          input=stdin)


def set_options(text: str, **options: object) -> str:
    """A cfg's text with each `key=value` line replaced (each key must occur)."""
    for key, value in options.items():
        text, n = re.subn(rf"^{key}\s*=.*$", f"{key}={value}", text, count=1, flags=re.M)
        assert n == 1, key
    return text


@pytest.fixture
def one_thread():
    """Two oversubscribed cores train a tiny net ~40x faster on one torch thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def cfg_path(name: str) -> Path:
    """A shipped cfg, else a golden-only one (tests/golden/cfg)."""
    return CFG / name if (CFG / name).exists() else GOLDEN / "cfg" / name


def golden_close(ours: np.ndarray, theirs: np.ndarray) -> tuple[bool, str]:
    """The golden README's tolerance: max abs <= 1e-3 * max(1, max|b|) and relative L2 <= 1e-4.

    NaN must stand where Darknet's output has NaN (see Region.cpu_tree_quirk).
    """
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    if ours.shape != theirs.shape:
        return False, f"shape {ours.shape} != {theirs.shape}"
    nan = np.isnan(theirs)
    if not np.array_equal(np.isnan(ours), nan):
        return False, f"NaN at {int(np.isnan(ours).sum())} places, Darknet at {int(nan.sum())}"
    a, b = ours[~nan], theirs[~nan]
    if not b.size:
        return True, "all NaN"
    err = float(np.abs(a - b).max())
    rel = float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
    ok = err <= 1e-3 * max(1.0, float(np.abs(b).max())) and rel <= 1e-4
    return ok, f"max abs {err:.2e}, rel L2 {rel:.2e}"


def _weights_from(request: pytest.FixtureRequest, manifest: dict):  # type: ignore[no-untyped-def]
    """cfg name -> path of a golden set's random weights (seed and sha256 from its manifest), built once into the cache."""
    cache = Path(request.config.cache.mkdir("golden_random_weights"))

    @functools.cache
    def get(cfg: str) -> Path:
        entry = manifest["random_weights"][cfg]
        harsh = "--harsh-bn" in entry.get("args", [])
        out = cache / f"{cfg}.s{entry['seed']}{'.harsh' if harsh else ''}.weights"
        return build_random_weights(cfg_path(cfg), entry["seed"], out, entry["sha256"], harsh)

    return get


def _nets_from(weights):  # type: ignore[no-untyped-def]
    """(cfg, width, height, dialect="auto") -> a Darknet with `weights(cfg)`, in eval mode (one large network kept at a time)."""
    nets: dict[tuple[str, int, int, str], Darknet] = {}

    def get(cfg: str, width: int, height: int, dialect: str = "auto") -> Darknet:
        key = (cfg, width, height, dialect)
        if key not in nets:
            nets.clear()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                net = Darknet(cfg_path(cfg), width, height, dialect=dialect)
            net.load_weights(weights(cfg))
            net.set_cpu_tree_quirk()  # the forward goldens were made by Darknet's CPU build (Region.cpu_tree_quirk)
            nets[key] = net.eval()
        return nets[key]

    return get


@pytest.fixture(scope="session")
def random_weights(request: pytest.FixtureRequest):
    """cfg name -> path of its golden random weights (tests/golden/manifest.json)."""
    return _weights_from(request, MANIFEST)


@pytest.fixture(scope="session")
def golden_net(random_weights):
    """(cfg, width, height) -> a Darknet with the golden random weights, in eval mode."""
    return _nets_from(random_weights)


@pytest.fixture(scope="session")
def ab_random_weights(request: pytest.FixtureRequest):
    """cfg name -> path of the AlexeyAB goldens' random weights (tests/golden-alexeyab/manifest.json)."""
    return _weights_from(request, MANIFEST_AB)


@pytest.fixture(scope="session")
def ab_golden_net(ab_random_weights):
    """(cfg, width, height, dialect="auto") -> a Darknet with the AlexeyAB goldens' random weights, in eval mode."""
    return _nets_from(ab_random_weights)


def golden_layer(folder: Path, cfg: str) -> tuple[Layer, Tensor, Tensor]:
    """A layer-alone golden case: the one layer of `folder/cfg` (in training mode; files its cfg
    names, tree= and map=, are read from `folder`), its input.npy as (N, C, H, W) and its truth.npy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(folder / cfg)
    assert net.training and len(net.layers) == 1
    raw = torch.from_numpy(np.load(folder / "input.npy")).view(-1, *net.input_shape)
    return net.layers[0], raw, torch.from_numpy(np.load(folder / "truth.npy"))


def assert_matches_darknet(folder: Path, output: Tensor, delta: Tensor, cost: Tensor, expected_cost: float) -> None:
    """l.output, l.delta and *l.cost against the case's output.npy, delta.npy, cost.npy (README
    tolerances), and the cost against the manifest's within 1e-4 relative."""
    for name, ours in (("output", output), ("delta", delta), ("cost", cost)):
        theirs = np.load(folder / f"{name}.npy")
        ok, detail = golden_close(ours.reshape(theirs.shape).numpy(), theirs)
        assert ok, f"{folder.name} {name}: {detail}"
    assert float(cost) == pytest.approx(expected_cost, rel=1e-4)
