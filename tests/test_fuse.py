"""Batch-norm folding: the fused copy gives Darknet's golden outputs; the original is untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import GOLDEN, MANIFEST, golden_close
from helpers import case_input
from pydarknet.convert import fuse_batchnorm
from pydarknet.layers.convolutional import Convolutional

CASES = [c for c in MANIFEST["forward"] if c["name"] in
         ("yolov2-slim_dog_160", "yolov2-slim_eagle_224x160", "yolov2-tiny-slim_scream_160", "yolov2-tiny_dog_416",
          "yolov2-tiny-slim-harshbn_dog_160")]  # rolling variances down to 1e-6: the folded eps shows


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_fused_network_gives_golden_outputs(case, golden_net):
    net = golden_net(case["cfg"], case["width"], case["height"])
    fused = fuse_batchnorm(net)
    x = torch.from_numpy(case_input(case)).reshape(1, *net.input_shape)
    with torch.no_grad():
        outputs = fused.forward_layers(x)
        plain = net.forward_layers(x)
    for f in sorted((GOLDEN / "forward" / case["name"]).glob("layer_*.npy")):
        index = int(f.stem.split("_")[1])
        ok, how = golden_close(outputs[index][0].numpy(), np.load(f))
        assert ok, f"{case['name']} layer {index}: {how}"
    last = net.output_indices[-1]
    assert torch.allclose(outputs[last], plain[last], atol=1e-4, rtol=1e-4)


def test_fused_layers_have_a_conv_bias_and_no_bn(golden_net):
    net = golden_net("yolov2-tiny-slim.cfg", 160, 160)
    fused = fuse_batchnorm(net)
    convs = [(a, b) for a, b in zip(net.layers, fused.layers) if isinstance(a, Convolutional)]
    for original, folded in convs:
        assert folded.bn is None and folded.conv.bias is not None and not folded.batch_normalize
        assert len(folded.darknet_tensors()) == 2
        assert original.bn is not None or not original.batch_normalize
    assert net.layers[0].bn is not None  # the original network keeps its batch norm
    scale, shift = net.layers[0].bn.folded()
    assert torch.equal(fused.layers[0].conv.bias, shift)
    assert not fused.training
