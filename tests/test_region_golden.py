"""[region] in training mode against the C Darknet: output, l.delta and cost
(tests/golden/region/, forward_region_layer with its seen, thresh, prior,
bias_match, rescore, softmax/logistic classes and scales)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from conftest import GOLDEN, MANIFEST, golden_close
from pydarknet import Darknet

CASES = MANIFEST["region"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_region_delta_matches_darknet(case: dict) -> None:
    folder = GOLDEN / "region" / case["name"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(folder / "region.cfg")
    layer = net.layers[0]
    raw = torch.from_numpy(np.load(folder / "input.npy")).view(-1, *net.input_shape)
    truth = torch.from_numpy(np.load(folder / "truth.npy"))
    output, delta, cost = layer.delta(raw, truth, case["seen"])
    for name, ours in (("output", output), ("delta", delta), ("cost", cost)):
        theirs = np.load(folder / f"{name}.npy")
        ok, detail = golden_close(ours.reshape(theirs.shape).numpy(), theirs)
        assert ok, f"{case['name']} {name}: {detail}"
    assert float(cost) == pytest.approx(case["cost"], rel=1e-4)


def test_region_input_delta_applies_logistic_gradient_on_x_y_obj() -> None:
    """backward_region_layer_gpu: x, y, obj deltas times (1 - y) * y; w, h, classes as they are."""
    folder = GOLDEN / "region" / CASES[0]["name"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = Darknet(folder / "region.cfg").layers[0]
    raw = torch.from_numpy(np.load(folder / "input.npy")).view(2, -1, *CASES[0]["grid"])
    output, delta, _ = layer.delta(raw, torch.from_numpy(np.load(folder / "truth.npy")), 0)
    passed = layer.input_delta(output, delta).view(2, layer.num, layer.entries, *raw.shape[-2:])
    o = output.view_as(passed)
    d = delta.view_as(passed)
    assert torch.equal(passed[:, :, 2:4], d[:, :, 2:4]) and torch.equal(passed[:, :, 5:], d[:, :, 5:])
    for k in (0, 1, 4):
        assert torch.allclose(passed[:, :, k], d[:, :, k] * o[:, :, k] * (1 - o[:, :, k]))
