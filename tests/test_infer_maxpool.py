"""The inference model's 2x2 max pool (pydarknet.infer.maxpool): F.max_pool2d's values, bit for bit, on the
layers it suits; the others keep Darknet's padded pooling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers import assert_heads_golden, case, case_input
from pydarknet.infer import maxpool
from pydarknet.infer.engine import InferenceModel
from pydarknet.network import Darknet


@pytest.mark.parametrize("shape", [(1, 16, 8, 12), (3, 5, 6, 4), (2, 64, 2, 2)])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_equals_max_pool2d(shape, layout):
    torch.manual_seed(0)
    x = torch.randn(*shape).contiguous(memory_format=layout)
    x[0, 0, 0, 0] = float("nan")  # propagated, as max_pool2d does
    x[-1, -1, 1, 1] = float("-inf")
    ours, theirs = maxpool.max_pool_2x2(x), F.max_pool2d(x, 2, 2)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0, equal_nan=True)
    if layout == torch.channels_last:
        assert ours.is_contiguous(memory_format=torch.channels_last)


def _pools(tmp_path, sections: str, side: int = 8) -> list:
    cfg = tmp_path / "pool.cfg"
    cfg.write_text(f"[net]\nwidth={side}\nheight={side}\nchannels=3\n" + sections)
    return list(Darknet(cfg).layers)


def test_suits_only_unpadded_2x2_stride_2(tmp_path):
    plain, stride1, size3 = _pools(tmp_path, "[maxpool]\nsize=2\nstride=2\n[maxpool]\nsize=2\nstride=1\n"
                                             "[maxpool]\nsize=3\nstride=2\n")
    assert maxpool.suits(plain) and not maxpool.suits(stride1) and not maxpool.suits(size3)
    (odd,) = _pools(tmp_path, "[maxpool]\nsize=2\nstride=2\n", side=7)  # Darknet reaches past the edge: padded
    assert not maxpool.suits(odd)
    (depth,) = _pools(tmp_path, "[maxpool]\nmaxpool_depth=1\nout_channels=1\nsize=2\nstride=2\n")
    assert not maxpool.suits(depth)


def test_the_inference_model_pools_so_and_keeps_darknets_heads(golden_net):
    c = case("yolov2-tiny_dog_416")
    net = golden_net(c["cfg"], c["width"], c["height"])
    model = InferenceModel(net)
    pools = [layer for layer in model.module.layers if layer.kind == "maxpool"]
    assert [layer._pool is maxpool.max_pool_2x2 for layer in pools] == [True] * 5 + [False]  # the last: size=2 stride=1
    assert not any(layer._pool is maxpool.max_pool_2x2 for layer in InferenceModel(net, compile=True).module.layers
                   if layer.kind == "maxpool")
    x = torch.from_numpy(case_input(c)).reshape(1, *net.input_shape)
    assert_heads_golden(c["name"], net, model(x))
