"""The line a Darknet loss layer prints at each forward in training, and the sums behind it.

pjreddie's forward_region_layer prints `Region Avg IOU: ..., Class: ..., Obj: ..., No Obj: ..., Avg
Recall: ...,  count: N` and its forward_yolo_layer `Region L Avg IOU: ..., .5R: ..., .75R: ...,  count: N`
(L the layer's index), both on stdout: the sums over the truths that trained an anchor (`Tally`) divided
by their count, in float.  AlexeyAB's [yolo] prints its `v3 (...)` line on stderr
(pydarknet.layers.yolo_alexeyab), and its train_network_datum the counts of its [yolo] box deltas
(`BoxCounts`).  Numbers as printf's `%f` prints a float, a 0/0 as glibc prints the x86 default NaN: `-nan`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from torch import Tensor


def c_ratio(total: float, count: float) -> float:
    """`total / count` in C float arithmetic (a float over an int): 0/0 is NaN, x/0 infinite."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float32(total) / np.float32(count))


def c_number(value: float) -> str:
    """printf("%f") of a float: `-nan` for NaN (x86's 0/0), `inf`/`-inf`, else six decimals."""
    if math.isnan(value):
        return "-nan"
    return f"{value:f}"


def c_mean(total: float | Tensor, count: float | Tensor) -> str:
    """printf("%f", total / count) of C's float division (a tensor sum read here, once per line)."""
    return c_number(c_ratio(float(total), float(count)))


@dataclass
class Tally:
    """The running sums of pjreddie's forward_region_layer and forward_yolo_layer: over the truths that trained
    an anchor, their IoU with its box (`avg_iou`; above .5 and .75: `recall`, `recall75`), its objectness
    (`avg_obj`) and class probability (`avg_cat`, added by delta_*_class); over every anchor of the images
    searched, the objectness (`avg_anyobj`)."""

    iou: float | Tensor = 0.0  # sums stay tensors until the line reads them: no device sync per truth
    recall: int | Tensor = 0
    recall75: int | Tensor = 0
    cat: float | Tensor = 0.0
    obj: float | Tensor = 0.0
    anyobj: float | Tensor = 0.0
    count: int = 0
    class_count: int = 0

    def truths(self, iou: Tensor, obj: Tensor, cat: Tensor) -> None:
        """Add the truths (one row each) that trained an anchor: `++count; ++class_count`."""
        self.iou += iou.double().sum()
        self.recall += (iou > 0.5).sum()
        self.recall75 += (iou > 0.75).sum()
        self.obj += obj.double().sum()
        self.cat += cat.double().sum()
        self.count += len(iou)
        self.class_count += len(iou)

    def region_line(self, anchors: int) -> str:
        """forward_region_layer's printf; `anchors` = l.w*l.h*l.n*l.batch."""
        return (f"Region Avg IOU: {c_mean(self.iou, self.count)}, Class: {c_mean(self.cat, self.class_count)}, "
                f"Obj: {c_mean(self.obj, self.count)}, No Obj: {c_mean(self.anyobj, anchors)}, "
                f"Avg Recall: {c_mean(self.recall, self.count)},  count: {self.count}")

    def yolo_line(self, index: int, anchors: int) -> str:
        """pjreddie's forward_yolo_layer printf; `index` the layer's (net.index)."""
        return (f"Region {index} Avg IOU: {c_mean(self.iou, self.count)}, Class: {c_mean(self.cat, self.class_count)}, "
                f"Obj: {c_mean(self.obj, self.count)}, No Obj: {c_mean(self.anyobj, anchors)}, "
                f".5R: {c_mean(self.recall, self.count)}, .75R: {c_mean(self.recall75, self.count)},  count: {self.count}")


@dataclass
class BoxCounts:
    """AlexeyAB's network-wide counters of its [yolo] box deltas (`net.total_bbox`, `net.rewritten_bbox`, src/network.c
    and yolo_layer.c): the delta_yolo_box calls, and those that found the anchor's box delta already written (by
    another truth on that anchor of the cell, or by the truth_thresh match of the first loop), summed over every
    [yolo] layer and mini-batch since the training started."""

    total: int = 0
    rewritten: int | Tensor = 0  # a tensor sum until the line reads it: no device sync per truth

    def line(self) -> str:
        """What train_network_datum prints on stderr after each mini-batch once `total` > 0:
        ` total_bbox = %d, rewritten_bbox = %f %% ` of `100 * (float)rewritten / total`, in float."""
        percent = c_mean(np.float32(100) * np.float32(float(self.rewritten)), self.total)
        return f" total_bbox = {self.total}, rewritten_bbox = {percent} % "
