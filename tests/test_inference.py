"""The fast inference mode (pydarknet.infer.engine) against Darknet's goldens, and the prefetching loader."""

from __future__ import annotations

import threading

import pytest
import torch

from conftest import GOLDEN
from helpers import assert_heads_golden, assert_same_lines, case, case_input, golden_lines, our_lines
from pydarknet.infer.detect import detect_batch
from pydarknet.image import load_image
import pydarknet.infer.engine
import pydarknet.infer.winograd
from pydarknet.infer.engine import InferenceModel, InferenceWarning, image_by_image_prefix
from pydarknet.infer.prefetch import batched, prefetch

# region (plain and YOLO9000's tree with the CPU quirk), yolo heads with upsample/route, reorg
EAGER = ["yolov2-slim_dog_160", "yolov2-slim_eagle_224x160", "yolov2-tiny-slim_scream_160", "yolo9000_dog_224",
         "yolov3-tiny_dog_416", "yolov2-tiny_dog_416"]


@pytest.mark.parametrize("name", EAGER)
def test_fused_channels_last_heads_match_darknet(name, golden_net):
    c = case(name)
    net = golden_net(c["cfg"], c["width"], c["height"])
    model = InferenceModel(net)
    x = torch.from_numpy(case_input(c)).reshape(1, *net.input_shape)
    assert_heads_golden(name, net, model(x))
    assert_heads_golden(name, net, model(torch.cat([torch.zeros_like(x), x])), item=1)
    assert net.layers[0].bn is None or net.layers[0].bn.weight.requires_grad  # the network is untouched


def test_in_place_folds_the_network_itself(golden_net):
    """The CLI's model: no copy of the weights; the folded network still computes Darknet's heads."""
    c = case("yolov2-tiny-slim_scream_160")
    net = golden_net(c["cfg"], c["width"], c["height"])
    model = InferenceModel(net, in_place=True)
    assert model.module.layers is net.layers
    assert all(layer.bn is None for layer in net.layers if hasattr(layer, "bn"))
    x = torch.from_numpy(case_input(c)).reshape(1, *net.input_shape)
    assert_heads_golden(c["name"], net, model(x))
    with torch.no_grad():
        assert_heads_golden(c["name"], net, net(x))


def test_contiguous_layout_also_matches(golden_net):
    c = case("yolov2-slim_dog_160")
    net = golden_net(c["cfg"], c["width"], c["height"])
    x = torch.from_numpy(case_input(c)).reshape(1, *net.input_shape)
    assert_heads_golden(c["name"], net, InferenceModel(net, channels_last=False)(x))


@pytest.mark.parametrize("name", ["yolov2-slim_eagle_224x160", "yolo9000_dog_224"])
def test_detections_through_the_model_match_darknet(name, golden_net):
    c = case(name)
    net = golden_net(c["cfg"], c["width"], c["height"])
    image = load_image(GOLDEN / "images" / c["image"])
    theirs, _ = golden_lines(c)
    ours = our_lines(detect_batch(net, [image], c["thresh"], c["hier_thresh"], c["nms"], model=InferenceModel(net))[0])
    assert_same_lines(ours, theirs, c["thresh"])
    assert [line[0] for line in ours] == [line[0] for line in theirs]


def test_input_of_the_wrong_size_is_one_error(golden_net):
    net = golden_net("yolov2-tiny-slim.cfg", 160, 160)
    with pytest.raises(Exception, match="does not fit the network"):
        InferenceModel(net)(torch.zeros(1, 3, 96, 96))


def test_compile_failure_falls_back_to_eager(golden_net, monkeypatch):
    def broken(module, **options):
        def run(x):
            raise RuntimeError("no C++ compiler\nmore lines")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    c = case("yolov2-tiny-slim_scream_160")
    net = golden_net(c["cfg"], c["width"], c["height"])
    model = InferenceModel(net, compile=True)
    x = torch.from_numpy(case_input(c)).reshape(1, *net.input_shape)
    with pytest.warns(InferenceWarning, match="torch.compile failed .RuntimeError: no C\\+\\+ compiler.; running eagerly"):
        heads = model(x)
    assert not model.compiled
    assert_heads_golden(c["name"], net, heads)


@pytest.mark.slow
def test_compiled_heads_match_darknet(golden_net, monkeypatch):
    """torch.compile with freezing (~30-60 s on 2 cores): golden heads; a smaller batch is padded, not recompiled.

    Every 3x3 layer by Winograd and every layer image by image, so that the compiled graph holds both.
    """
    monkeypatch.setattr(pydarknet.infer.winograd, "MIN_CHANNELS", 1)
    monkeypatch.setattr(pydarknet.infer.engine, "IMAGE_BY_IMAGE_BYTES", 0)
    torch._dynamo.reset()  # another test's compiled model would make this model's first compile a "recompile"
    c = case("yolov2-tiny-slim_scream_160")
    net = golden_net(c["cfg"], c["width"], c["height"])
    model = InferenceModel(net, compile=True, winograd=True)
    assert model.module.prefix == len(net.layers)
    assert any(type(layer.conv).__name__ == "WinogradConv2d" for layer in model.module.layers if hasattr(layer, "conv"))
    x = torch.from_numpy(case_input(c)).reshape(1, *net.input_shape)
    with torch._dynamo.config.patch(error_on_recompile=True):
        two = model(torch.cat([x, x.flip(3)]))
        one = model(x)
    assert model.compiled
    assert_heads_golden(c["name"], net, two)
    assert_heads_golden(c["name"], net, one)
    assert one[0].shape[0] == 1


def test_prefetch_keeps_order_and_runs_ahead():
    produced: list[int] = []
    ahead = threading.Event()

    def items():
        for i in range(10):
            produced.append(i)
            if i == 2:
                ahead.set()
            yield i

    stream = prefetch(items(), depth=2)
    assert next(stream) == 0
    assert ahead.wait(5)  # items 1 and 2 were made while the consumer held item 0
    assert list(stream) == list(range(1, 10))
    assert list(batched(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]


def test_prefetch_raises_at_the_failing_item_and_stops_early():
    def items():
        yield 1
        raise ValueError("bad image")

    stream = prefetch(items())
    assert next(stream) == 1
    with pytest.raises(ValueError, match="bad image"):
        next(stream)
    endless = prefetch(iter(int, 1))  # never ends on its own
    assert next(endless) == 0
    endless.close()


@pytest.mark.parametrize("cfg, size", [("yolov2-slim.cfg", 160), ("yolov3-tiny.cfg", 96)])
def test_image_by_image_prefix_gives_the_batched_numbers(cfg, size, golden_net, monkeypatch):
    """Every layer image by image (routes, reorg, upsample and heads cross the prefix): each image's heads as alone."""
    net = golden_net(cfg, size, size)
    batch = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(0))
    alone = [InferenceModel(net)(batch[k : k + 1]) for k in range(3)]
    monkeypatch.setattr(pydarknet.infer.engine, "IMAGE_BY_IMAGE_BYTES", 0)
    model = InferenceModel(net)
    assert model.module.prefix == len(net.layers)
    for k, heads in enumerate(alone):
        for ours, theirs in zip(model(batch), heads):
            assert ours.is_contiguous()
            torch.testing.assert_close(ours[k : k + 1], theirs, rtol=1e-5, atol=1e-5)


def test_image_by_image_prefix_covers_the_large_outputs(golden_net):
    net = golden_net("yolov2-tiny.cfg", 416, 416)
    assert image_by_image_prefix(net.layers) == 5  # up to 64x104x104 (2.8 MB); 128x52x52 (1.4 MB) is batched
