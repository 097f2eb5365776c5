"""Every shipped cfg (cfg/*.cfg), one test per cfg and step, so that a failure names the cfg (issue #21):

1. built on the meta device at its own size: no CfgError, one layer per section, and only the warnings
   a shipped cfg may carry (SHIPPED_CFG_WARNINGS);
2. built with real tensors at a small size (SMALL, or the cfg's own when smaller) from Darknet's seeded
   random init, its batch-norm statistics measured on random images (calibrate_batchnorm), and forwarded
   in eval mode: each head's output has the shape of the own-size build with its grid scaled to the small
   size, and is finite;
3. run through its Darknet verb in-process (`pydarknet.cli.main`) with that network's weights, written by
   `pydarknet.weights.save_weights`: a detector (last layer [region], [yolo], [Gaussian_yolo] or
   [detection]) through `detect --size --json` on data/shapes-demo.jpg, a classifier ([softmax] or
   [cost]) through `classifier predict --json`; exit status 0 and well-formed output.  Every shipped
   cfg runs its verb: there is no expected failure.

`classifier predict` has no size option, and `detect --size` cannot resize yolov1's [local] and
[connected] layers (built for the cfg's own input size): those cfgs are built and run as a copy in a
temporary folder whose [net] width and height are the small size, the rest of the text unchanged.

Steps 2 and 3 share one network per cfg (a module-scoped fixture: one network alive at a time, its
weights written once).  The cost is the big cfgs' (yolov4, the yolov3s, yolov2s, yolo9000, yolov1):
random init, a 200-250 MB weights file, and the verb's own build, load and inference model.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import pytest
import torch

from conftest import CFG, ROOT, set_options
from pydarknet.cfg import read_cfg
from pydarknet.cli import main
from pydarknet.layers.base import Shape
from pydarknet.layers.batchnorm import BatchNorm
from pydarknet.layers.connected import Connected
from pydarknet.layers.local import Local
from pydarknet.network import Darknet
from pydarknet.weights import save_weights

SHIPPED = sorted(path.name for path in CFG.glob("*.cfg"))
SHIPPED_COUNT = 26  # a cfg added to or removed from cfg/ must be counted here: none is skipped unnoticed
# The smallest input that gives the stride-32 heads a 2x2 grid (every shipped cfg builds at 32, but a
# 1x1 grid would hide a row/column mix-up); the cost is in the parameters, whatever the size.
SMALL = 64
SEED = 21
DETECT_THRESH = 0.5  # given to detect (its default is the dialect's: .5 pjreddie's, .25 AlexeyAB's)
IMAGE = ROOT / "data" / "shapes-demo.jpg"
# The Darknet verb of a network, by the kind of its last layer.
VERBS = {"region": "detect", "yolo": "detect", "gaussian_yolo": "detect", "detection": "detect",
         "softmax": "classifier", "cost": "classifier"}
# What a shipped cfg may warn about: pjreddie's yolo9000/yolov3-openimages set batch and
# subdivisions twice (Darknet uses the first).  Anything else (an unused field, a training option
# pydarknet train refuses, a refusal) is a broken cfg.
SHIPPED_CFG_WARNINGS = re.compile(r"repeats an option; Darknet uses the first")


def test_every_shipped_cfg_is_counted() -> None:
    """The parametrized tests below run on every cfg in cfg/, and their number is written down here."""
    assert len(SHIPPED) == SHIPPED_COUNT, f"cfg/ holds {len(SHIPPED)} cfgs, not {SHIPPED_COUNT}: update SHIPPED_COUNT"


@functools.cache
def own_size_build(name: str) -> tuple[Darknet, tuple[str, ...]]:
    """The cfg built on the meta device at its own size, and the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught, torch.device("meta"):
        warnings.simplefilter("always")
        net = Darknet(CFG / name)
    return net, tuple(str(w.message) for w in caught)


@pytest.mark.parametrize("name", SHIPPED)
def test_builds_at_its_own_size(name: str) -> None:
    """No CfgError, one layer per section, a head whose verb is known, only the warnings above."""
    net, messages = own_size_build(name)
    assert len(net.layers) == len(read_cfg(CFG / name)) - 1
    assert all(net.layers[-1].out_shape)
    assert net.layers[-1].kind in VERBS, f"no Darknet verb known for a network ending in [{net.layers[-1].kind}]"
    assert not [m for m in messages if not SHIPPED_CFG_WARNINGS.search(m)]


@dataclass
class Small:
    """A shipped cfg's network at its small size, randomly initialised, in eval mode."""

    name: str
    cfg: Path  # the shipped cfg, or its copy at the small size (see the module doc)
    width: int
    height: int
    net: Darknet = field(repr=False)

    @property
    def verb(self) -> str:
        """"detect" or "classifier"."""
        return VERBS[self.net.layers[-1].kind]


def small_cfg(name: str, folder: Path) -> tuple[Path, int, int]:
    """(cfg to build and run, width, height): the shipped cfg, or its copy at the small size when the verb
    cannot resize it (module doc)."""
    own, _ = own_size_build(name)
    width, height = min(SMALL, own.width), min(SMALL, own.height)
    fixed_input = any(isinstance(layer, (Connected, Local)) for layer in own.layers)
    if VERBS[own.layers[-1].kind] == "detect" and not fixed_input:
        return CFG / name, width, height
    copy = folder / name
    copy.write_text(set_options((CFG / name).read_text(), width=width, height=height))
    return copy, width, height


def calibrate_batchnorm(net: Darknet, x: torch.Tensor) -> None:
    """Random batch-norm scales, and rolling statistics measured on the batch `x` layer by layer: every
    layer's outputs then have a trained network's scale.

    Darknet's initial rolling variance 0 blows the outputs up at inference, and fixed random statistics let
    yolov3's 23 shortcuts grow its box sizes past exp's float range; a 2x2 grid of one image holds too
    few values to measure, hence a batch.
    """

    def set_statistics(module: BatchNorm, args: tuple[torch.Tensor]) -> None:
        var, mean = torch.var_mean(args[0], dim=(0, 2, 3), correction=0)
        module.running_mean.copy_(mean)
        module.running_var.copy_(var.clamp_min(0.01))  # no blow-up on a nearly constant channel of a 2x2 grid

    norms = [module for module in net.modules() if isinstance(module, BatchNorm)]
    handles = [module.register_forward_pre_hook(set_statistics) for module in norms]
    try:
        with torch.no_grad():
            for module in norms:
                module.weight.uniform_(0.5, 1.5)
            net.eval()(x)
    finally:
        for handle in handles:
            handle.remove()


@pytest.fixture(scope="module", params=SHIPPED)
def small(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Small:
    """The cfg's network at its small size: Darknet's init and calibrate_batchnorm on random images, seeded."""
    name: str = request.param
    cfg, width, height = small_cfg(name, tmp_path_factory.mktemp("cfg"))
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # test_builds_at_its_own_size checks them
        torch.manual_seed(SEED)
        net = Darknet(cfg, width, height)
        calibrate_batchnorm(net, torch.rand(8, 3, height, width))
    return Small(name, cfg, width, height, net)


def scaled_grid(shape: Shape, own: tuple[int, int], small: tuple[int, int]) -> Shape:
    """A head's own-size (C, H, W) at the small size: its grid scales with the input; a 1x1 output (a
    classifier's, yolov1's [connected] into [detection]) stays 1x1."""
    c, h, w = shape
    if (h, w) == (1, 1):
        return shape
    (own_w, own_h), (small_w, small_h) = own, small
    assert h * small_h % own_h == 0 and w * small_w % own_w == 0, f"a {w}x{h} grid does not scale to {small_w}x{small_h}"
    return c, h * small_h // own_h, w * small_w // own_w


def test_forward_at_small_size(small: Small) -> None:
    """Each head's output has the shape its cfg implies at the small size, and is finite."""
    own, _ = own_size_build(small.name)
    x = torch.rand(1, 3, small.height, small.width, generator=torch.Generator().manual_seed(SEED))
    with torch.inference_mode():
        heads = small.net(x)
    assert small.net.output_indices == own.output_indices
    for index, head in zip(own.output_indices, heads):
        expected = scaled_grid(own.layers[index].out_shape, (own.width, own.height), (small.width, small.height))
        assert tuple(head.shape) == (1, *expected), f"layer {index} [{own.layers[index].kind}]"
        assert torch.isfinite(head).all(), f"layer {index} [{own.layers[index].kind}]: NaN or infinite outputs"


def run_verb(args: list[str | Path], capsys: pytest.CaptureFixture[str]) -> list[dict]:
    """`pydarknet ARGS` in-process: exit status 0, and its stdout's JSON lines."""
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert status == 0, err
    return [json.loads(line) for line in out.splitlines()]


def check_detect(small: Small, weights: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`detect --json`: one record for the image, of its size, with finite boxes of known classes above the
    threshold, inside the image in pixels, and the annotated image written."""
    (record,) = run_verb(["detect", small.cfg, weights, IMAGE, "--size", f"{small.width}x{small.height}", "--json",
                          "--thresh", str(DETECT_THRESH), "--out", out], capsys)
    height, width = cv2.imread(str(IMAGE)).shape[:2]
    assert (record["image"], record["width"], record["height"]) == (str(IMAGE), width, height)
    head = small.net.layers[small.net.output_indices[-1]]
    # a [detection] head's confidences and class scores are a linear layer's raw outputs (yolov1's softmax=0):
    # only training keeps them within 0 and 1
    probabilities = head.kind != "detection"
    for det in record["detections"]:
        left, top, right, bottom = det["pixels"]
        assert 0 <= det["class"] < head.classes and isinstance(det["name"], str), det
        assert det["prob"] >= DETECT_THRESH, det
        assert not probabilities or (det["prob"] <= 1 and 0 <= det["objectness"] <= 1), det
        assert all(math.isfinite(v) for v in det["box"]), det
        assert 0 <= left and 0 <= top and right < width and bottom < height, det
    assert cv2.imread(str(out / IMAGE.name)).shape == (height, width, 3)


def check_classifier(small: Small, weights: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`classifier predict --json --top 3`: the image's three best classes, distinct, in order of probability."""
    (record,) = run_verb(["classifier", "predict", small.cfg, weights, IMAGE, "--json", "--top", "3"], capsys)
    assert record["image"] == str(IMAGE)
    classes = math.prod(small.net.layers[small.net.output_indices[-1]].out_shape)
    top = record["top"]
    assert len({t["class"] for t in top}) == 3 and all(0 <= t["class"] < classes for t in top)
    probs = [t["prob"] for t in top]
    assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)


def test_darknet_verb(small: Small, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The cfg's Darknet verb on data/shapes-demo.jpg with the network's weights (save_weights) exits 0, output well formed."""
    weights = tmp_path / "random.weights"
    save_weights(small.net, weights)
    try:
        if small.verb == "detect":
            check_detect(small, weights, tmp_path / "out", capsys)
        else:
            check_classifier(small, weights, capsys)
    finally:
        weights.unlink()  # up to 250 MB, not to be kept with pytest's last temporary folders


# Darknet's own cfgs, shipped unchanged: the sha256 of `git show <commit>:cfg/NAME` in pjreddie/darknet f6afaab
# (the commit of tests/golden) and AlexeyAB/darknet 59596d7 (tests/golden-alexeyab).  An edit (an anchor, a
# filters=) that still builds is caught here; the cfgs written for pydarknet are checked by the tests above.
DARKNET_CFGS = {
    "darknet19.cfg": ("pjreddie", "7ac495cfb9f37c780ae5ea451dda4754ec147ae9820fa14b2fdd52f8e6426971"),
    "darknet19_448.cfg": ("pjreddie", "95cbcec678b08f087493bd4dd0257109020a732d554479cf4cb439b5932a7e56"),
    "tiny.cfg": ("pjreddie", "54732dd230c45c22b5a6fe392274d1cbd9e6147bf6640fe76559d5f4bc3c41bf"),
    "yolo9000.cfg": ("pjreddie", "cfcdfc59907887f22bafb738b4c05bffdd0ff5861918eb280a2d0dce88666096"),
    "yolov1-tiny.cfg": ("pjreddie", "2e057d9f1ab316b810c618159b1d2280aaa063f56902239a600fe54d13974018"),
    "yolov1.cfg": ("pjreddie", "8b4b951dd646478ea4214cb389d152793ca98e5c6e67266884908ba084b6211e"),
    "yolov2-tiny-voc.cfg": ("pjreddie", "1e012b455b845579096378b0ab4a82f1d9cb53b3b1282724a6de5d45537cb7e6"),
    "yolov2-tiny.cfg": ("pjreddie", "58e8f4390c8080a90a40f3b7ec5868ee9ae32519f3c08f57d104e494de04b34d"),
    "yolov2-voc.cfg": ("pjreddie", "ecf8b24ca01bdedc5c569300a6e99120ca5e251108eaa973b9cb19e28ed93352"),
    "yolov2.cfg": ("pjreddie", "9bb5bd2620624613483c8447bc713fe99e0a4af5f8e8d923b81520a162993574"),
    "yolov3-openimages.cfg": ("pjreddie", "ec8bb5ccff5ad0ca9972bfbb0b6cc289844ce0fa24a079cb52dc5c24f683cb1e"),
    "yolov3-spp.cfg": ("pjreddie", "7a4ec2d7427340fb12059f2b0ef76d6fcfcac132cc287cbbf0be5e3abaa856fd"),
    "yolov3-tiny.cfg": ("pjreddie", "84eb7a675ef87c906019ff5a6e0effe275d175adb75100dcb47f0727917dc2c7"),
    "yolov3-voc.cfg": ("pjreddie", "5bdcad796d031b8a00bb9aa6b65953717ba2fffdf3cb4d392a81bc17adda586f"),
    "yolov3.cfg": ("pjreddie", "22489ea38575dfa36c67a90048e8759576416a79d32dc11e15d2217777b9a953"),
    "yolov4-tiny.cfg": ("AlexeyAB", "f858e3724962eedf3ac44e3b6cb3f0c3d9ed067c306bb831f539c578b924c90e"),
    "yolov4.cfg": ("AlexeyAB", "a6d0f8e5c62cc8378384f75a8159b95fa2964d4162e33351b00ac82e0fc46a34"),
    "yolov7-tiny.cfg": ("AlexeyAB", "9fbd49151721a52d23112717c0d66552363c899befb8920a7c6857f4d9d8ba46"),
}


@pytest.mark.parametrize("name", DARKNET_CFGS)
def test_darknet_cfg_is_darknets_own(name: str) -> None:
    darknet, digest = DARKNET_CFGS[name]
    assert hashlib.sha256((CFG / name).read_bytes()).hexdigest() == digest, f"cfg/{name} differs from {darknet}'s"
