"""Darknet's box overlap (src/box.c: overlap, box_intersection, box_iou).

Boxes are (..., 4) tensors of centre x, centre y, width, height; shapes
broadcast.  Darknet's IoU is intersection / (area_a + area_b - intersection)
with a zero intersection when either overlap is negative.  AlexeyAB's box.c,
for its [yolo] loss (pydarknet.layers.yolo_alexeyab): its box_iou (0 when the
intersection or the union is 0), box_giou, box_diou, box_ciou, box_iou_kind
and the gradient dx_box_iou.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _overlap(c1: Tensor, s1: Tensor, c2: Tensor, s2: Tensor) -> Tensor:
    left = (c1 - s1 / 2).maximum(c2 - s2 / 2)
    right = (c1 + s1 / 2).minimum(c2 + s2 / 2)
    return right - left


def _intersection_union(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """box.c box_intersection (0 when an overlap is negative) and box_union."""
    w = _overlap(a[..., 0], a[..., 2], b[..., 0], b[..., 2])
    h = _overlap(a[..., 1], a[..., 3], b[..., 1], b[..., 3])
    inter = (w * h).masked_fill((w < 0) | (h < 0), 0.0)
    return inter, a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Darknet's box_iou of boxes `a` and `b` (x, y, w, h), broadcast over leading dims."""
    inter, union = _intersection_union(a, b)
    return inter / union


def pairwise_iou(a: Tensor, b: Tensor) -> Tensor:
    """Darknet's box_iou between every box of `a` (N, 4) and of `b` (M, 4): (N, M)."""
    return box_iou(a[:, None, :], b[None, :, :])


# ---------------------------------------------------------------------------------------------------------------
# AlexeyAB's box.c (59596d78): the overlaps of its [yolo] loss and their gradient (dx_box_iou).
# ---------------------------------------------------------------------------------------------------------------

OVERLAP_KINDS = ("iou", "giou", "diou", "ciou")  # AlexeyAB's IOU_LOSS values that are overlaps (mse is the other)


def _edges(b: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """box.c to_tblr: (left, right, top, bottom) of boxes (x, y, w, h)."""
    return b[..., 0] - b[..., 2] / 2, b[..., 0] + b[..., 2] / 2, b[..., 1] - b[..., 3] / 2, b[..., 1] + b[..., 3] / 2


def _enclosing_size(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """box.c box_c: width and height of the smallest box enclosing `a` and `b` (fmin/fmax: a NaN edge gives the other)."""
    al, ar, at, ab = _edges(a)
    bl, br, bt, bb = _edges(b)
    return torch.fmax(ar, br) - torch.fmin(al, bl), torch.fmax(ab, bb) - torch.fmin(at, bt)


def _enclosing_diagonal(a: Tensor, b: Tensor) -> Tensor:
    """The squared diagonal of box_c, c = w*w + h*h (box_diou, box_ciou, dx_box_iou)."""
    cw, ch = _enclosing_size(a, b)
    return cw * cw + ch * ch


def _centre_distance(a: Tensor, b: Tensor) -> Tensor:
    """The squared distance of the box centres."""
    return (a[..., 0] - b[..., 0]) * (a[..., 0] - b[..., 0]) + (a[..., 1] - b[..., 1]) * (a[..., 1] - b[..., 1])


def _alexeyab_ratio(inter: Tensor, union: Tensor) -> Tensor:
    """AlexeyAB's box_iou from I and U: I / U, but 0 when I or U is 0 (pjreddie's `box_iou` divides whatever they are)."""
    return torch.where((inter == 0) | (union == 0), torch.zeros_like(inter), inter / union)


def alexeyab_box_iou(a: Tensor, b: Tensor) -> Tensor:
    """AlexeyAB's box_iou (`_alexeyab_ratio`)."""
    return _alexeyab_ratio(*_intersection_union(a, b))


def box_giou(a: Tensor, b: Tensor) -> Tensor:
    """AlexeyAB's box_giou: IoU - (C - U) / C, C the area of box_c; the IoU when C == 0."""
    cw, ch = _enclosing_size(a, b)
    c = cw * ch
    inter, union = _intersection_union(a, b)
    iou = _alexeyab_ratio(inter, union)
    return torch.where(c == 0, iou, iou - (c - union) / c)


def box_diou(a: Tensor, b: Tensor) -> Tensor:
    """AlexeyAB's box_diou: IoU - (d / c)^0.6 (pow in double), d the squared centre distance, c box_c's
    squared diagonal; the IoU when c == 0."""
    c = _enclosing_diagonal(a, b)
    iou = alexeyab_box_iou(a, b)
    u = (_centre_distance(a, b) / c).double().pow(0.6).to(iou.dtype)
    return torch.where(c == 0, iou, iou - u)


def _aspect_gap(a: Tensor, b: Tensor) -> Tensor:
    """atan(b.w / b.h) - atan(a.w / a.h), in double as box.c computes it (atan of floats)."""
    return torch.atan((b[..., 2] / b[..., 3]).double()) - torch.atan((a[..., 2] / a[..., 3]).double())


def box_ciou(a: Tensor, b: Tensor) -> Tensor:
    """AlexeyAB's box_ciou (a the prediction, b the truth): IoU - (d/c + alpha * v), v = 4/pi^2 (atan(b.w/b.h) -
    atan(a.w/a.h))^2, alpha = v / (1 - IoU + v + .000001); the IoU when c == 0."""
    c = _enclosing_diagonal(a, b)
    iou = alexeyab_box_iou(a, b)
    v = (4 / (math.pi * math.pi) * _aspect_gap(a, b) * _aspect_gap(a, b)).to(iou.dtype)
    alpha = v / (1 - iou + v + 0.000001)
    return torch.where(c == 0, iou, iou - (_centre_distance(a, b) / c + alpha * v))


def box_iou_kind(a: Tensor, b: Tensor, kind: str) -> Tensor:
    """AlexeyAB's box_iou_kind: the overlap `kind` ("giou", "diou", "ciou"; any other: box_iou)."""
    return {"giou": box_giou, "diou": box_diou, "ciou": box_ciou}.get(kind, alexeyab_box_iou)(a, b)


def dx_box_iou(pred: Tensor, truth: Tensor, kind: str) -> Tensor:
    """AlexeyAB's dx_box_iou (box.c): the gradient (..., 4) of the overlap `kind` with respect to the
    prediction's x, y, w, h, as the C computes it (the g-darknet formulas, quirks included).

    The IoU part from the edges (t, b, l, r; I's and U's min/max); "giou" adds the C term, or is only that
    term when the boxes do not overlap (Iw <= 0 or Ih <= 0); "diou" and "ciou" add the centre-distance
    term (its S part subtracted for x, y and added for w, h, as written), "ciou" also alpha * the aspect
    term, and without overlap they are only those terms.  w and h are not halved (`p_dw = p_dr - p_dl`).
    Divisions by zero give the inf/NaN the C gives (its caller zeroes them: fix_nan_inf).
    """
    px, py, pw, ph = pred.unbind(-1)
    tx, ty, tw, th = truth.unbind(-1)
    left, right, top, bottom = _edges(pred)
    p_t, p_b, p_l, p_r = torch.fmin(top, bottom), torch.fmax(top, bottom), torch.fmin(left, right), torch.fmax(left, right)
    t_l, t_r, t_t, t_b = _edges(truth)
    zero = torch.zeros_like(px)
    ih = torch.fmin(p_b, t_b) - torch.fmax(p_t, t_t)
    iw = torch.fmin(p_r, t_r) - torch.fmax(p_l, t_l)
    inter = iw * ih
    union = (p_b - p_t) * (p_r - p_l) + (t_b - t_t) * (t_r - t_l) - inter
    # d/d(t, b, l, r) of the prediction's area X, of I, of U and of the enclosing box's area C
    d_area = torch.stack([-(p_r - p_l), p_r - p_l, -(p_b - p_t), p_b - p_t])
    d_inter = torch.stack([torch.where(p_t > t_t, -iw, zero), torch.where(p_b < t_b, iw, zero),
                           torch.where(p_l > t_l, -ih, zero), torch.where(p_r < t_r, ih, zero)])
    d_union = d_area - d_inter
    p = torch.where(union > 0, (union * d_inter - inter * d_union) / (union * union), zero)
    p_dt, p_db, p_dl, p_dr = p.unbind(0)
    p_dt = torch.where(top < bottom, p_dt, p_db)  # "apply grad from prediction min/max for correct corner selection"
    p_dl = torch.where(left < right, p_dl, p_dr)
    p = torch.stack([p_dt, p_db, p_dl, p_dr])
    apart = (iw <= 0) | (ih <= 0)
    if kind == "giou":
        cw = torch.fmax(p_r, t_r) - torch.fmin(p_l, t_l)
        ch = torch.fmax(p_b, t_b) - torch.fmin(p_t, t_t)
        c = cw * ch
        d_c = torch.stack([torch.where(p_t < t_t, -cw, zero), torch.where(p_b > t_b, cw, zero),
                           torch.where(p_l < t_l, -ch, zero), torch.where(p_r > t_r, ch, zero)])
        c_term = (c * d_union - union * d_c) / (c * c)
        p = torch.where(apart, c_term, torch.where(c > 0, p + c_term, p))
    p_dt, p_db, p_dl, p_dr = p.unbind(0)
    grad = torch.stack([p_dl + p_dr, p_dt + p_db, p_dr - p_dl, p_db - p_dt])
    if kind in ("diou", "ciou"):
        extra = _distance_gradient(pred, truth, (p_t, p_b, p_l, p_r), (t_t, t_b, t_l, t_r))
        if kind == "ciou":
            gap = _aspect_gap(pred, truth)
            v = (4 / (math.pi * math.pi) * gap * gap).to(px.dtype)
            alpha = v / (1 - inter / union + v + 0.000001)
            aspect = torch.stack([zero, zero, (8 / (math.pi * math.pi) * gap).to(px.dtype) * ph,
                                  (-8 / (math.pi * math.pi) * gap).to(px.dtype) * pw])
            extra = extra + alpha * aspect
        c_pos = _enclosing_diagonal(pred, truth) > 0
        grad = torch.where(apart, extra, torch.where(c_pos, grad + extra, grad))
    return grad.movedim(0, -1)


def _distance_gradient(pred: Tensor, truth: Tensor, pred_edges: tuple[Tensor, ...], truth_edges: tuple[Tensor, ...]) -> Tensor:
    """dx_box_iou's DIoU term (4, ...): (2 (truth - pred) C - dC S) / C^2 for x, y and dC S / C^2 for w, h, where
    S is the squared centre distance, C box_c's squared diagonal and dC its derivative by which edge encloses."""
    p_t, p_b, p_l, p_r = pred_edges
    t_t, t_b, t_l, t_r = truth_edges
    cw, ch = _enclosing_size(pred, truth)
    c = cw * cw + ch * ch
    s = _centre_distance(pred, truth)
    one, zero = torch.ones_like(s), torch.zeros_like(s)
    # d(Cr - Cl)/d(x, w) and d(Cb - Ct)/d(y, h): which of the prediction's edges are the enclosing box's
    dcw_dx = torch.where(p_r > t_r, one, zero) - torch.where(p_l < t_l, one, zero)
    dcw_dw = torch.where(p_r > t_r, one / 2, zero) - torch.where(p_l < t_l, -one / 2, zero)
    dch_dy = torch.where(p_b > t_b, one, zero) - torch.where(p_t < t_t, one, zero)
    dch_dh = torch.where(p_b > t_b, one / 2, zero) - torch.where(p_t < t_t, -one / 2, zero)
    return torch.stack([
        (2 * (truth[..., 0] - pred[..., 0]) * c - (2 * cw * dcw_dx + 2 * ch * zero) * s) / (c * c),
        (2 * (truth[..., 1] - pred[..., 1]) * c - (2 * cw * zero + 2 * ch * dch_dy) * s) / (c * c),
        (2 * cw * dcw_dw + 2 * ch * zero) * s / (c * c),
        (2 * cw * zero + 2 * ch * dch_dh) * s / (c * c),
    ])
