"""train_step's bookkeeping (subdivisions, seen) and the [yolo] deltas on a
hand-made case, checked against forward_yolo_layer's formulas."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from conftest import cfg_path
from pydarknet import Darknet
from pydarknet.errors import DarknetError


def network(cfg: str, size: int) -> Darknet:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(cfg_path(cfg), size, size)
    for module in net.modules():
        if hasattr(module, "running_var"):
            module.running_var.fill_(1.0)
    return net


def truth_for(n: int) -> torch.Tensor:
    truth = torch.zeros(n, 30, 5)
    truth[:, 0] = torch.tensor([0.3, 0.4, 0.2, 0.3, 1.0])
    return truth


def test_update_waits_for_subdivisions_and_seen_counts_images() -> None:
    net = network("yolov2-tiny-slim.cfg", 64)
    net.options.batch, net.options.subdivisions, net.options.burn_in = 2, 2, 0
    x = torch.rand(2, 3, 64, 64)
    weight = net.layers[0].conv.weight
    before = weight.detach().clone()
    net.train_step(x[:1], truth_for(1))
    assert net.seen == 1 and torch.equal(weight, before)  # Darknet: (seen/batch) % subdivisions != 0
    net.train_step(x[1:], truth_for(1))
    assert net.seen == 2 and not torch.equal(weight, before)
    with pytest.raises(DarknetError):
        net.train_step(x, truth_for(1))


def test_yolo_delta_follows_forward_yolo_layer() -> None:
    layer = network("yolov3-tiny.cfg", 416).layers[16]  # mask 3,4,5 of anchors in pixels, 13x13
    torch.manual_seed(0)
    raw = torch.randn(1, 3 * 85, 13, 13)
    truth = torch.zeros(1, 90, 5)
    truth[0, 0] = torch.tensor([0.5, 0.5, 0.3, 0.35, 7.0])  # best of all 6 anchors: 135x169 (index 4)
    output, delta, cost = layer.delta(raw, truth, (416, 416))
    o, d = output.view(3, 85, 13, 13), delta.view(3, 85, 13, 13)
    n, i, j = 1, 6, 6  # mask index of anchor 4, cell of (.5, .5)
    scale = 2 - 0.3 * 0.35
    expected_box = [scale * (0.5 * 13 - 6 - o[n, 0, j, i]), scale * (0.5 * 13 - 6 - o[n, 1, j, i]),
                    scale * (math.log(0.3 * 416 / 135) - o[n, 2, j, i]), scale * (math.log(0.35 * 416 / 169) - o[n, 3, j, i])]
    assert torch.allclose(d[n, :4, j, i], torch.tensor(expected_box), atol=1e-6)
    assert torch.isclose(d[n, 4, j, i], 1 - o[n, 4, j, i])
    onehot = torch.zeros(80)
    onehot[7] = 1
    assert torch.allclose(d[n, 5:, j, i], onehot - o[n, 5:, j, i])
    others = torch.ones(3, 13, 13, dtype=torch.bool)
    others[n, j, i] = False
    obj = d[:, 4][others]
    assert torch.all((obj == 0) | torch.isclose(obj, -o[:, 4][others]))
    assert float(cost) == pytest.approx(float(delta.square().sum()))
    truth[0, 0, 2:4] = torch.tensor([0.02, 0.03])  # best anchor is 0, not in this layer's mask
    _, delta_small, _ = layer.delta(raw, truth, (416, 416))
    assert not delta_small.view(3, 85, 13, 13)[:, :4].any() and not delta_small.view(3, 85, 13, 13)[:, 5:].any()
