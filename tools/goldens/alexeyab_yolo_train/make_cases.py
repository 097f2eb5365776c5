#!/usr/bin/env python3
"""Make tests/golden-alexeyab-extra/yolo-train/: AlexeyAB's [yolo] loss on the options the official
yolo-train goldens (yolov4's and yolov4-tiny's ciou heads) do not cover.

usage (from the repository root): make_cases.py YOLO_TRAIN [--out tests/golden-alexeyab-extra/yolo-train] [--only NAME ...]

YOLO_TRAIN is yolo_train.c built by build.sh against AlexeyAB/darknet 59596d78 (CPU, -Ofast, AVX=0).  Per
case: `yolo.cfg` ([net] width/height = the grid, channels = n*(classes+5), batch; then the [yolo]
options of CASES), `input.npy` (batch, outputs) float32, `truth.npy` (batch, max, 6) float32 (AlexeyAB's
truth layout: x y w h class track_id), and from Darknet `output.npy`, `delta.npy` (batch, outputs),
`cost.npy` (1,); `manifest.json` lists the cases with Darknet's "v3 (...)" line, total_bbox and rewritten_bbox
(its counts of delta_yolo_box calls, and of those on a box delta already written).

Input: numpy Generator(PCG64(input_seed)).standard_normal, float32; with `class_shift` the class planes
get that added (so that fewer anchors pass compare_yolo_class's .25); with new_coords=1 the logistic of
it (the conv before such a [yolo] has activation=logistic).  Truths, Generator(PCG64(truth_seed)): per
image `random` boxes (x, y in [.02, .98], w, h in [.02, .6]), one .002 cells left of a cell border, a
4-pixel one, a .7 one, two jittered copies of predicted boxes (the layer's own output decoded by
get_yolo_box, moved by up to 1% and scaled by up to 5%); image 0 also two truths of different classes
on one cell and shape, image 1 one of class `classes` (skipped by the loss); track_id random in 0..9
(the loss never reads it).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
COMMIT = "59596d7880f6504768df41d6daa586f5cb2b932f"
ANCHORS = "12,16, 30,28, 50,70, 90,60, 140,120, 250,200"
YOLOV7_TINY_ANCHORS = "10,13, 16,30, 33,23, 30,61, 62,45, 59,119, 116,90, 156,198, 373,326"

# name -> grid (w, h), net (w, h), classes, [yolo] options (besides classes), class_shift, seeds (input, truth)
CASES: dict[str, dict] = {
    "mse_truth_thresh": dict(
        grid=(10, 8), net=(320, 256), classes=6, class_shift=-2.5, seeds=(301, 401),
        options={"mask": "0,1,2", "anchors": ANCHORS, "num": 6, "ignore_thresh": 0.5, "truth_thresh": 0.7,
                 "label_smooth_eps": 0.1}),
    "giou_focal_clip": dict(
        grid=(10, 8), net=(320, 256), classes=6, class_shift=0.0, seeds=(302, 402),
        options={"mask": "2,3,4", "anchors": ANCHORS, "num": 6, "iou_loss": "giou", "iou_normalizer": 0.5,
                 "obj_normalizer": 2.0, "iou_thresh": 0.3, "iou_thresh_kind": "giou", "max_delta": 1,
                 "focal_loss": 1, "ignore_thresh": 0.6, "scale_x_y": 1.1}),
    "diou_counters_smooth": dict(
        grid=(10, 8), net=(320, 256), classes=6, class_shift=-2.5, seeds=(303, 403),
        options={"mask": "1,2,3", "anchors": ANCHORS, "num": 6, "iou_loss": "diou", "iou_normalizer": 0.2,
                 "counters_per_class": "100,50,10,5,0,200", "max_delta": 8, "cls_normalizer": 0.5,
                 "label_smooth_eps": 0.2, "iou_thresh": 0.25, "iou_thresh_kind": "ciou", "objectness_smooth": 1,
                 "ignore_thresh": 0.6, "truth_thresh": 0.75}),
    "mse_new_coords": dict(
        grid=(10, 8), net=(320, 256), classes=6, class_shift=0.0, seeds=(304, 404),
        options={"mask": "0,2,4", "anchors": ANCHORS, "num": 6, "new_coords": 1, "scale_x_y": 2.0,
                 "iou_normalizer": 0.1, "iou_thresh": 0.3, "ignore_thresh": 0.7}),
    "iou_show_details0_max8": dict(
        grid=(10, 8), net=(320, 256), classes=6, class_shift=-1.5, seeds=(305, 405),
        options={"mask": "3,4,5", "anchors": ANCHORS, "num": 6, "max": 8, "iou_loss": "iou", "show_details": 0,
                 "iou_normalizer": 0.3, "obj_normalizer": 0.5, "iou_thresh": 0.35, "iou_thresh_kind": "diou",
                 "max_delta": 3, "truth_thresh": 0.8, "ignore_thresh": 0.5}),
    # yolov7-tiny.cfg's second [yolo], verbatim (ciou, new_coords, objectness_smooth, scale_x_y=2, ...)
    "yolov7-tiny_mask345": dict(
        grid=(10, 8), net=(320, 256), classes=80, class_shift=0.0, seeds=(306, 406),
        source="yolov7-tiny.cfg [yolo] #2",
        options={"mask": "3,4,5", "anchors": YOLOV7_TINY_ANCHORS, "num": 9, "jitter": 0.1, "scale_x_y": 2.0,
                 "objectness_smooth": 1, "ignore_thresh": 0.7, "truth_thresh": 1, "iou_thresh": 0.2,
                 "cls_normalizer": 0.5, "obj_normalizer": 1.0, "iou_normalizer": 0.05, "iou_loss": "ciou",
                 "nms_kind": "diounms", "beta_nms": 0.6, "new_coords": 1, "max_delta": 2, "resize": 1.5}),
}
BATCH = 2
RANDOM_BOXES = (5, 4)  # per image


def cfg_text(case: dict) -> str:
    opts = case["options"]
    n = len(str(opts["mask"]).split(","))
    w, h = case["grid"]
    lines = [f"{k}={v}" for k, v in {"classes": case["classes"], **opts}.items()]
    return (f"[net]\nbatch={BATCH}\nsubdivisions=1\nwidth={w}\nheight={h}\nchannels={n * (case['classes'] + 5)}\n\n"
            "[yolo]\n" + "\n".join(lines) + "\n")


def make_input(case: dict) -> np.ndarray:
    """(batch, n, classes + 5, h, w) float32: N(0, 1), class planes shifted, logistic with new_coords."""
    w, h = case["grid"]
    n = len(str(case["options"]["mask"]).split(","))
    x = np.random.Generator(np.random.PCG64(case["seeds"][0])).standard_normal(
        (BATCH, n, case["classes"] + 5, h, w)).astype(np.float32)
    x[:, :, 5:] += np.float32(case["class_shift"])
    if case["options"].get("new_coords"):
        x = (1 / (1 + np.exp(-x.astype(np.float64)))).astype(np.float32)
    return x


def predicted_boxes(case: dict, x: np.ndarray) -> np.ndarray:
    """get_yolo_box of every (image, anchor, row, col) on the layer's output (approximately: float64)."""
    opts = case["options"]
    w, h = case["grid"]
    net_w, net_h = case["net"]
    s = float(opts.get("scale_x_y", 1))
    anchors = np.array([float(a) for a in opts["anchors"].split(",")]).reshape(-1, 2)
    mask = [int(m) for m in str(opts["mask"]).split(",")]
    v = x.astype(np.float64)
    xy = v[:, :, :2] if opts.get("new_coords") else 1 / (1 + np.exp(-v[:, :, :2]))
    xy = xy * s - 0.5 * (s - 1)
    wh = v[:, :, 2:4] * v[:, :, 2:4] * 4 if opts.get("new_coords") else np.exp(v[:, :, 2:4])
    col, row = np.meshgrid(np.arange(w), np.arange(h))
    aw = anchors[mask, 0].reshape(1, -1, 1, 1)
    ah = anchors[mask, 1].reshape(1, -1, 1, 1)
    return np.stack([(col + xy[:, :, 0]) / w, (row + xy[:, :, 1]) / h, wh[:, :, 0] * aw / net_w,
                     wh[:, :, 1] * ah / net_h], axis=-1)


def make_truth(case: dict, x: np.ndarray) -> np.ndarray:
    """(batch, max, 6) float32 truths, see the module docstring."""
    rng = np.random.Generator(np.random.PCG64(case["seeds"][1]))
    classes = case["classes"]
    w, _ = case["grid"]
    net_w, net_h = case["net"]
    boxes = predicted_boxes(case, x)
    max_boxes = int(case["options"].get("max", 200))
    truth = np.zeros((BATCH, max_boxes, 6), dtype=np.float32)
    for b in range(BATCH):
        rows = [[*rng.uniform(0.02, 0.98, 2), *rng.uniform(0.02, 0.6, 2)] for _ in range(RANDOM_BOXES[b])]
        rows.append([(rng.integers(1, w) - 0.002) / w, rng.uniform(0.1, 0.9), *rng.uniform(0.05, 0.4, 2)])
        rows.append([*rng.uniform(0.1, 0.9, 2), 4 / net_w, 4 / net_h])
        rows.append([*rng.uniform(0.3, 0.7, 2), *rng.uniform(0.65, 0.75, 2)])
        for _ in range(2):
            n, j, i = (rng.integers(0, d) for d in boxes.shape[1:4])
            px, py, pw, ph = boxes[b, n, j, i]
            moved = [px + rng.uniform(-0.01, 0.01) * pw, py + rng.uniform(-0.01, 0.01) * ph,
                     pw * rng.uniform(0.95, 1.05), ph * rng.uniform(0.95, 1.05)]
            rows.append([float(np.clip(moved[0], 0.001, 0.999)), float(np.clip(moved[1], 0.001, 0.999)),
                         float(np.clip(moved[2], 0.005, 1)), float(np.clip(moved[3], 0.005, 1))])
        cls = list(rng.integers(0, classes, len(rows)))
        if b == 0:  # two truths of different classes on one cell and shape
            pair = [*rng.uniform(0.1, 0.9, 2), *rng.uniform(0.1, 0.3, 2)]
            rows[2:2] = [pair, pair]
            first = int(rng.integers(0, classes))
            cls[2:2] = [first, (first + 1 + int(rng.integers(0, classes - 1))) % classes]
        else:  # a class the cfg does not have: skipped
            rows.insert(1, [*rng.uniform(0.1, 0.9, 2), *rng.uniform(0.1, 0.3, 2)])
            cls.insert(1, classes)
        for t, (row, c) in enumerate(zip(rows[:max_boxes], cls)):
            truth[b, t] = [*row, c, rng.integers(0, 10)]
    return truth


def run(driver: Path, name: str, case: dict, out: Path) -> dict:
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "yolo.cfg").write_text(cfg_text(case))
    x = make_input(case)
    truth = make_truth(case, x)
    flat = x.reshape(BATCH, -1)
    np.save(folder / "input.npy", flat)
    np.save(folder / "truth.npy", truth)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        flat.tofile(t / "input.bin")
        truth.tofile(t / "truth.bin")
        done = subprocess.run([str(driver), str(folder / "yolo.cfg"), str(t / "input.bin"), str(t / "truth.bin"),
                               str(BATCH), str(case["net"][0]), str(case["net"][1]), str(t)],
                              check=True, capture_output=True, text=True)
        for what in ("output", "delta"):
            np.save(folder / f"{what}.npy", np.fromfile(t / f"{what}.bin", dtype=np.float32).reshape(BATCH, -1))
        cost = np.fromfile(t / "cost.bin", dtype=np.float32)
        np.save(folder / "cost.npy", cost)
    log = next(line for line in done.stderr.splitlines() if line.startswith("v3 ("))
    total_bbox, rewritten_bbox = map(int, re.search(r"total_bbox (\d+) rewritten_bbox (\d+)", done.stdout).groups())
    max_boxes = int(case["options"].get("max", 200))
    return {
        "name": name, "source": case.get("source", "custom"), "grid": list(case["grid"]), "net_size": list(case["net"]),
        "batch": BATCH, "classes": case["classes"], "options": case["options"], "max_boxes": max_boxes,
        "truths_per_image": [int((truth[b, :, 0] != 0).sum()) for b in range(BATCH)],
        "input_seed": case["seeds"][0], "truth_seed": case["seeds"][1],
        "input_dist": "N(0,1) float32, numpy PCG64(input_seed)" + (f", class planes {case['class_shift']:+g}" if case["class_shift"] else "")
                      + (", then the logistic" if case["options"].get("new_coords") else ""),
        "cost": float(cost[0]), "total_bbox": total_bbox, "rewritten_bbox": rewritten_bbox, "log": log.strip() + "\n",
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("driver", type=Path)
    p.add_argument("--out", type=Path, default=ROOT / "tests" / "golden-alexeyab-extra" / "yolo-train")
    p.add_argument("--only", nargs="*")
    a = p.parse_args()
    manifest_path = a.out / "manifest.json"
    old = {c["name"]: c for c in json.loads(manifest_path.read_text())["cases"]} if manifest_path.exists() else {}
    for name, case in CASES.items():
        if not a.only or name in a.only:
            old[name] = run(a.driver.resolve(), name, case, a.out)
            print(name, old[name]["log"], end="")
    manifest = {"darknet": "AlexeyAB/darknet", "commit": COMMIT,
                "build": "GPU=0 CUDNN=0 OPENCV=0 OPENMP=1 AVX=0 LIBSO=0, -Ofast (tools/goldens/alexeyab_yolo_train/build.sh)",
                "driver": "tools/goldens/alexeyab_yolo_train/yolo_train.c",
                "generator": "tools/goldens/alexeyab_yolo_train/make_cases.py",
                "cases": [old[name] for name in CASES if name in old]}
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
