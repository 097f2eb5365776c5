"""[Gaussian_yolo]: AlexeyAB's Gaussian YOLOv3 head at inference (src/gaussian_yolo_layer.c, parser.c:parse_gaussian_yolo).

A [yolo] head (pydarknet.layers.yolo.YoloHead: classes, num, mask, anchors,
scale_x_y, nms_kind, beta_nms) whose box is a mean and an uncertainty per
coordinate: per anchor and cell 8 + 1 + classes values, x mu, x sigma, y mu,
y sigma, w mu, w sigma, h mu, h sigma, objectness, classes.

forward_gaussian_yolo_layer (CPU, `state.train = 0`): the logistic on
everything but the w and h means (which stay raw, as [yolo]'s w, h);
`scale_x_y` rescales only the x and y means: the C applies the logistic to
2*w*h values from x mu (mean and sigma) but `scal_add_cpu` to w*h of them.

get_gaussian_yolo_detections (decoded by pydarknet.infer.decode.decode_gaussian_yolo:
layers do not decode): [yolo]'s boxes from the means (get_gaussian_yolo_box:
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

import torch
from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.base import Shape
from pydarknet.layers.yolo import NMS_KINDS, YoloHead

# The entries (entry_gaussian_index's `entry`) of the box means x, y, w, h and of their sigmas (uncertainties).
MEANS = (0, 2, 4, 6)
SIGMAS = (1, 3, 5, 7)
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
