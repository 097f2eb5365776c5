"""Darknet's `detector recall` (src/detector.c validate_detector_recall): how many label boxes the proposals find.

For each image of the valid list, `resize_image` to the network (never a
letterbox), predict, `get_network_boxes(w, h of the network, thresh .001,
hier .5, relative 1, letter 0)`, `do_nms_obj(.4)`; the proposals are the
detections whose objectness is still > .001.  Each label box counts as found
when its best box_iou with a proposal is > .5; the IoUs are summed in float.
After every image Darknet prints
`%5d %5d %5d\\tRPs/Img: %.2f\\tIOU: %.2f%%\\tRecall:%.2f%%`: the image index,
boxes found, label boxes so far, proposals per image, mean best IoU, recall.

AlexeyAB's version is followed in both dialects: the `valid=` list of the
.data file (pjreddie's reads `data/coco_val_5k.list` whatever the .data
says, and looks at the first head's boxes only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pydarknet.infer.detect import candidates
from pydarknet.infer.nms import nms_obj
from pydarknet.layers.boxes import pairwise_iou
from pydarknet.network import Darknet

THRESH, HIER_THRESH, NMS, IOU_THRESH = 0.001, 0.5, 0.4, 0.5  # validate_detector_recall's constants


@dataclass
class RecallCount:
    """validate_detector_recall's running totals."""

    images: int = 0
    total: int = 0
    correct: int = 0
    proposals: int = 0
    iou_sum: np.float32 = np.float32(0)  # C: float avg_iou

    def add(self, proposals: np.ndarray, truth: np.ndarray) -> None:
        """Count one image: its proposals' boxes (K, 4) and its label boxes (T, 4), relative x y w h, float32."""
        self.images += 1
        self.proposals += len(proposals)
        if not len(truth):
            return
        ious = pairwise_iou(torch.from_numpy(truth), torch.from_numpy(proposals)).numpy()
        best = np.where(np.isnan(ious), 0, ious).max(axis=1, initial=0)  # C: iou > best_iou, from 0
        for iou in best:  # C: avg_iou += best_iou, one float addition at a time
            self.iou_sum = np.float32(self.iou_sum + iou)
        self.total += len(truth)
        self.correct += int((best > np.float32(IOU_THRESH)).sum())

    def line(self) -> str:
        """Darknet's line after the last image counted."""
        rps = np.float32(self.proposals) / np.float32(self.images)  # C: (float)proposals / (i + 1)
        if self.total:
            iou = f"{np.float32(self.iou_sum * np.float32(100)) / np.float32(self.total):.2f}"
            recall = f"{100.0 * self.correct / self.total:.2f}"
        else:
            iou = recall = "-nan"  # C: 0.f/0 and 0./0, the x86 default NaN, printed by glibc as -nan
        return f"{self.images - 1:5d} {self.correct:5d} {self.total:5d}\tRPs/Img: {rps:.2f}\tIOU: {iou}%\tRecall:{recall}%"


def batch_proposals(net: Darknet, heads: list[torch.Tensor]) -> list[np.ndarray]:
    """The proposals of each image of a batch of head outputs: float32 boxes (K, 4) relative to the image.

    get_network_boxes on the network's own size (the image was resized to it:
    the boxes need no correction), do_nms_obj, objectness > thresh.
    """
    size = (net.width, net.height)
    found = candidates(net, heads, [size] * len(heads[0]), THRESH, HIER_THRESH, letterbox=False, every=True)
    image, boxes, objectness = (t.cpu().numpy() for t in (found.image, found.boxes, found.objectness))
    result = []
    for i in range(len(heads[0])):
        mine = image == i
        own_boxes, own_objectness = boxes[mine], objectness[mine]
        order, suppressed = nms_obj(own_boxes, own_objectness, NMS)
        kept = order[~suppressed]
        result.append(own_boxes[kept[own_objectness[kept] > np.float32(THRESH)]])
    return result
