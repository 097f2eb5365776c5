"""AlexeyAB's [yolo] in training mode against its C (tests/golden-alexeyab/yolo-train/: yolo_layer.c
forward_yolo_layer with state.train = 1): l.output, l.delta and *l.cost, within the README's tolerances
(output and delta |a - g| <= 1e-3 (1 + |g|), cost |a - g| <= 1e-3 max(1, |g|)).  The cases are
yolov4-tiny's and yolov4's [yolo] options (ciou, iou_normalizer, scale_x_y, iou_thresh, max_delta) on
6-float truths with AlexeyAB's max=200; the anchors are pixels of the manifest's `net_size`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import GOLDEN_AB, MANIFEST_AB, golden_layer
from pydarknet.errors import DarknetError

CASES = MANIFEST_AB["yolo_train"]


def assert_within(name: str, ours: torch.Tensor, theirs: np.ndarray, floor: str = "1 + |g|") -> None:
    """|a - g| <= 1e-3 * (1 + |g|) elementwise, or for the cost 1e-3 * max(1, |g|)."""
    ours64 = ours.reshape(theirs.shape).double().numpy()
    gold = theirs.astype(np.float64)
    bound = 1e-3 * (1 + np.abs(gold)) if floor == "1 + |g|" else 1e-3 * np.maximum(1, np.abs(gold))
    err = np.abs(ours64 - gold)
    assert np.all(err <= bound), f"{name}: max |a - g| {err.max():.3e}, worst ratio to the bound {(err / bound).max():.3f}"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_yolo_train_matches_alexeyab(case: dict) -> None:
    folder = GOLDEN_AB / "yolo-train" / case["name"]
    layer, raw, truth = golden_layer(folder, "yolo.cfg")
    assert layer.alexeyab and layer.max_boxes == case["max_boxes"] == 200 and truth.shape[1:] == (200, 6)
    output, delta, cost = layer.delta(raw, truth, tuple(case["net_size"]))
    assert_within(f"{case['name']} output", output, np.load(folder / "output.npy"))
    assert_within(f"{case['name']} delta", delta, np.load(folder / "delta.npy"))
    assert_within(f"{case['name']} cost", cost, np.load(folder / "cost.npy"), floor="max(1, |g|)")
    assert float(cost) == pytest.approx(case["cost"], rel=1e-4)
    assert torch.equal(layer(raw), output)
    assert torch.equal(layer.input_delta(output, delta), delta)  # backward_yolo_layer: axpy of l.delta, as is


def test_track_id_changes_nothing() -> None:
    """The 6th float (track_id) feeds only [contrastive]'s labels: 5-float truths give the same numbers."""
    case = CASES[0]
    layer, raw, truth = golden_layer(GOLDEN_AB / "yolo-train" / case["name"], "yolo.cfg")
    six = layer.delta(raw, truth, tuple(case["net_size"]))
    tracked = truth.clone()
    tracked[..., 5] = 7
    five = layer.delta(raw, truth[..., :5], tuple(case["net_size"]))
    for a, b, c in zip(six, five, layer.delta(raw, tracked, tuple(case["net_size"]))):
        assert torch.equal(a, b) and torch.equal(a, c)


def test_pjreddie_dialect_refuses_alexeyab_loss_options() -> None:
    """The same cfg in pjreddie's dialect: its loss has none of these options, so training names the first."""
    case = CASES[0]
    folder = GOLDEN_AB / "yolo-train" / case["name"]
    layer, raw, truth = golden_layer(folder, "yolo.cfg")
    layer.alexeyab = False
    assert layer.max_boxes == 90  # pjreddie's parse_yolo default
    line = next(n for n, text in enumerate((folder / "yolo.cfg").read_text().splitlines(), 1) if text.startswith("scale_x_y"))
    with pytest.raises(DarknetError, match=rf"yolo\.cfg:{line}:\d+: \[yolo\] scale_x_y=1\.05: AlexeyAB's loss option"):
        layer.delta(raw, truth, tuple(case["net_size"]))
