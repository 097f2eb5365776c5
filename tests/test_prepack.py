"""Prepacked oneDNN convolutions (pydarknet.infer.prepack): the same numbers as the convolution and activation
they replace, for any batch, size and layout; used by InferenceModel on the CPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers import assert_heads_golden, case, case_input
from pydarknet.infer import prepack
from pydarknet.infer.engine import InferenceModel
from pydarknet.layers.activations import ACTIVATIONS

pytestmark = pytest.mark.skipif(not prepack.available(), reason="this PyTorch has no oneDNN fused convolution")


@pytest.mark.parametrize("c, k, size, stride, groups, dilation, bias",
                         [(16, 32, 3, 1, 1, 1, True), (32, 64, 3, 2, 1, 1, True), (64, 64, 3, 1, 64, 1, False),
                          (16, 8, 1, 1, 1, 1, True), (8, 8, 3, 1, 2, 2, True)])
@pytest.mark.parametrize("activation", sorted(prepack.FUSED_ACTIVATIONS))
def test_equals_the_convolution_and_its_activation(c, k, size, stride, groups, dilation, bias, activation):
    torch.manual_seed(0)
    conv = nn.Conv2d(c, k, size, stride, (size // 2) * dilation, dilation, groups, bias).eval()
    packed = prepack.PrepackedConv(conv, activation, [1, c, 20, 20])
    for shape in [(1, c, 20, 20), (3, c, 17, 23)]:  # the size it was packed for, and another
        for layout in (torch.contiguous_format, torch.channels_last):
            x = torch.randn(*shape).contiguous(memory_format=layout)
            with torch.inference_mode():
                torch.testing.assert_close(packed(x), ACTIVATIONS[activation](conv(x)), rtol=0, atol=1e-5)


def test_only_exact_activations_and_float32_convolutions():
    conv = nn.Conv2d(4, 4, 3, padding=1)
    assert prepack.suits(conv, "leaky") and not prepack.suits(conv, "logistic") and not prepack.suits(conv, "mish")
    assert not prepack.suits(conv.double(), "leaky")
    assert not prepack.suits(nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), "leaky")


def test_the_inference_model_prepacks_and_keeps_darknets_heads(golden_net):
    c = case("yolov2-tiny_dog_416")
    net = golden_net(c["cfg"], c["width"], c["height"])
    model = InferenceModel(net)
    packed = [layer for layer in model.module.layers if isinstance(getattr(layer, "conv", None), prepack.PrepackedConv)]
    assert len(packed) == sum(1 for layer in net.layers if hasattr(layer, "conv"))  # leaky and linear: all of them
    assert all(layer.activation.name == "linear" for layer in packed)  # moved into the convolution
    assert not any(isinstance(getattr(layer, "conv", None), prepack.PrepackedConv)
                   for layer in InferenceModel(net, prepack=False).module.layers)
    x = torch.from_numpy(case_input(c)).reshape(1, *net.input_shape)
    assert_heads_golden(c["name"], net, model(x))
