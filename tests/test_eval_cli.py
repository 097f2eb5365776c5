"""`pydarknet valid` / `map` end to end, with a stand-in for pydarknet.infer.detect.detect_batch.

The stand-in (below, tests only) follows the detection contract: one list of
detections per image, `box` relative (x, y, w, h), `probs` per class.  It
returns fixed detections keyed by image size, so AP can be worked out by hand.
"""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import cfg_path
from pydarknet import Darknet
from pydarknet.cli import main
from pydarknet.eval.results import COCO_IDS, read_voc_results

CFG = cfg_path("yolov2-tiny-slim.cfg")  # 20 VOC classes
CLASSES = 20
NAMES = [f"class{i}" for i in range(CLASSES)]


@dataclass
class StandInDetection:
    box: tuple[float, float, float, float]
    objectness: float
    probs: np.ndarray


def det(box, cls, prob):
    probs = np.zeros(CLASSES, np.float32)
    probs[cls] = prob
    return StandInDetection(tuple(np.float32(box)), prob, probs)


# image (width, height) -> its detections; ground truth in IMAGES below
DETECTIONS = {
    (64, 48): [det((0.5, 0.5, 0.5, 0.5), 0, 0.9), det((0.95, 0.9, 0.2, 0.1), 0, 0.8), det((0.25, 0.25, 0.2, 0.2), 1, 0.7)],
    (80, 40): [det((0.3, 0.5, 0.4, 0.6), 0, 0.6)],
}
IMAGES = {
    "COCO_val2014_000000000042.png": ((64, 48), ["0 0.5 0.5 0.5 0.5", "1 0.25 0.25 0.2 0.2"]),
    "COCO_val2014_000000000007.png": ((80, 40), ["0 0.3 0.5 0.4 0.6"]),
}


@pytest.fixture
def detector(monkeypatch):
    """Install the stand-in as pydarknet.infer.detect.detect_batch; returns the batch sizes it was called with."""
    calls: list[int] = []

    def detect_batch(net, images, thresh=0.5, hier_thresh=0.5, nms=0.45, **fast):
        assert (thresh, hier_thresh, nms) == (0.005, 0.5, 0.45)  # validate_detector's values
        assert set(fast) <= {"model", "batch", "relative"}
        assert fast.get("relative") is False  # validate_detector: get_network_boxes(..., relative=0)
        calls.append(len(images))
        return [DETECTIONS[(im.shape[1], im.shape[0])] for im in images]

    module = sys.modules.get("pydarknet.infer.detect") or types.ModuleType("pydarknet.infer.detect")
    monkeypatch.setitem(sys.modules, "pydarknet.infer.detect", module)
    monkeypatch.setattr(module, "detect_batch", detect_batch, raising=False)
    monkeypatch.setattr(module, "network_batch", lambda net, images: None, raising=False)
    return calls


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "slim.weights"
    Darknet(CFG).save_weights(path)
    return path


def make_dataset(root: Path, results: str, coco: bool = False) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(exist_ok=True)
    for name, ((w, h), labels) in IMAGES.items():
        cv2.imwrite(str(root / "images" / name), np.full((h, w, 3), 128, np.uint8))
        (root / "labels" / name.replace(".png", ".txt")).write_text("\n".join(labels) + "\n")
    (root / "valid.txt").write_text("".join(f"{root / 'images' / n}\n" for n in IMAGES))
    (root / "names").write_text("\n".join(NAMES) + "\n")
    data = root / f"{results}.data"
    data.write_text(f"classes={CLASSES}\nvalid={root / 'valid.txt'}\nnames={root / 'names'}\nresults={root / results}\n"
                    + ("eval=coco\n" if coco else ""))
    return data


def test_valid_writes_darknet_voc_files(tmp_path, weights, detector, capsys):
    data = make_dataset(tmp_path, "results")
    assert main(["detector", "valid", str(data), str(CFG), str(weights), "-batch", "1"]) == 0
    assert detector == [1, 1]
    files = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert files == sorted(f"comp4_det_test_{n}.txt" for n in NAMES)  # no temp files left
    assert (tmp_path / "results" / "comp4_det_test_class0.txt").read_text().splitlines() == [
        "COCO_val2014_000000000042 0.900000 17.000000 13.000000 49.000000 37.000000",
        # float32 x = .95f*64 = 60.8, w = .2f*64; x1 = (double)x - w/2. + 1 = 55.3999991 -> float 55.3999977;
        # x2 = 68.2 clamped to the width 64; y = .9f*48 rounds to 43.1999969 -> y1 41.7999954
        "COCO_val2014_000000000042 0.800000 55.399998 41.799995 64.000000 46.599998",
        "COCO_val2014_000000000007 0.600000 9.000000 9.000000 41.000000 33.000000",
    ]
    rows = read_voc_results(tmp_path / "results", NAMES)
    assert [(r[0], r[1], r[2]) for r in rows] == [("COCO_val2014_000000000042", 0, 0.9), ("COCO_val2014_000000000042", 0, 0.8),
                                                   ("COCO_val2014_000000000007", 0, 0.6), ("COCO_val2014_000000000042", 1, 0.7)]
    assert rows[3][3:] == pytest.approx((0.15 * 64 + 1, 0.15 * 48 + 1, 0.35 * 64 + 1, 0.35 * 48 + 1), abs=1e-5)


def test_valid_files_identical_for_batch_1_and_8(tmp_path, weights, detector):
    one, eight = make_dataset(tmp_path, "b1"), make_dataset(tmp_path, "b8")
    assert main(["valid", str(one), str(CFG), str(weights), "--batch", "1"]) == 0
    assert main(["valid", str(eight), str(CFG), str(weights), "--batch", "8"]) == 0
    assert detector == [1, 1, 2]
    for name in NAMES:
        a = (tmp_path / "b1" / f"comp4_det_test_{name}.txt").read_bytes()
        assert a == (tmp_path / "b8" / f"comp4_det_test_{name}.txt").read_bytes()


def test_valid_coco_json(tmp_path, weights, detector):
    data = make_dataset(tmp_path, "res", coco=True)
    assert main(["valid", str(data), str(CFG), str(weights)]) == 0
    text = (tmp_path / "res" / "coco_results.json").read_text()
    assert text.startswith("[\n{\"image_id\":42, \"category_id\":1, \"bbox\":[16.000000, 12.000000, 32.000000, 24.000000], \"score\":0.900000}")
    assert text.endswith("}\n]\n")
    found = json.loads(text)
    assert [(d["image_id"], d["category_id"]) for d in found] == [(42, COCO_IDS[0]), (42, COCO_IDS[0]), (42, COCO_IDS[1]), (7, COCO_IDS[0])]
    assert found[1]["bbox"] == pytest.approx([54.4, 40.8, 9.6, 4.8], abs=1e-5)  # x2 clamped to 64


def test_map_by_hand(tmp_path, weights, detector, capsys):
    data = make_dataset(tmp_path, "results")
    assert main(["map", str(data), str(CFG), str(weights), "--json", "--coco", "--thresh", ".25"]) == 0
    out = json.loads(capsys.readouterr().out)
    # class 0: TP .9, FP .8, TP .6 of 2 boxes -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1; class 1: one TP
    assert out["map"]["0"] == pytest.approx((5 / 6 + 1) / 2)
    assert out["map"]["11"] == pytest.approx((28 / 33 + 1) / 2)
    assert out["map"]["101"] == pytest.approx(((51 + 50 * 2 / 3) / 101 + 1) / 2)
    assert out["classes"][0]["ap"]["0"] == pytest.approx(5 / 6) and out["classes"][2]["ap"]["0"] is None
    assert (out["tp"], out["fp"], out["fn"]) == (3, 1, 0)
    assert (out["precision"], out["recall"]) == pytest.approx((0.75, 1.0))
    assert out["average_iou"] == pytest.approx(1.0, abs=1e-5)
    assert out["coco"]["AP50"] == pytest.approx(out["map"]["101"], abs=1e-9)
    assert out["coco"]["AP"] == pytest.approx(out["map"]["101"], abs=1e-9)  # every hit has IoU ~1


def test_map_table_and_plots(tmp_path, weights, detector, capsys):
    data = make_dataset(tmp_path, "results")
    assert main(["map", str(data), str(CFG), str(weights), "--points", "0", "--plot", str(tmp_path / "pr")]) == 0
    out = capsys.readouterr().out
    assert "class0" in out and "83.33%" in out and "mAP@0.5: " in out and "91.67% (all-point)" in out
    assert (tmp_path / "pr" / "pr_class0.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_inputs_are_one_line(tmp_path, weights, detector, capsys):
    data = make_dataset(tmp_path, "results")
    (tmp_path / "valid.txt").write_text(f"{tmp_path / 'images' / 'missing.png'}\n")
    assert main(["valid", str(data), str(CFG), str(weights)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "valid.txt:1" in err and "missing.png" in err
    make_dataset(tmp_path, "results")
    (tmp_path / "labels" / "COCO_val2014_000000000007.txt").write_text("0 0.5 0.5\n")
    assert main(["map", str(data), str(CFG), str(weights)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "COCO_val2014_000000000007.txt:1" in err
