"""AlexeyAB's [yolo] in training mode against its C (yolo_layer.c forward_yolo_layer with state.train = 1):
l.output, l.delta, *l.cost and the `v3 (...)` line it prints, within the README's tolerances (output and delta |a - g| <= 1e-3 (1 + |g|),
cost |a - g| <= 1e-3 max(1, |g|)); the anchors are pixels of the manifest's `net_size`.

tests/golden-alexeyab/yolo-train/: yolov4-tiny's and yolov4's [yolo] options (ciou, iou_normalizer,
scale_x_y, iou_thresh, max_delta) on 6-float truths with AlexeyAB's max=200.
tests/golden-alexeyab-extra/yolo-train/ (tools/goldens/alexeyab_yolo_train/): the other options: mse
(with truth_thresh, label_smooth_eps), giou (focal_loss, max_delta clipping, iou_thresh_kind=giou), diou
(counters_per_class, cls_normalizer, objectness_smooth, iou_thresh_kind=ciou), iou (show_details=0, max=8,
iou_thresh_kind=diou), mse with new_coords, and yolov7-tiny's [yolo] (ciou, new_coords, objectness_smooth).
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import GOLDEN_AB, MANIFEST_AB, ROOT, golden_layer
from helpers import assert_same_printed_line
from pydarknet.errors import CfgWarning, DarknetError
from pydarknet.layers.loss_report import BoxCounts

EXTRA = ROOT / "tests" / "golden-alexeyab-extra" / "yolo-train"
CASES = [(GOLDEN_AB / "yolo-train", case) for case in MANIFEST_AB["yolo_train"]]
CASES += [(EXTRA, case) for case in json.loads((EXTRA / "manifest.json").read_text())["cases"]]


def assert_within(name: str, ours: torch.Tensor, theirs: np.ndarray, floor: str = "1 + |g|") -> None:
    """|a - g| <= 1e-3 * (1 + |g|) elementwise, or for the cost 1e-3 * max(1, |g|)."""
    ours64 = ours.reshape(theirs.shape).double().numpy()
    gold = theirs.astype(np.float64)
    bound = 1e-3 * (1 + np.abs(gold)) if floor == "1 + |g|" else 1e-3 * np.maximum(1, np.abs(gold))
    err = np.abs(ours64 - gold)
    assert np.all(err <= bound), f"{name}: max |a - g| {err.max():.3e}, worst ratio to the bound {(err / bound).max():.3f}"


@pytest.mark.parametrize(("root", "case"), CASES, ids=[c["name"] for _, c in CASES])
def test_yolo_train_matches_alexeyab(root: Path, case: dict) -> None:
    folder = root / case["name"]
    layer, raw, truth = golden_layer(folder, "yolo.cfg")
    assert layer.alexeyab and layer.max_boxes == case["max_boxes"] and truth.shape[1:] == (case["max_boxes"], 6)
    lines: list[str] = []
    counts = BoxCounts()
    output, delta, cost = layer.delta(raw, truth, tuple(case["net_size"]), lines.append, counts)
    assert_within(f"{case['name']} output", output, np.load(folder / "output.npy"))
    assert_within(f"{case['name']} delta", delta, np.load(folder / "delta.npy"))
    assert_within(f"{case['name']} cost", cost, np.load(folder / "cost.npy"), floor="max(1, |g|)")
    assert float(cost) == pytest.approx(case["cost"], rel=1e-4)
    assert torch.equal(layer(raw), output)
    assert torch.equal(layer.input_delta(output, delta), delta)  # backward_yolo_layer: axpy of l.delta, as is
    assert len(lines) == 1
    assert_same_printed_line(lines[0], case["log"], rel=1e-5)  # its `v3 (...)` line
    assert counts.total == case["total_bbox"]  # net.total_bbox: its delta_yolo_box calls
    if "rewritten_bbox" in case:  # net.rewritten_bbox, recorded by our goldens (two truths on one anchor, ...)
        assert int(counts.rewritten) == case["rewritten_bbox"]
        assert counts.line() == (f" total_bbox = {case['total_bbox']}, rewritten_bbox = "
                                 f"{100 * np.float32(case['rewritten_bbox']) / np.float32(case['total_bbox']):f} % ")


def test_track_id_changes_nothing() -> None:
    """The 6th float (track_id) feeds only [contrastive]'s labels: 5-float truths give the same numbers."""
    root, case = CASES[0]
    layer, raw, truth = golden_layer(root / case["name"], "yolo.cfg")
    six = layer.delta(raw, truth, tuple(case["net_size"]))
    tracked = truth.clone()
    tracked[..., 5] = 7
    five = layer.delta(raw, truth[..., :5], tuple(case["net_size"]))
    for a, b, c in zip(six, five, layer.delta(raw, tracked, tuple(case["net_size"]))):
        assert torch.equal(a, b) and torch.equal(a, c)


def test_pjreddie_dialect_refuses_alexeyab_loss_options() -> None:
    """The same cfg in pjreddie's dialect: its loss has none of these options, so training names the first."""
    root, case = CASES[0]
    folder = root / case["name"]
    layer, raw, truth = golden_layer(folder, "yolo.cfg")
    layer.alexeyab = False
    assert layer.max_boxes == 90  # pjreddie's parse_yolo default
    line = next(n for n, text in enumerate((folder / "yolo.cfg").read_text().splitlines(), 1) if text.startswith("scale_x_y"))
    with pytest.raises(DarknetError, match=rf"yolo\.cfg:{line}:\d+: \[yolo\] scale_x_y=1\.05: AlexeyAB's loss option"):
        layer.delta(raw, truth, tuple(case["net_size"]))


def test_truths_past_max_are_not_read() -> None:
    """`max=8`: Darknet's truth buffer holds 8 rows per image (l.truths); rows after them change nothing."""
    root, case = next((r, c) for r, c in CASES if c["max_boxes"] < 200)
    layer, raw, truth = golden_layer(root / case["name"], "yolo.cfg")
    longer = torch.cat([truth, torch.tensor([0.5, 0.5, 0.2, 0.2, 1.0, 0.0]).expand(truth.shape[0], 4, 6)], dim=1)
    for a, b in zip(layer.delta(raw, truth, tuple(case["net_size"])), layer.delta(raw, longer, tuple(case["net_size"]))):
        assert torch.equal(a, b)


TINY_YOLOV4 = """[net]
batch=2
subdivisions=1
width=64
height=64
channels=3
momentum=0.9
decay=0.0005
learning_rate=0.001
burn_in=2
max_batches=2
policy=steps
steps=100
scales=.1

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[convolutional]
filters=21
size=1
stride=1
pad=1
activation=linear

[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58
classes=2
num=3
jitter=.1
scale_x_y=1.05
iou_thresh=0.213
cls_normalizer=1.0
iou_normalizer=0.07
iou_loss=ciou
ignore_thresh=.7
truth_thresh=1
max_delta=5
random=0
"""


def test_pydarknet_train_runs_alexeyabs_loss(tmp_path: Path, one_thread: None, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`pydarknet train` on a cfg with AlexeyAB's [yolo] loss keys: its dialect, its loss (every step through
    alexeyab_yolo_delta), AlexeyAB's max=200 truths per image from the loader, a final weights file, and
    the loss's `v3 (...)` line per step on stderr, as AlexeyAB's fprintf, each followed by the box counts
    since the start (train_network_datum); no "ignored at inference" warnings."""
    import pydarknet.layers.yolo as yolo_module
    from pydarknet.train.trainer import TrainRun, train_detector
    from training_data import make_dataset

    calls = []

    def counted(layer, raw, truth, net_size, log, counts):  # type: ignore[no-untyped-def]
        calls.append(truth.shape)
        return real(layer, raw, truth, net_size, log, counts)

    real = yolo_module.alexeyab_yolo_delta
    monkeypatch.setattr(yolo_module, "alexeyab_yolo_delta", counted)
    cfg = tmp_path / "v4.cfg"
    cfg.write_text(TINY_YOLOV4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        final = train_detector(TrainRun(data=make_dataset(tmp_path / "ds"), cfg=cfg, workers=0))
    assert final.name == "v4_final.weights" and final.exists()
    assert calls == [torch.Size([2, 200, 5])] * 2
    assert not [w for w in caught if issubclass(w.category, CfgWarning)]  # its training options are read, not warned
    printed = capsys.readouterr()
    assert "v3 (" not in printed.out
    assert [line.split(" Avg")[0] for line in printed.err.splitlines() if line.startswith("v3 (")] == \
        ["v3 (iou loss, Normalizer: (iou: 0.07, obj: 1.00, cls: 1.00) Region 2"] * 2
    lines = printed.err.splitlines()
    counts = [lines[k + 1] for k, line in enumerate(lines) if line.startswith("v3 (")]
    totals = [int(re.fullmatch(r" total_bbox = (\d+), rewritten_bbox = \d+\.\d{6} % ", line)[1]) for line in counts]
    assert 0 < totals[0] < totals[1]  # summed over the run


def test_train_network_takes_six_float_truths(one_thread: None) -> None:
    """train_network in AlexeyAB's dialect takes its truth layout, x y w h class track_id."""

    from pydarknet import Darknet
    from pydarknet.train.state import TrainingState
    from pydarknet.train.step import train_network

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(ROOT / "tests" / "golden-alexeyab" / "yolo-train" / "yolov4_13x13_mask678" / "yolo.cfg")
        net = Darknet(path)  # a lone [yolo]: its input is the network's input
    truth = torch.zeros(2, 200, 6)
    truth[:, 0] = torch.tensor([0.5, 0.5, 0.3, 0.2, 3.0, 7.0])
    x = torch.randn(2, *net.input_shape)
    assert train_network(net, TrainingState(net), x, truth) == pytest.approx(
        float(net.layers[0].delta(x, truth, (net.width, net.height))[2]) / 2, rel=1e-6)


def test_images_without_truths() -> None:
    """No truth (the list ends at the first x == 0): only objectness deltas obj_normalizer * (0 - obj)."""
    root, case = CASES[0]
    layer, raw, truth = golden_layer(root / case["name"], "yolo.cfg")
    output, delta, cost = layer.delta(raw, torch.zeros_like(truth), tuple(case["net_size"]))
    obj = output.view(raw.shape[0], layer.num, layer.entries, *raw.shape[2:])[:, :, 4]
    planes = delta.view(raw.shape[0], layer.num, layer.entries, *raw.shape[2:])
    assert torch.equal(planes[:, :, 4], -obj) and not planes[:, :, :4].any() and not planes[:, :, 5:].any()
    assert float(cost) == pytest.approx(float(obj.square().sum()), rel=1e-6)


def test_a_wrong_counters_per_class_is_refused_before_the_run(tmp_path: Path) -> None:
    """The loss reads its options at each step; `train` reads them once before anything runs."""
    from pydarknet.train.trainer import TrainRun, start_network

    text = (ROOT / "cfg" / "yolov4-tiny.cfg").read_text().replace("resize=1.5", "resize=1.5\ncounters_per_class=1,2", 1)
    cfg = tmp_path / "counted.cfg"
    cfg.write_text(text)
    with pytest.raises(DarknetError, match=r"counted\.cfg.*counters_per_class has 2 values, classes=80"):
        start_network(TrainRun(tmp_path / "unused.data", cfg), "cpu")
