"""`pydarknet valid` / `map` end to end: on known detections (a stand-in detector), and on the real one.

The tests taking the `detector` fixture (`test_valid_writes_darknet_voc_files`,
`test_valid_batches_the_list`, `test_valid_coco_json`, `test_map_by_hand`,
`test_map_table_and_plots`, `test_bad_inputs_are_one_line`) replace
`pydarknet.eval.validation.detect_batch` (and `network_batch`), which the
commands call, with a stand-in
returning fixed detections keyed by image size: so the result files' bytes
(Darknet's print_detector_detections / print_cocos) and the AP values can be
worked out by hand.  The stand-in follows the detection contract: one list of
detections per image, `box` relative (x, y, w, h), `probs` per class.

The `test_real_*` tests use no stand-in: the shipped demo model
(weights/yolov2-tiny-shapes.weights) on the first images of the held-out valid
set of tools/make_shapes.py.  `valid` must write the detections that calling
pydarknet.infer.detect.detect_batch directly, with validate_detector's
thresholds, gives under the rules pinned above (to float32 rounding: the
command runs the fast inference model), the same files for batch 1 and 8, and
`map` must give the mAP measured on those images, in both dialects.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import DEMO_CFG, DEMO_WEIGHTS, cfg_path
from pydarknet import Darknet
from pydarknet.cli import main
from pydarknet.eval.results import COCO_IDS, image_id, read_voc_results, voc_lines
from pydarknet.image import load_image
from pydarknet.infer.detect import detect_batch
from tools import make_shapes

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
def detector(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The stand-in as the `valid`/`map` commands' detect_batch; returns the batch sizes it was called with."""
    calls: list[int] = []

    def stand_in(net, images, thresh=0.5, hier_thresh=0.5, nms=0.45, **fast):
        assert (thresh, hier_thresh, nms) == (0.005, 0.5, 0.45)  # validate_detector's values
        assert set(fast) <= {"model", "batch", "relative"}
        assert fast.get("relative") is False  # validate_detector: get_network_boxes(..., relative=0)
        calls.append(len(images))
        return [DETECTIONS[(im.shape[1], im.shape[0])] for im in images]

    monkeypatch.setattr("pydarknet.eval.validation.detect_batch", stand_in)
    monkeypatch.setattr("pydarknet.eval.validation.network_batch", lambda net, images: None)
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


def test_valid_batches_the_list(tmp_path, weights, detector):
    data = make_dataset(tmp_path, "results")
    assert main(["valid", str(data), str(CFG), str(weights), "--batch", "1"]) == 0
    assert main(["valid", str(data), str(CFG), str(weights), "--batch", "8"]) == 0
    assert detector == [1, 1, 2]  # (the real detector's files for batch 1 and 8: test_real_valid_batch_1_and_8_same_files)


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


# --- the real detector: the shipped demo model on make_shapes' held-out valid images ---------------------------------

SHAPES_CFG, SHAPES_WEIGHTS = DEMO_CFG, DEMO_WEIGHTS
SHAPES_VALID = 12  # images: the first of the valid set (seed 0) the demo model's weights/README.md scores
# (thresh, hier_thresh, nms) of pjreddie's examples/detector.c validate_detector, which calls
# get_network_boxes(net, w, h, thresh, hier_thresh, 0, 0 = relative, &nboxes) and do_nms_sort(dets, nboxes, classes, nms)
VALIDATE_DETECTOR = (0.005, 0.5, 0.45)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .data file of SHAPES_VALID make_shapes valid images (seed 0: never trained on), each label file also
    beside its image, where AlexeyAB's `detector map` reads it (pjreddie's reads labels/)."""
    out = tmp_path_factory.mktemp("shapes")
    data = make_shapes.make_detection_set(out, seed=0, n_train=0, n_valid=SHAPES_VALID)
    for label in (out / "labels" / "valid").iterdir():
        shutil.copy(label, out / "images" / "valid" / label.name)
    return data


def run_valid(data: Path, results: Path, *options: str) -> dict[str, str]:
    """`pydarknet valid` of the demo model writing into `results`: {file name: text}."""
    copy = results.with_suffix(".data")
    copy.write_text(data.read_text() + f"results={results}\n")
    assert main(["valid", str(copy), str(SHAPES_CFG), str(SHAPES_WEIGHTS), *options]) == 0
    return {path.name: path.read_text() for path in sorted(results.iterdir())}


def voc_rows(files: dict[str, str]) -> tuple[list[tuple[str, str]], np.ndarray]:
    """The lines of VOC result files: (file name, image id) each, and their numbers (prob x1 y1 x2 y2) as an array."""
    keys, numbers = [], []
    for name, text in sorted(files.items()):
        for ident, *values in (line.split() for line in text.splitlines()):
            keys.append((name, ident))
            numbers.append([float(v) for v in values])
    return keys, np.array(numbers).reshape(-1, 5)


@pytest.fixture(scope="module")
def valid_files(shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The result files of `pydarknet valid` (pjreddie's dialect, batch 8) on the shapes."""
    return run_valid(shapes, tmp_path_factory.mktemp("valid") / "results", "--dialect", "pjreddie", "--batch", "8")


def test_real_valid_files_are_the_detectors(shapes: Path, valid_files: dict[str, str]):
    """Each line is a detection of detect_batch called directly (the eager network on load_image arrays, with
    validate_detector's thresholds and relative=0 NMS), printed by print_detector_detections' rules (voc_lines,
    pinned by the tests above)."""
    names = make_shapes.CLASSES
    net = Darknet(SHAPES_CFG)
    net.load_weights(SHAPES_WEIGHTS)
    net.set_dialect("pjreddie")
    thresh, hier_thresh, nms = VALIDATE_DETECTOR
    paths = (shapes.parent / "valid.txt").read_text().splitlines()
    images = [load_image(path) for path in paths]
    expected = {f"comp4_det_test_{name}.txt": "" for name in names}
    for path, image, dets in zip(paths, images, detect_batch(net, images, thresh, hier_thresh, nms, relative=False)):
        boxes = np.array([d.box for d in dets], dtype=np.float32).reshape(-1, 4)
        probs = np.array([d.probs for d in dets], dtype=np.float32).reshape(-1, len(names))
        for cls, line in voc_lines(image_id(path), boxes, probs, image.shape[2], image.shape[1]):
            expected[f"comp4_det_test_{names[cls]}.txt"] += line
    assert sum(text.count("\n") for text in expected.values()) > 100  # the low thresh keeps many boxes
    ours, theirs = voc_rows(valid_files), voc_rows(expected)
    assert ours[0] == theirs[0]
    # the command runs the fast model (pydarknet.infer.engine: batch norm folded, channels_last), this the
    # eager network: the same detections, their numbers a few float32 roundings apart (measured: probs 1e-6,
    # corners 1.3e-4 pixels)
    np.testing.assert_allclose(ours[1][:, 0], theirs[1][:, 0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(ours[1][:, 1:], theirs[1][:, 1:], rtol=0, atol=5e-4)


def test_real_valid_batch_1_and_8_same_files(shapes: Path, valid_files: dict[str, str], tmp_path: Path):
    assert run_valid(shapes, tmp_path / "results", "--dialect", "pjreddie", "--batch", "1") == valid_files


# mAP@.5 (11-point, 101-point, all-point) and TP, FP, FN at score .25 of the demo model on the SHAPES_VALID images,
# measured when this test was written (CPU, torch 2.13, 2 threads; the same on every run): `pydarknet map
# <the shapes fixture's .data> cfg/yolov2-tiny-shapes.cfg weights/yolov2-tiny-shapes.weights --json --dialect D`.
# (All 300 valid images give 91.3% 11-point in pjreddie's dialect: weights/README.md.)
MEASURED_MAP = {
    "pjreddie": ((0.9529483143119507, 0.9565085079936565, 0.9572330447330447), (48, 9, 3)),
    "alexeyab": ((0.9202344506337247, 0.9262263146200542, 0.9273906863948779), (45, 16, 6)),
}


@pytest.mark.parametrize("dialect", MEASURED_MAP)
def test_real_map_of_the_demo_model(shapes: Path, dialect: str, capsys: pytest.CaptureFixture[str]):
    assert main(["map", str(shapes), str(SHAPES_CFG), str(SHAPES_WEIGHTS), "--json", "--dialect", dialect]) == 0
    out = json.loads(capsys.readouterr().out)
    maps, counts = MEASURED_MAP[dialect]
    assert [out["map"][p] for p in ("11", "101", "0")] == pytest.approx(maps, abs=1e-4)
    assert (out["tp"], out["fp"], out["fn"]) == counts
    tp, _, fn = counts
    assert sum(c["ground_truth"] for c in out["classes"]) == tp + fn
