"""VOC/COCO average precision: hand-computed cases, the VOC devkit's own loop, pycocotools."""

from __future__ import annotations

import numpy as np
import pytest

from pydarknet.eval.ap import DetectionTable, TruthTable, average_precision, evaluate, match_detections, precision_recall
from pydarknet.eval.coco import coco_results, coco_stats, ground_truth_from_labels


def table(rows):
    """rows of (image, class, score, x1, y1, x2, y2)."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 7)
    return DetectionTable(a[:, 0].astype(int), a[:, 1].astype(int), a[:, 2], a[:, 3:])


def truth(rows, difficult=None):
    """rows of (image, class, x1, y1, x2, y2)."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return TruthTable(a[:, 0].astype(int), a[:, 1].astype(int), a[:, 2:], None if difficult is None else np.array(difficult))


# One image, three boxes; detections: exact hit, duplicate of it, a 2/3-IoU hit, a miss.
HAND_TRUTH = truth([(0, 0, 0, 0, 10, 10), (0, 0, 20, 0, 30, 10), (0, 0, 40, 0, 50, 10)])
HAND_DETS = table([(0, 0, .9, 0, 0, 10, 10), (0, 0, .8, 0, 0, 10, 10), (0, 0, .7, 22, 0, 32, 10), (0, 0, .6, 100, 100, 110, 110)])


def test_hand_case_matching_and_curve():
    m = match_detections(HAND_DETS, HAND_TRUTH, 0, 0.5)
    assert m.tp.tolist() == [True, False, True, False]
    assert m.fp.tolist() == [False, True, False, True]
    assert m.iou[2] == pytest.approx(80 / 120)
    precision, recall = precision_recall(m)
    assert precision == pytest.approx([1, 1 / 2, 2 / 3, 1 / 2])
    assert recall == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3])


def test_hand_case_ap_by_hand():
    precision, recall = precision_recall(match_detections(HAND_DETS, HAND_TRUTH, 0, 0.5))
    # all-point: 1/3 recall at precision 1, then 1/3 more at precision 2/3
    assert average_precision(precision, recall, 0) == pytest.approx(1 / 3 + 2 / 9)
    # 11-point: t = 0, .1, .2, .3 -> 1; t = .4, .5, .6 -> 2/3; t >= .7 -> 0
    assert average_precision(precision, recall, 11) == pytest.approx(6 / 11)
    # 101-point: t = .00 .. .33 -> 1 (34 points); .34 .. .66 -> 2/3 (33 points)
    assert average_precision(precision, recall, 101) == pytest.approx(56 / 101)
    # at IoU .7 the 2/3 hit is a false positive: one TP at the top -> 1/3 recall at precision 1
    precision, recall = precision_recall(match_detections(HAND_DETS, HAND_TRUTH, 0, 0.7))
    assert average_precision(precision, recall, 0) == pytest.approx(1 / 3)


def test_hand_case_threshold_counts():
    ev = evaluate(HAND_DETS, HAND_TRUTH, classes=1, iou=0.5, thresh=0.75)
    assert (ev.tp[0], ev.fp[0], ev.positives[0]) == (1, 1, 3)
    assert ev.precision == pytest.approx(0.5) and ev.recall == pytest.approx(1 / 3)
    assert ev.f1 == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    assert ev.average_iou == pytest.approx(1.0)
    ev = evaluate(HAND_DETS, HAND_TRUTH, classes=1, iou=0.5, thresh=0.65)
    assert ev.average_iou == pytest.approx((1 + 80 / 120) / 2)


def test_difficult_boxes_are_neither_tp_nor_fp():
    t = truth([(0, 0, 0, 0, 10, 10), (0, 0, 20, 0, 30, 10)], difficult=[False, True])
    d = table([(0, 0, .9, 20, 0, 30, 10), (0, 0, .8, 0, 0, 10, 10)])
    m = match_detections(d, t, 0, 0.5)
    assert m.tp.tolist() == [False, True] and m.fp.tolist() == [False, False] and m.positives == 1
    assert average_precision(*precision_recall(m), 0) == pytest.approx(1.0)


def test_class_without_truth_is_left_out_of_the_mean():
    d = table([(0, 0, .9, 0, 0, 10, 10), (0, 1, .9, 0, 0, 10, 10)])
    ev = evaluate(d, truth([(0, 0, 0, 0, 10, 10)]), classes=2)
    assert np.isnan(ev.ap[0][1]) and ev.mean_ap(0) == pytest.approx(1.0)


# --- the VOC devkit's voc_eval/voc_ap, transcribed loop for loop (the reference) ---

def devkit_voc_ap(rec, prec, use_07_metric):
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def devkit_voc_eval(dets, gt, label, ovthresh, use_07_metric):
    keep = gt.label == label
    records = {}
    for img, box, diff in zip(gt.image[keep], gt.box[keep], gt.difficult[keep]):
        r = records.setdefault(img, {"bbox": [], "difficult": [], "det": []})
        r["bbox"].append(box), r["difficult"].append(diff), r["det"].append(False)
    npos = sum(not d for r in records.values() for d in r["difficult"])
    sel = dets.label == label
    order = np.argsort(-dets.score[sel], kind="stable")
    images, boxes = dets.image[sel][order], dets.box[sel][order]
    tp, fp = np.zeros(len(order)), np.zeros(len(order))
    for d in range(len(order)):
        r = records.get(images[d], {"bbox": [], "difficult": [], "det": []})
        bb, ovmax, jmax = boxes[d], -np.inf, -1
        bbgt = np.array(r["bbox"]).reshape(-1, 4)
        if bbgt.size > 0:
            iw = np.maximum(np.minimum(bbgt[:, 2], bb[2]) - np.maximum(bbgt[:, 0], bb[0]), 0.0)
            ih = np.maximum(np.minimum(bbgt[:, 3], bb[3]) - np.maximum(bbgt[:, 1], bb[1]), 0.0)
            inters = iw * ih
            uni = (bb[2] - bb[0]) * (bb[3] - bb[1]) + (bbgt[:, 2] - bbgt[:, 0]) * (bbgt[:, 3] - bbgt[:, 1]) - inters
            overlaps = inters / uni
            ovmax, jmax = np.max(overlaps), np.argmax(overlaps)
        if ovmax > ovthresh:
            if not r["difficult"][jmax]:
                if not r["det"][jmax]:
                    tp[d] = 1.0
                    r["det"][jmax] = True
                else:
                    fp[d] = 1.0
        else:
            fp[d] = 1.0
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return devkit_voc_ap(rec, prec, use_07_metric)


def random_scene(seed, images=30, classes=3, separated=False):
    """Ground truth and detections around it: jittered hits, duplicates, strays."""
    rng = np.random.default_rng(seed)
    gt_rows, det_rows, difficult = [], [], []
    for img in range(images):
        for k in range(rng.integers(0, 6)):
            c = int(rng.integers(classes))
            x, y = (k * 120.0, 0.0) if separated else rng.uniform(0, 200, 2)
            w, h = rng.uniform(20, 80, 2)
            gt_rows.append((img, c, x, y, x + w, y + h))
            difficult.append(bool(rng.random() < 0.15) and not separated)
            for _ in range(rng.integers(0, 3)):
                j = rng.normal(0, 0.15 * min(w, h), 4)
                det_rows.append((img, c, rng.random(), x + j[0], y + j[1], x + w + j[2], y + h + j[3]))
        for _ in range(rng.integers(0, 4)):
            x, y = rng.uniform(0, 600, 2)
            det_rows.append((img, int(rng.integers(classes)), rng.random() * 0.7, x, y, x + 30, y + 30))
    return table(det_rows), truth(gt_rows, difficult)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("iou", [0.5, 0.7])
def test_equals_the_voc_devkit(seed, iou):
    dets, gt = random_scene(seed)
    ev = evaluate(dets, gt, classes=3, iou=iou)
    for c in range(3):
        assert ev.ap[11][c] == pytest.approx(devkit_voc_ap(*_devkit_curve(dets, gt, c, iou), True), abs=1e-12)
        assert ev.ap[11][c] == pytest.approx(devkit_voc_eval(dets, gt, c, iou, True), abs=1e-12)
        assert ev.ap[0][c] == pytest.approx(devkit_voc_eval(dets, gt, c, iou, False), abs=1e-12)


def _devkit_curve(dets, gt, c, iou):
    precision, recall = precision_recall(match_detections(dets, gt, c, iou))
    return recall, precision


def _pycocotools(dets, gt, classes, images):
    sizes = [(700, 400)] * images
    ids = list(range(1, images + 1))
    return coco_stats(ground_truth_from_labels(gt, sizes, classes, ids), coco_results(dets, classes, ids), ids)


def test_hand_case_equals_pycocotools():
    stats = _pycocotools(HAND_DETS, HAND_TRUTH, 1, 1)
    assert stats["AP50"] == pytest.approx(56 / 101, abs=1e-12)
    # AP@[.5:.95]: the 2/3-IoU hit counts at IoU .5 .. .65, a false positive from .7
    ours = [average_precision(*precision_recall(match_detections(HAND_DETS, HAND_TRUTH, 0, t)), 101)
            for t in np.linspace(0.5, 0.95, 10)]
    assert stats["AP"] == pytest.approx(np.mean(ours), abs=1e-12)
    assert stats["AP"] == pytest.approx((4 * 56 / 101 + 6 * 34 / 101) / 10, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_101_point_equals_pycocotools(seed):
    # boxes 120 px apart: the devkit's and COCO's greedy matchings coincide
    dets, gt = random_scene(seed, separated=True)
    ev = evaluate(dets, gt, classes=3, iou=0.5)
    stats = _pycocotools(dets, gt, 3, 30)
    assert stats["AP50"] == pytest.approx(ev.mean_ap(101), abs=1e-9)


def test_an_overlap_exactly_at_the_threshold_is_not_a_hit():
    """The devkit's `ovmax > ovthresh` is strict: IoU exactly .5 at --iou .5 is a false positive."""
    gt = truth([(0, 0, 0, 0, 10, 10)], difficult=[False])
    dets = table([(0, 0, .9, 0, 0, 10, 20)])  # half of it over the truth box: IoU .5
    ev = evaluate(dets, gt, classes=1, iou=0.5)
    assert ev.ap[11][0] == devkit_voc_eval(dets, gt, 0, 0.5, True) == 0.0
    assert ev.ap[0][0] == devkit_voc_eval(dets, gt, 0, 0.5, False) == 0.0
