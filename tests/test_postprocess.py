"""detections_from_heads (only the detections with nonzero objectness decoded, NMS over those with some prob)
against a dense reference: every detection decoded as Darknet fills it, do_nms_sort on the whole array."""

from __future__ import annotations

import warnings

import pytest
import torch

from conftest import cfg_path
from pydarknet import Darknet
from pydarknet.boxes import correct_boxes, do_nms_sort
from pydarknet.detect import Detection, detections_from_heads
from pydarknet.layers.region import Region


def dense_region(layer: Region, output: torch.Tensor, thresh: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """get_region_detections for every anchor and cell: boxes (B, N, 4), objectness (B, N), probs (B, N, classes)."""
    b, _, h, w = output.shape
    v = output.view(b, layer.num, layer.entries, h, w)
    rows = torch.arange(h, dtype=v.dtype)[:, None].expand(h, w)
    cols = torch.arange(w, dtype=v.dtype)[None, :].expand(h, w)
    aw, ah = (layer.anchors[:, i].to(v)[None, :, None, None] for i in (0, 1))
    boxes = torch.stack([(cols + v[:, :, 0]) / w, (rows + v[:, :, 1]) / h,
                         torch.exp(v[:, :, 2]) * aw / w, torch.exp(v[:, :, 3]) * ah / h], dim=-1).reshape(b, -1, 4)
    obj = v[:, :, layer.coords].reshape(b, -1)
    objectness = torch.where(obj > thresh, obj, torch.zeros_like(obj))
    probs = obj[..., None] * v[:, :, layer.coords + 1 :].permute(0, 1, 3, 4, 2).reshape(b, -1, layer.classes)
    probs = torch.where((objectness[..., None] != 0) & (probs > thresh), probs, torch.zeros_like(probs))
    return boxes, objectness, probs


def dense_detections(net: Darknet, head: torch.Tensor, sizes: list[tuple[int, int]], thresh: float, nms: float) -> list[list[Detection]]:
    boxes, objectness, probs = dense_region(net.layers[net.output_indices[0]], head, thresh)
    boxes = correct_boxes(boxes, sizes, net.width, net.height, True)
    result = []
    for i in range(len(sizes)):
        if nms:
            order, after = do_nms_sort(boxes[i], objectness[i], probs[i], nms)
        else:  # Darknet skips do_nms_sort
            order = torch.nonzero(objectness[i]).flatten()
            after = probs[i, order]
        kept = after.gt(0).any(dim=1)
        result.append([Detection(tuple(boxes[i, j].double().tolist()), float(objectness[i, j]), p.numpy())
                       for j, p in zip(order[kept].tolist(), after[kept])])
    return result


@pytest.fixture(scope="module")
def tiny_net() -> Darknet:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Darknet(cfg_path("yolov2-tiny-voc.cfg"), 160, 128)


@pytest.mark.parametrize("thresh", [0.6, 0.3, 0.1, 0.02])
@pytest.mark.parametrize("nms", [0.45, 0.0])
def test_detections_equal_the_dense_path(tiny_net, thresh, nms):
    """Bit for bit, in order: quarter-step outputs give many equal probs, so the sorts' tie order matters."""
    gen = torch.Generator().manual_seed(int(thresh * 100) + int(nms * 100))
    shape = (2, tiny_net.layers[tiny_net.output_indices[0]].num * 25, 4, 5)
    for head in (torch.rand(shape, generator=gen), torch.round(torch.rand(shape, generator=gen) * 4) / 4):
        sizes = [(640, 480), (300, 500)]
        ours = detections_from_heads(tiny_net, [head], sizes, thresh, nms=nms)
        theirs = dense_detections(tiny_net, head, sizes, thresh, nms)
        assert [len(d) for d in ours] == [len(d) for d in theirs]
        assert sum(len(d) for d in ours) > 0 or thresh > 0.5
        for a, b in zip(sum(ours, []), sum(theirs, [])):
            assert a.box == b.box and a.objectness == b.objectness and a.probs.tobytes() == b.probs.tobytes()
