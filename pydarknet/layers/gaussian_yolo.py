"""[Gaussian_yolo]: AlexeyAB's Gaussian YOLOv3 head at inference (src/gaussian_yolo_layer.c, parser.c:parse_gaussian_yolo).

A [yolo] head (pydarknet.layers.yolo.YoloHead: classes, num, mask, anchors,
scale_x_y, nms_kind, beta_nms) whose box is a mean and an uncertainty per
coordinate: per anchor and cell 8 + 1 + classes values, x mu, x sigma, y mu,
y sigma, w mu, w sigma, h mu, h sigma, objectness, classes.

forward_gaussian_yolo_layer (CPU, `state.train = 0`): the logistic on
everything but the w and h means (which stay raw, as [yolo]'s w, h);
`scale_x_y` rescales only the x and y means: the C applies the logistic to
2*w*h values from x mu (mean and sigma) but `scal_add_cpu` to w*h of them.

get_gaussian_yolo_detections: [yolo]'s boxes from the means (get_gaussian_yolo_box:
x = (col + x mu) / grid_w, w = exp(w mu) * anchor_w / net_w, ...) for the
cells whose objectness is > thresh, and prob_j = objectness * class_j *
(1 - mean of the four sigmas) where that is > thresh.  `yolo_point`
(left_top, right_bottom; any other word is center) says which point x, y
mean: the box centre is moved by +-w/2, +-h/2.  The boxes are corrected by
correct_gaussian_yolo_boxes, which is pjreddie's correct_yolo_boxes (sizes
times `(float)netw/new_w`), not AlexeyAB's own (times `1/ratiow`).
`nms_kind` also knows `cornersnms`, whose suppression is IoU as the
default's (its box merging is commented out in box.c diounms_sort).

Training (the Gaussian loss, delta_gaussian_yolo_box) is not implemented:
`pydarknet train` refuses a network with this head, and its training-only
keys (pydarknet.cfg.dialect.TRAINING_ONLY).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from pydarknet.boxes import Candidates, decode_yolo
from pydarknet.cfg.section import Section
from pydarknet.layers.base import Shape
from pydarknet.layers.yolo import NMS_KINDS, YoloHead

# The entries (entry_gaussian_index's `entry`) of the box means; the sigmas are the odd ones, 1, 3, 5, 7.
MEANS = (0, 2, 4, 6)
# parse_gaussian_yolo's yolo_point words; any other is YOLO_CENTER.
YOLO_POINTS = ("center", "left_top", "right_bottom")


class GaussianYolo(YoloHead):
    kind = "gaussian_yolo"
    coords = 8
    nms_kinds = (*NMS_KINDS, "cornersnms")

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index, shapes)
        point = section.get_str("yolo_point", "center")
        self.yolo_point = point if point in YOLO_POINTS else "center"

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        v = x.view(b, self.num, self.entries, h, w)
        act = torch.sigmoid(v)
        xy = self.scale_xy(act[:, :, 0:3:2])  # x mu, y mu; their sigmas are not scaled
        parts = [xy[:, :, :1], act[:, :, 1:2], xy[:, :, 1:], act[:, :, 3:4],
                 v[:, :, 4:5], act[:, :, 5:6], v[:, :, 6:7], act[:, :, 7:]]
        return torch.cat(parts, dim=2).view(b, -1, h, w)

    def detections(self, output: Tensor, net_w: int, net_h: int, thresh: float) -> Candidates:
        """get_gaussian_yolo_detections before correct_gaussian_yolo_boxes, batched (see the module docstring).

        `output` is the layer's output (B, C, H, W).  Detection (row*W + col)*num
        + anchor, only those with objectness > thresh: [yolo]'s decode
        (pydarknet.boxes.decode_yolo) of the means, objectness and classes.
        """
        b, _, h, w = output.shape
        v = output.view(b, self.num, self.entries, h, w)
        found = decode_yolo(self, v[:, :, [*MEANS, *range(self.coords, self.entries)]].reshape(b, -1, h, w),
                            net_w, net_h, thresh)
        cell, anchor = found.index // self.num, found.index % self.num
        entries = v[found.image, anchor, :, cell // w, cell % w]  # (K, entries)
        # C: float uc_aver = (uc[0] + uc[1] + uc[2] + uc[3]) / 4.0; prob = objectness*class * (1.0 - uc_aver) in double
        uc_aver = (entries[:, 1] + entries[:, 3] + entries[:, 5] + entries[:, 7]) / 4
        prob = ((found.objectness[:, None] * entries[:, self.coords + 1 :]).double()
                * (1 - uc_aver.double())[:, None]).to(output.dtype)
        boxes = found.boxes
        if self.yolo_point != "center":  # get_gaussian_yolo_box: x = (i + x mu)/lw + b.w/2 (left_top), - b.w/2 (right_bottom)
            half = boxes[:, 2:] / 2
            boxes = torch.cat([boxes[:, :2] + half if self.yolo_point == "left_top" else boxes[:, :2] - half,
                               boxes[:, 2:]], dim=1)
        return dataclasses.replace(found, boxes=boxes, probs=torch.where(prob > thresh, prob, 0))
