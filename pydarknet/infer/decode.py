"""Darknet's detection heads decoded: boxes, objectness and class probabilities, and the letterbox undone.

Boxes are (x, y, w, h) centre and size, relative (0..1) to the network input
before `correct_region_boxes` and to the original image after it.  Decoding is
batched: a head output (B, C, H, W) gives N detections per image in
Darknet's order (src/region_layer.c:get_region_detections,
src/yolo_layer.c:get_yolo_detections), of which only those with nonzero
objectness are decoded (`Candidates`): Darknet's do_nms_sort drops the
others.  (AlexeyAB's [region], objectness 1 everywhere and its own order:
`decode_region_alexeyab`.)  NMS over them: `pydarknet.infer.nms`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from pydarknet.infer.hierarchy import hierarchy_predictions, hierarchy_top_prediction, tree_index
from pydarknet.image import letterbox_geometry
from pydarknet.layers.detection_layer import DetectionLayer
from pydarknet.layers.gaussian_yolo import MEANS, SIGMAS, GaussianYolo
from pydarknet.layers.region import Region
from pydarknet.layers.yolo import YoloHead


@dataclass
class Candidates:
    """The detections of a batch whose objectness is not 0: the only ones Darknet's do_nms_sort keeps.

    Row r is detection `index[r]` (Darknet's order, heads in cfg order) of
    image `image[r]`, ascending within each image; `count` is the number of
    detections per image, kept or not.  `boxes` (K, 4), `objectness` (K,)
    and `probs` (K, classes) are what Darknet fills them with.  (AlexeyAB's
    [region] gives every detection objectness 1: only those with a nonzero
    prob, the only ones its NMS and output see, are rows.)
    """

    image: Tensor
    index: Tensor
    boxes: Tensor
    objectness: Tensor
    probs: Tensor
    count: int

    @classmethod
    def cat(cls, parts: list[Candidates]) -> Candidates:
        """The heads' candidates as one array per image, heads in order."""
        if len(parts) == 1:
            return parts[0]
        offsets = [sum(p.count for p in parts[:i]) for i in range(len(parts))]
        return cls(torch.cat([p.image for p in parts]), torch.cat([p.index + o for p, o in zip(parts, offsets)]),
                   torch.cat([p.boxes for p in parts]), torch.cat([p.objectness for p in parts]),
                   torch.cat([p.probs for p in parts]), sum(p.count for p in parts))


def _above(x: Tensor, thresh: float) -> Tensor:
    """Darknet's `(x > thresh) ? x : 0`."""
    return torch.where(x > thresh, x, 0)


def _anchor_boxes(v: Tensor, cells: tuple[Tensor, Tensor, Tensor, Tensor], entries: Tensor, anchors: Tensor,
                  scale_w: float, scale_h: float, new_coords: bool = False) -> Tensor:
    """get_region_box / get_yolo_box for the (image, anchor, row, col) `cells` of v (B, num, entries, H, W): (K, 4).

    `entries` (K, entries) are the cells' values.  Darknet:
    x = (col + out_x) / grid_w, y = (row + out_y) / grid_h,
    w = exp(out_w) * anchor_w / scale_w, h = exp(out_h) * anchor_h / scale_h.
    exp runs over the whole map, as it always did here: a vectorised and a
    scalar exp need not agree in the last bit.  AlexeyAB's `new_coords=1`
    (get_yolo_box): w = out_w * out_w * 4 * anchor_w / scale_w, h likewise.
    """
    _, anchor, row, col = cells
    h, w = v.shape[-2:]
    xy = (torch.stack([col, row], dim=1).to(v.dtype) + entries[:, :2]) / torch.tensor([w, h], dtype=v.dtype, device=v.device)
    if new_coords:
        wh = entries[:, 2:4] * entries[:, 2:4] * 4 * anchors.to(v)[anchor]
    else:
        wh = torch.stack([torch.exp(v[:, :, 2]), torch.exp(v[:, :, 3])], dim=-1)[cells] * anchors.to(v)[anchor]
    return torch.cat([xy, wh / torch.tensor([scale_w, scale_h], dtype=v.dtype, device=v.device)], dim=1)


def decode_region(layer: Region, output: Tensor, thresh: float, hier_thresh: float) -> Candidates:
    """Darknet's get_region_detections (before correct_region_boxes), batched.

    `output` is the activated [region] output (B, C, H, W).  Detection n*H*W + i
    is anchor n at cell i.  objectness = obj if obj > thresh else 0 (obj is 1
    with `background`).  Without a tree, prob = obj * class where
    objectness != 0 and obj * class > thresh.  With a tree (YOLO9000), the
    classes go through hierarchy_predictions and only the class
    hierarchy_top_prediction picks gets a prob: objectness.  The cfg's
    `map=` is not used: Darknet's test_detector passes no map.  Only the
    detections with objectness != 0 are decoded.
    """
    b, _, h, w = output.shape
    v = output.view(b, layer.num, layer.entries, h, w)
    scale = torch.ones_like(v[:, :, 0]) if layer.background else v[:, :, layer.coords]
    image, anchor, row, col = cells = torch.nonzero(_above(scale, thresh)).unbind(1)
    entries = v[image, anchor, :, row, col]
    objectness = scale[cells]
    classes = entries[:, layer.coords + 1 :]
    if layer.tree is not None:
        index = tree_index(layer.tree, output.device)
        top = hierarchy_top_prediction(hierarchy_predictions(classes, index), index, hier_thresh)
        probs = torch.zeros_like(classes)
        probs[torch.arange(classes.shape[0], device=output.device), top] = objectness
    else:
        probs = _above(objectness[:, None] * classes, thresh)
    return Candidates(image, (anchor * h + row) * w + col, _anchor_boxes(v, cells, entries, layer.anchors, w, h),
                      objectness, probs, layer.num * h * w)


def decode_region_alexeyab(layer: Region, output: Tensor, thresh: float, every: bool = False) -> Candidates:
    """AlexeyAB's custom_get_region_detections (src/network.c) over its get_region_boxes (src/region_layer.c), batched.

    Before correct_yolo_boxes: AlexeyAB corrects [region] boxes as [yolo]'s
    (`correct_region_boxes(.., dialect="alexeyab")`).  Where pjreddie's
    get_region_detections differs:

    - the order: AlexeyAB's [region] output is flattened (cell, anchor,
      entry), detection `index = i*l.n + n`, so detection (row*W + col)*num
      + anchor (pjreddie: n*W*H + cell);
    - `dets[j].objectness = 1` for all W*H*num of them: do_nms_sort swaps
      nothing to the end (the NMS starts from the array order), and
      `Detection.objectness` is 1;
    - `float scale = predictions[p_index]` (entry 4: `background` is not
      read), `if(l.classfix == -1 && scale < .5) scale = 0`;
    - without a tree, `prob = scale*predictions[class_index+j]`,
      `probs[index][j] = (prob > thresh) ? prob : 0` whatever the scale
      (no `objectness` gate);
    - with a tree, `hierarchy_predictions(.., only_leaves=0)`, then from the
      last class down the first whose absolute probability is > .5 keeps
      it (not times scale), the others 0, `probs = (scale > thresh) ? prob
      : 0`: hier_thresh is not used (custom_get_region_detections does not
      pass `hier` on), nor hierarchy_top_prediction.

    The boxes are get_region_box's (the logistic on x, y in AlexeyAB is
    pydarknet's forward's), times w = h = 1.  Only the detections with a
    nonzero prob are decoded (the others take no part in do_nms_sort, and
    Darknet prints none of them), or with `every` all W*H*num of the array
    (do_nms_obj, which `detector recall` runs, sees them all: objectness 1);
    `count` is all W*H*num.  AlexeyAB reads
    `index*(l.classes + 5)`: `coords` other than 4 are misread in C and are
    not reproduced here (the layer's own entries are used).
    """
    b, _, h, w = output.shape
    v = output.view(b, layer.num, layer.entries, h, w)
    scale = v[:, :, layer.coords]
    if layer.classfix == -1:  # C: if(l.classfix == -1 && scale < .5) scale = 0;
        scale = torch.where(scale < 0.5, 0, scale)
    if layer.tree is None:
        dense = _above(scale[:, :, None] * v[:, :, layer.coords + 1 :], thresh)  # (B, num, classes, H, W)
        hit = (dense != 0).any(dim=2)
    else:
        hit = scale > thresh
    if every:
        hit = torch.ones_like(hit)
    image, row, col, anchor = torch.nonzero(hit.permute(0, 2, 3, 1)).unbind(1)  # C: index = i*l.n + n
    cells = image, anchor, row, col
    entries = v[image, anchor, :, row, col]
    if layer.tree is None:
        probs = dense[image, anchor, :, row, col]
    else:
        absolute = hierarchy_predictions(entries[:, layer.coords + 1 :], tree_index(layer.tree, output.device))
        above = absolute > 0.5  # C: for(j = l.classes - 1; j >= 0; --j) if(!found && predictions[class_index + j] > .5)
        top = layer.classes - 1 - torch.flip(above, dims=[1]).int().argmax(dim=1)
        rows = torch.arange(len(top), device=output.device)
        probs = torch.zeros_like(absolute)
        probs[rows, top] = torch.where(above[rows, top], absolute[rows, top], 0)
    objectness = torch.ones_like(scale[cells])  # C: dets[j].objectness = 1;
    return Candidates(image, (row * w + col) * layer.num + anchor, _anchor_boxes(v, cells, entries, layer.anchors, w, h),
                      objectness, probs, layer.num * h * w)


def decode_yolo(layer: YoloHead, output: Tensor, net_w: int, net_h: int, thresh: float) -> Candidates:
    """Darknet's get_yolo_detections (before correct_yolo_boxes), batched.

    Anchors are pixels of the network input (this layer's `mask` of them).
    Darknet keeps only boxes with obj > thresh, cell by cell then anchor by
    anchor: detection (row*W + col)*num + anchor.  prob = obj * class where
    that is > thresh.  (AlexeyAB's `new_coords`: see `_anchor_boxes`.)
    A head with other box entries than x, y, w, h (a [Gaussian_yolo]:
    `decode_gaussian_yolo`) is refused rather than misread.
    """
    if layer.coords != 4:
        raise ValueError(f"decode_yolo decodes 4-coordinate heads; [{layer.kind}] has coords={layer.coords} "
                         "(decode_gaussian_yolo decodes [Gaussian_yolo])")
    b, _, h, w = output.shape
    v = output.view(b, layer.num, layer.entries, h, w)
    found, _ = _yolo_candidates(layer, v, v[:, :, :4], net_w, net_h, thresh)
    return dataclasses.replace(found, probs=_above(found.probs, thresh))


def decode_gaussian_yolo(layer: GaussianYolo, output: Tensor, net_w: int, net_h: int, thresh: float) -> Candidates:
    """AlexeyAB's get_gaussian_yolo_detections (src/gaussian_yolo_layer.c) before correct_gaussian_yolo_boxes, batched.

    `layer` is a [Gaussian_yolo] head (pydarknet.layers.gaussian_yolo), `output`
    its output (B, C, H, W): per anchor x mu, x sigma, y mu, y sigma, w mu,
    w sigma, h mu, h sigma, objectness, classes.  [yolo]'s decode
    (`_yolo_candidates`) of the means, objectness and classes: detection
    (row*W + col)*num + anchor, only those with objectness > thresh, box
    get_gaussian_yolo_box (x = (col + x mu) / grid_w, w = exp(w mu) *
    anchor_w / net_w, ...), moved by +-w/2, +-h/2 for `yolo_point`
    left_top / right_bottom; prob_j = objectness * class_j * (1 - mean of
    the four sigmas) where that is > thresh.
    """
    b, _, h, w = output.shape
    v = output.view(b, layer.num, layer.entries, h, w)
    found, entries = _yolo_candidates(layer, v, v[:, :, list(MEANS)], net_w, net_h, thresh)
    # C: float uc_aver = (uc[0] + uc[1] + uc[2] + uc[3]) / 4.0; float prob = objectness*class * (1.0 - uc_aver) (in double)
    s0, s1, s2, s3 = (entries[:, i] for i in SIGMAS)
    uc_aver = (s0 + s1 + s2 + s3) / 4
    prob = (found.probs.double() * (1 - uc_aver.double())[:, None]).to(output.dtype)
    boxes = found.boxes
    point = layer.yolo_point
    if point != "center":  # get_gaussian_yolo_box: x = (i + x mu)/lw + b.w/2 (left_top), - b.w/2 (right_bottom)
        half = boxes[:, 2:] / 2
        boxes = torch.cat([boxes[:, :2] + half if point == "left_top" else boxes[:, :2] - half, boxes[:, 2:]], dim=1)
    return dataclasses.replace(found, boxes=boxes, probs=_above(prob, thresh))


def _yolo_candidates(layer: YoloHead, v: Tensor, box: Tensor, net_w: int, net_h: int,
                     thresh: float) -> tuple[Candidates, Tensor]:
    """What get_yolo_detections and get_gaussian_yolo_detections share: (candidates, their entries (K, entries)).

    `v` (B, num, entries, H, W) is the head's output, `box` (B, num, 4, H, W)
    its x, y, w, h entries.  The cells whose objectness (entry `coords`) is
    > thresh, cell by cell then anchor by anchor, their boxes, and as
    `probs` objectness * class (float), not yet thresholded.
    """
    h, w = v.shape[-2:]
    image, row, col, anchor = torch.nonzero(_above(v[:, :, layer.coords], thresh).permute(0, 2, 3, 1)).unbind(1)
    cells = image, anchor, row, col
    entries = v[image, anchor, :, row, col]
    objectness = entries[:, layer.coords]
    probs = objectness[:, None] * entries[:, layer.coords + 1 :]
    anchors = layer.anchors[torch.tensor(layer.mask, device=layer.anchors.device)]
    boxes = _anchor_boxes(box, cells, box[image, anchor, :, row, col], anchors, net_w, net_h, bool(layer.new_coords))
    found = Candidates(image, (row * w + col) * layer.num + anchor, boxes, objectness, probs, h * w * layer.num)
    return found, entries


def decode_detection(layer: DetectionLayer, output: Tensor, thresh: float) -> Candidates:
    """pjreddie's get_detection_detections (src/detection_layer.c) with w = h = 1, as examples/yolo.c test_yolo: batched.

    `output` (B, side*side*((1+coords)*num + classes), 1, 1): the class
    values of every cell, then the `num` scales per cell, then the boxes.
    Detection i*num + n (cell i, box n) has x = (out_x + col) / side, y
    likewise, w = pow(out_w, sqrt ? 2 : 1) (in double), h likewise,
    objectness = scale and prob_j = scale * class_j where that is > thresh:
    every box is a detection, whatever its scale (random weights make it
    negative); only those with scale != 0 are decoded (do_nms_sort drops
    the others).
    """
    b = output.shape[0]
    side, num, classes = layer.side, layer.num, layer.classes
    cells = side * side
    flat = output.reshape(b, -1)
    cls = flat[:, : cells * classes].view(b, cells, 1, classes)
    scale = flat[:, cells * classes : cells * (classes + num)].view(b, cells, num)
    coords = flat[:, cells * (classes + num) : cells * (classes + num) + cells * num * 4].view(b, cells, num, 4)
    image, cell, n = torch.nonzero(scale != 0).unbind(1)
    objectness = scale[image, cell, n]
    entries = coords[image, cell, n]
    grid = torch.stack([cell % side, cell // side], dim=1).to(output.dtype)
    xy = (entries[:, :2] + grid) / side
    wh = entries[:, 2:].double().pow(2).to(output.dtype) if layer.sqrt else entries[:, 2:]
    probs = _above(objectness[:, None] * cls[image, cell, 0], thresh)
    return Candidates(image, cell * num + n, torch.cat([xy, wh], dim=1), objectness, probs, cells * num)


def correct_region_boxes(boxes: Tensor, image_sizes: list[tuple[int, int]], net_w: int, net_h: int, letterbox: bool,
                  image: Tensor | None = None, dialect: str = "pjreddie") -> Tensor:
    """Darknet's correct_region_boxes / correct_yolo_boxes (relative=1), per image.

    Boxes relative to the network input become relative to the image
    (width, height) of `image_sizes`: x = (x - (netw - new_w)/2./netw) /
    ((float)new_w/netw), w *= (float)netw/new_w, likewise y and h, with
    (new_w, new_h) the letterbox size.  With a plain resize (`letter_box=0`)
    the boxes are already relative to the image.  `boxes` is (B, N, 4), or
    (K, 4) with `image` (K,) the image of each box.  AlexeyAB's
    correct_yolo_boxes(.., letter) scales the sizes by `1 / ratiow` (float)
    rather than `(float)netw / new_w`: `dialect="alexeyab"`.
    """
    if not letterbox:
        return boxes
    geometry = [letterbox_geometry(iw, ih, net_w, net_h) for iw, ih in image_sizes]
    new = torch.tensor(geometry, dtype=torch.float32, device=boxes.device)
    new = new[:, None, :] if image is None else new[image]  # (B, 1, 2) or (K, 2)
    net = torch.tensor([net_w, net_h], dtype=torch.float32, device=boxes.device)
    ratio = new / net  # Darknet: (float)new_w / netw
    offset = (net.double() - new.double()) / 2.0 / net.double()  # Darknet: (netw - new_w)/2./netw, in double
    centre = ((boxes[..., :2].double() - offset) / ratio.double()).to(boxes.dtype)
    size = boxes[..., 2:] * (1 / ratio if dialect == "alexeyab" else net / new)
    return torch.cat([centre, size], dim=-1)
