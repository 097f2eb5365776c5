"""pjreddie's [yolo] in training mode against the C Darknet: output, l.delta
and cost (tests/golden/yolo/, yolo_layer.c forward_yolo_layer: ignore_thresh,
truth_thresh, the best anchor over all `num` by shape kept only if in `mask`,
box deltas scaled by 2 - w*h, the class delta's "already set" rule).  The
anchors are pixels of the network input: the layer is given the manifest's
`net_size` as net->w, net->h (the cfg's [net] width x height is the grid).
And the line it prints (`Region L Avg IOU: ...`)."""

from __future__ import annotations

import pytest
import torch

from conftest import GOLDEN, MANIFEST, assert_matches_darknet, golden_layer
from helpers import assert_same_printed_line

CASES = MANIFEST["yolo"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_yolo_delta_matches_darknet(case: dict) -> None:
    folder = GOLDEN / "yolo" / case["name"]
    layer, raw, truth = golden_layer(folder, "yolo.cfg")
    assert raw.shape[0] == case["batch"] and list(raw.shape[:-3:-1]) == case["grid"]
    lines: list[str] = []
    output, delta, cost = layer.delta(raw, truth, tuple(case["net_size"]), lines.append)
    assert_matches_darknet(folder, output, delta, cost, case["cost"])
    assert len(lines) == 1
    assert_same_printed_line(lines[0], case["log"], rel=1e-5)  # `Region 0 Avg IOU: ...` (loss_report)
    assert torch.equal(layer(raw), output)
    assert torch.equal(layer.input_delta(output, delta), delta)  # backward_yolo_layer: axpy of l.delta, as is
