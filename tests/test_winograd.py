"""Winograd F(4x4, 3x3) (pydarknet.infer.winograd): against float64 convolution and, in the inference mode, Darknet's goldens."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import assert_heads_golden, case, case_input
from pydarknet import Darknet
from pydarknet.infer import winograd
from pydarknet.infer.engine import InferenceModel
from pydarknet.infer.winograd import WinogradConv2d, suits


@pytest.mark.parametrize("n, c, k, h, w", [(1, 8, 16, 13, 13), (3, 5, 7, 9, 4), (2, 4, 3, 1, 1), (1, 6, 2, 16, 17)])
def test_matches_a_float64_convolution(n, c, k, h, w):
    torch.manual_seed(0)
    conv = nn.Conv2d(c, k, 3, padding=1)
    x = torch.randn(n, c, h, w)
    with torch.no_grad():
        expect = F.conv2d(x.double(), conv.weight.double(), conv.bias.double(), padding=1)
        for layout in (x, x.contiguous(memory_format=torch.channels_last), x.transpose(2, 3).contiguous().transpose(2, 3)):
            got = WinogradConv2d(conv)(layout).double()
            assert got.shape == expect.shape
            assert ((got - expect).norm() / expect.norm()).item() < 5e-6  # float32 noise (a direct conv: ~5e-7)
            assert (got - expect).abs().max().item() < 2e-5 * expect.abs().max().item()


def test_only_3x3_stride_1_same_convolutions_with_many_channels():
    assert suits(nn.Conv2d(128, 256, 3, padding=1))
    assert not suits(nn.Conv2d(64, 512, 3, padding=1))  # too few channels to pay
    for other in (nn.Conv2d(512, 512, 1), nn.Conv2d(512, 512, 3, stride=2, padding=1), nn.Conv2d(512, 512, 3),
                  nn.Conv2d(512, 512, 3, padding=1, groups=2), nn.Conv2d(512, 512, 3, padding=2, dilation=2)):
        assert not suits(other)
    with pytest.raises(ValueError, match="3x3, stride-1"):
        WinogradConv2d(nn.Conv2d(4, 4, 3, stride=2, padding=1))


def winograd_layers(model: InferenceModel) -> int:
    return sum(isinstance(layer.conv, WinogradConv2d) for layer in model.module.layers if hasattr(layer, "conv"))


@pytest.mark.parametrize("name", ["yolov2-slim_dog_160", "yolov2-slim_eagle_224x160", "yolov2-tiny-slim_scream_160"])
def test_every_3x3_layer_by_winograd_matches_darknet(name, golden_net, monkeypatch):
    """The slim cfgs' 3x3 layers (16-128 channels) all through Winograd: the heads stay within the golden tolerance."""
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 1)
    c = case(name)
    net = golden_net(c["cfg"], c["width"], c["height"])
    model = InferenceModel(net, winograd=True)
    assert winograd_layers(model) == sum(1 for layer in net.layers if hasattr(layer, "conv") and layer.size == 3 and layer.stride == 1)
    x = torch.from_numpy(case_input(c)).reshape(1, *net.input_shape)
    assert_heads_golden(name, net, model(x))


def test_yolov2_tiny_heavy_layers_match_darknet(golden_net):
    """yolov2-tiny at 416 with `suits`' rule: 128->256 at 26x26 and the 13x13 layers by Winograd (off by default)."""
    c = case("yolov2-tiny_dog_416")
    net = golden_net(c["cfg"], c["width"], c["height"])
    model = InferenceModel(net, winograd=True)
    assert winograd_layers(model) == 4
    assert winograd_layers(InferenceModel(net)) == 0
    x = torch.from_numpy(case_input(c)).reshape(1, *net.input_shape)
    assert_heads_golden(c["name"], net, model(x))


def test_off_the_cpu_neither_winograd_nor_image_by_image():
    """On another device (meta stands in for CUDA here) the library's own algorithms run the batch whole."""
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(Path(__file__).parent.parent / "cfg" / "yolov2-tiny.cfg", 416, 416)
    model = InferenceModel(net, winograd=True)
    assert winograd_layers(model) == 0
    assert model.module.prefix == 0
