"""[region] in training mode against the C Darknet: output, l.delta and cost
(tests/golden/region/, forward_region_layer with its seen, thresh, prior,
bias_match, rescore, softmax/logistic classes and scales).  The `tree_*` and
`yolo9000_*` cases are YOLO9000's: the GPU build's per-group tree softmax,
the hierarchical class delta, `map=`, and images whose labels are class-only
(README "region/ with a tree").  And the line it prints (`Region Avg IOU: ...`)."""

from __future__ import annotations

import argparse
import warnings

import pytest
import torch

from conftest import GOLDEN, MANIFEST, assert_matches_darknet, golden_layer
from helpers import assert_same_printed_line
from pydarknet import Darknet
from pydarknet.cli import build_parser
from pydarknet.commands.arguments import apply_dialect

CASES = MANIFEST["region"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_region_delta_matches_darknet(case: dict) -> None:
    folder = GOLDEN / "region" / case["name"]
    layer, raw, truth = golden_layer(folder, "region.cfg")
    assert (layer.tree is not None) == ("tree" in case["options"]) and (layer.map is not None) == ("map" in case["options"])
    lines: list[str] = []
    output, delta, cost = layer.delta(raw, truth, case["seen"], lines.append)
    assert_matches_darknet(folder, output, delta, cost, case["cost"])
    assert len(lines) == 1
    if "log" in case:  # the cases whose manifest keeps the line
        assert_same_printed_line(lines[0], case["log"], rel=1e-5)  # `Region Avg IOU: ...` (loss_report)
    assert torch.equal(layer(raw), output)  # the forward of a training step: the GPU tree softmax, never the CPU's NaNs


def test_region_input_delta_applies_logistic_gradient_on_x_y_obj() -> None:
    """backward_region_layer_gpu: x, y, obj deltas times (1 - y) * y; w, h, classes as they are."""
    layer, raw, truth = golden_layer(GOLDEN / "region" / CASES[0]["name"], "region.cfg")
    output, delta, _ = layer.delta(raw, truth, 0)
    passed = layer.input_delta(output, delta).view(2, layer.num, layer.entries, *raw.shape[-2:])
    o = output.view_as(passed)
    d = delta.view_as(passed)
    assert torch.equal(passed[:, :, 2:4], d[:, :, 2:4]) and torch.equal(passed[:, :, 5:], d[:, :, 5:])
    for k in (0, 1, 4):
        assert torch.allclose(passed[:, :, k], d[:, :, k] * o[:, :, k] * (1 - o[:, :, k]))


def test_tree_softmax_is_the_gpu_builds_unless_asked() -> None:
    """At inference too the tree softmax is the GPU build's (Darknet trains with it; AlexeyAB's CPU build computes
    it); pjreddie's CPU build's (NaNs: Region.cpu_tree_quirk) only on request, `--cpu-tree-softmax` on the CLI."""
    case = next(c for c in CASES if c["name"].startswith("tree_det"))
    layer, raw, truth = golden_layer(GOLDEN / "region" / case["name"], "region.cfg")
    output, _, _ = layer.delta(raw, truth, case["seen"])
    layer.eval()
    assert torch.equal(layer(raw), output)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(GOLDEN / "region" / case["name"] / "region.cfg")
    apply_dialect(net, argparse.Namespace(dialect="auto", cpu_tree_softmax=True))
    assert net.layers[0].cpu_tree_quirk
    assert torch.isnan(net.layers[0].eval()(raw)).any()
    # offered where the network runs (detect, valid, map), not where it would be ignored
    parser = build_parser()
    assert parser.parse_args(["detect", "a.cfg", "a.weights", "a.jpg", "--cpu-tree-softmax"]).cpu_tree_softmax
    with pytest.raises(SystemExit):
        parser.parse_args(["convert", "a.cfg", "a.weights", "a.onnx", "--cpu-tree-softmax"])
