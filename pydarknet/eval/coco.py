"""COCO mAP@[.5:.95] through pycocotools (the real `COCOeval`, not a re-derivation).

Ground truth is either a COCO annotation JSON (images identified by
Darknet's `get_coco_image_id` of their paths) or built from the label files
and the image sizes.  Category ids follow Darknet's `coco_ids` table for up
to 80 classes (so results line up with `coco_results.json`), else class + 1.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from pydarknet.errors import DarknetError
from pydarknet.eval.ap import DetectionTable, TruthTable
from pydarknet.eval.results import COCO_IDS

STAT_NAMES = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
              "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large")


def category_ids(classes: int) -> list[int]:
    return list(COCO_IDS[:classes]) if classes <= len(COCO_IDS) else list(range(1, classes + 1))


def _quiet():  # pycocotools prints progress on stdout
    return contextlib.redirect_stdout(io.StringIO())


def ground_truth_from_labels(truth: TruthTable, sizes: list[tuple[int, int]], classes: int, image_ids: list[int]):
    """A pycocotools `COCO` holding the label boxes (pixels), one image per id with its size."""
    from pycocotools.coco import COCO

    ids = category_ids(classes)
    xywh = np.concatenate([truth.box[:, :2], truth.box[:, 2:] - truth.box[:, :2]], axis=1)
    annotations = [{"id": k + 1, "image_id": image_ids[int(i)], "category_id": ids[int(c)], "bbox": [float(v) for v in b],
                    "area": float(b[2] * b[3]), "iscrowd": 0} for k, (i, c, b) in enumerate(zip(truth.image, truth.label, xywh))]
    gt = COCO()
    gt.dataset = {"images": [{"id": i, "width": w, "height": h} for i, (w, h) in zip(image_ids, sizes)],
                  "annotations": annotations, "categories": [{"id": i} for i in ids]}
    with _quiet():
        gt.createIndex()
    return gt


def ground_truth_from_json(path: str):
    """A pycocotools `COCO` from an annotation file (instances_*.json)."""
    from pycocotools.coco import COCO

    try:
        with _quiet():
            return COCO(path)
    except (OSError, ValueError, KeyError, TypeError, AssertionError) as err:  # pycocotools asserts on the format
        raise DarknetError(f"{path}: not a COCO annotation file: {err}") from None


def coco_results(dets: DetectionTable, classes: int, image_ids: list[int]) -> list[dict]:
    """Detections as COCO result dicts ([x, y, w, h] pixels)."""
    ids = category_ids(classes)
    return [{"image_id": image_ids[int(i)], "category_id": ids[int(c)], "score": float(s),
             "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
            for i, c, s, b in zip(dets.image, dets.label, dets.score, dets.box)]


def coco_stats(gt, results: list[dict], image_ids: list[int]) -> dict[str, float]:
    """COCOeval('bbox') over `image_ids`: its 12 summary numbers (AP@[.5:.95], AP50, ...)."""
    from pycocotools.cocoeval import COCOeval

    if not results:
        return dict.fromkeys(STAT_NAMES, 0.0)
    with _quiet():
        try:
            dt = gt.loadRes(results)
        except AssertionError:  # pycocotools: "Results do not correspond to current coco set"
            raise DarknetError("the COCO annotations do not hold the valid images (their ids, from the file names, are not in it)") from None
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.params.imgIds = sorted(set(image_ids))
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return dict(zip(STAT_NAMES, map(float, evaluator.stats)))
