"""train_step's bookkeeping (subdivisions, seen) and the [yolo] deltas on a
hand-made case, checked against forward_yolo_layer's formulas."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import pytest
import torch

from conftest import cfg_path
from pydarknet import Darknet
from pydarknet.errors import DarknetError
from pydarknet.train.state import TrainingState
from pydarknet.train.step import train_network


def network(cfg: str | Path, size: int) -> Darknet:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(cfg if isinstance(cfg, Path) else cfg_path(cfg), size, size)
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
    state = TrainingState(net)
    train_network(net, state, x[:1], truth_for(1))
    assert net.seen == 1 and torch.equal(weight, before)  # Darknet: (seen/batch) % subdivisions != 0
    train_network(net, state, x[1:], truth_for(1))
    assert net.seen == 2 and not torch.equal(weight, before)
    with pytest.raises(DarknetError):
        train_network(net, state, x, truth_for(1))


def test_stopbackward_ends_the_backward_at_that_layer(tmp_path: Path) -> None:
    """backward_network breaks at the last layer with stopbackward=1: it and every layer before it get no
    gradient, but update_network still decays their weights; the layers after it train as without the option."""
    stop = 4  # the third [convolutional]
    text = cfg_path("yolov2-tiny-slim.cfg").read_text()
    starts = [m.end() for m in re.finditer(r"^\[\w+\]\n", text, flags=re.M)][1:]  # after each layer's header
    frozen_cfg = tmp_path / "frozen.cfg"
    frozen_cfg.write_text(text[: starts[stop]] + "stopbackward=1\n" + text[starts[stop] :])
    nets = []
    for cfg in ("yolov2-tiny-slim.cfg", frozen_cfg):
        torch.manual_seed(0)
        net = network(cfg, 64)
        net.options.batch, net.options.subdivisions, net.options.burn_in = 2, 1, 0
        nets.append(net)
    plain, frozen = nets
    assert frozen.backward_stop == stop + 1 and plain.backward_stop == 0
    before = {name: p.detach().clone() for name, p in frozen.named_parameters()}
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    for net in nets:
        train_network(net, TrainingState(net), x, truth_for(2))
    shrink = 1 - frozen.options.learning_rate * frozen.options.decay  # w += lr/batch * (-decay * batch * w)
    for (name, p), q in zip(frozen.named_parameters(), plain.parameters()):
        index = int(name.split(".")[1])
        if index > stop:
            assert torch.equal(p, q), name
        elif name.endswith("conv.weight"):
            assert torch.allclose(p, before[name] * shrink, rtol=1e-6, atol=0) and not torch.allclose(q, p), name
        else:
            assert torch.equal(p, before[name]), name  # biases and batch-norm scales: no decay


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


def test_the_network_keeps_no_training_state() -> None:
    """The momentum buffers are the TrainingState's: training adds no attribute to the graph, and a
    state saved by `resume_entries` and loaded into a fresh one continues the same numbers."""
    net = network("yolov2-tiny-slim.cfg", 64)
    net.options.batch, net.options.subdivisions, net.options.burn_in = 2, 1, 0
    attributes = set(vars(net))
    state = TrainingState(net)
    train_network(net, state, torch.rand(2, 3, 64, 64), truth_for(2))
    assert set(vars(net)) == attributes
    resumed = TrainingState(net)
    resumed.load_resume_entries(state.resume_entries())
    assert all(torch.equal(a, b) for a, b in zip(state.sgd.state_dict().values(), resumed.sgd.state_dict().values()))
    assert any(u.any() for u in resumed.sgd.state_dict().values())
