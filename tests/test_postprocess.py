"""detections_from_heads (only the detections with nonzero objectness decoded, NMS over those with some prob)
against a dense reference: every detection decoded as Darknet fills it, do_nms_sort on the whole array."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch

from conftest import GOLDEN, cfg_path
from helpers import darknet_do_nms_sort
from pydarknet import Darknet
from pydarknet.infer.decode import correct_region_boxes
from pydarknet.infer.nms import do_nms_sort
from pydarknet.infer.detect import Detection, detect_image, detections_from_heads
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
    boxes = correct_region_boxes(boxes, sizes, net.width, net.height, True)
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


# ------------------------------------------------------------------ AlexeyAB's [region] (src/network.c custom_get_region_detections)

def alexeyab_region_detections(layer: Region, output: torch.Tensor, sizes: list[tuple[int, int]], net_w: int, net_h: int,
                               letter: bool, thresh: float, nms: float) -> list[list[tuple[tuple[float, ...], float, np.ndarray]]]:
    """AlexeyAB's test_detector on a [region] head, its C loops transliterated one by one (numpy float32 scalars):

    custom_get_region_detections over get_region_boxes (src/region_layer.c), which reads the flattened output
    `predictions[index*(l.classes + 5) + e]` with `index = i*l.n + n` (cell-major), `scale = predictions[p_index]`,
    `prob = scale*class > thresh` (or, with a tree, hierarchy_predictions and the last class whose product is > .5,
    `(scale > thresh) ? prob : 0`), `dets[j].objectness = 1`; correct_yolo_boxes(.., letter) (src/yolo_layer.c);
    do_nms_sort (tests/test_nms.py's port of src/box.c) when nms; the detections with some prob left, in array order.
    """
    f32, f64 = np.float32, np.float64
    classes, num = layer.classes, layer.num
    result = []
    for b, (im_w, im_h) in enumerate(sizes):
        o = output[b].numpy()
        h, w = o.shape[1:]
        pred = o.reshape(num, layer.entries, h * w).transpose(2, 0, 1).reshape(-1).copy()  # flatten(): cell, anchor, entry
        total = w * h * num
        boxes = np.zeros((total, 4), f32)
        probs = np.zeros((total, classes), f32)
        for i in range(w * h):
            row, col = i // w, i % w
            for n in range(num):
                index = i * num + n
                scale = pred[index * (classes + 5) + 4]
                if layer.classfix == -1 and scale < 0.5:
                    scale = f32(0)
                box_index = index * (classes + 5)
                x = pred[box_index : box_index + 4]
                bias = layer.anchors[n].numpy()
                boxes[index] = [(f32(col) + x[0]) / f32(w), (f32(row) + x[1]) / f32(h),  # get_region_box (x, y already logistic)
                                f32(np.exp(f64(x[2])) * f64(bias[0]) / w), f32(np.exp(f64(x[3])) * f64(bias[1]) / h)]
                class_index = index * (classes + 5) + 5
                if layer.tree is not None:
                    for j in range(classes):  # hierarchy_predictions(.., only_leaves=0), in place
                        parent = layer.tree.parent[j]
                        if parent >= 0:
                            pred[class_index + j] = f32(pred[class_index + j] * pred[class_index + parent])
                    found = False
                    for j in range(classes - 1, -1, -1):
                        if not found and pred[class_index + j] > 0.5:
                            found = True
                        else:
                            pred[class_index + j] = 0
                        probs[index, j] = pred[class_index + j] if scale > thresh else 0
                else:
                    for j in range(classes):
                        prob = f32(scale * pred[class_index + j])
                        probs[index, j] = prob if prob > thresh else 0
        new_w, new_h = net_w, net_h  # correct_yolo_boxes
        if letter:
            if f32(net_w) / f32(im_w) < f32(net_h) / f32(im_h):
                new_w, new_h = net_w, (im_h * net_w) // im_w
            else:
                new_w, new_h = (im_w * net_h) // im_h, net_h
        deltaw, deltah = f32(net_w - new_w), f32(net_h - new_h)
        ratiow, ratioh = f32(new_w) / f32(net_w), f32(new_h) / f32(net_h)
        for box in boxes:
            box[0] = f32((f64(box[0]) - f64(deltaw) / 2.0 / net_w) / f64(ratiow))
            box[1] = f32((f64(box[1]) - f64(deltah) / 2.0 / net_h) / f64(ratioh))
            box[2] = box[2] * (f32(1) / ratiow)
            box[3] = box[3] * (f32(1) / ratioh)
        objectness = torch.ones(total)
        if nms:
            order, after = darknet_do_nms_sort(torch.from_numpy(boxes), objectness, torch.from_numpy(probs), nms)
            order, after = order.numpy(), after.numpy()
        else:
            order, after = np.arange(total), probs
        result.append([(tuple(boxes[j].tolist()), 1.0, p) for j, p in zip(order, after) if (p > 0).any()])
    return result


def assert_same_as_alexeyab(net: Darknet, head: torch.Tensor, sizes: list[tuple[int, int]], thresh: float, nms: float,
                            hier_thresh: float = 0.5) -> int:
    """detections_from_heads against the transliteration: order, objectness and probs bit for bit, boxes to an ulp
    (get_region_box's exp is in double in C, in float here).  Returns the number of detections."""
    letter = bool(net.options.letter_box)
    layer = net.layers[net.output_indices[0]]
    ours = detections_from_heads(net, [head], sizes, thresh, hier_thresh, nms=nms)
    theirs = alexeyab_region_detections(layer, head, sizes, net.width, net.height, letter, thresh, nms)
    assert [len(d) for d in ours] == [len(d) for d in theirs]
    for a, (box, objectness, probs) in zip(itertools.chain(*ours), itertools.chain(*theirs)):
        assert a.objectness == objectness == 1.0
        assert a.probs.tobytes() == probs.tobytes()
        np.testing.assert_allclose(a.box, box, rtol=3e-7, atol=1e-9)
    return sum(len(d) for d in ours)


@pytest.fixture(scope="module")
def tiny_net_alexeyab() -> Darknet:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Darknet(cfg_path("yolov2-tiny-voc.cfg"), 160, 128, dialect="alexeyab")


@pytest.mark.parametrize("letter_box", [0, 1])
@pytest.mark.parametrize("thresh", [0.6, 0.1, 0.02])
@pytest.mark.parametrize("nms", [0.45, 0.0])
def test_alexeyab_region_is_custom_get_region_detections(tiny_net_alexeyab, letter_box, thresh, nms, monkeypatch):
    """AlexeyAB's dialect: the cell-major order, objectness 1 (do_nms_sort swaps nothing), probs whatever the
    objectness; quarter-step outputs give many equal probs, so the sorts' tie order (their start order) matters.
    pjreddie's get_region_detections order and objectness fail this."""
    net = tiny_net_alexeyab
    monkeypatch.setattr(net.options, "letter_box", letter_box)
    gen = torch.Generator().manual_seed(int(thresh * 100) + int(nms * 100))
    shape = (2, net.layers[net.output_indices[0]].num * 25, 4, 5)
    found = 0
    for head in (torch.rand(shape, generator=gen), torch.round(torch.rand(shape, generator=gen) * 4) / 4):
        found += assert_same_as_alexeyab(net, head, [(640, 480), (300, 500)], thresh, nms)
    assert found > 0 or thresh > 0.5


def test_alexeyab_region_classfix(tmp_path):
    """get_region_boxes: `if(l.classfix == -1 && scale < .5) scale = 0;` (AlexeyAB only)."""
    cfg = tmp_path / "fix.cfg"
    cfg.write_text(TINY_REGION.format(extra="classfix=-1\nclasses=3", filters=2 * 8))
    net = Darknet(cfg, dialect="alexeyab").eval()
    head = torch.round(torch.rand((1, 16, 3, 3), generator=torch.Generator().manual_seed(5)) * 4) / 4
    assert assert_same_as_alexeyab(net, head, [(50, 40)], 0.1, 0.45) > 0


TINY_REGION = """[net]
width=24
height=24
channels=3

[convolutional]
filters={filters}
size=1
stride=1
pad=1
activation=linear

[region]
anchors=1,1.5,2.5,2
num=2
coords=4
softmax=1
{extra}
"""


@pytest.mark.parametrize("nms", [0.45, 0.0])
def test_alexeyab_region_tree(tmp_path, nms):
    """With a tree: hierarchy_predictions, the last class whose product is > .5 (quarter steps: many exactly .5)
    gets the product, not scale; hier_thresh is not used."""
    (tmp_path / "t.tree").write_text("a -1\nb -1\nc 0\nd 0\ne 2\nf 2\n")
    cfg = tmp_path / "tree.cfg"
    cfg.write_text(TINY_REGION.format(extra=f"classes=6\ntree={tmp_path / 't.tree'}", filters=2 * 11))
    net = Darknet(cfg, dialect="alexeyab").eval()
    gen = torch.Generator().manual_seed(3)
    head = torch.round(torch.rand((2, 22, 4, 4), generator=gen) * 4) / 4
    head[:, 5::11] = torch.rand((2, 2, 4, 4), generator=gen) * 0.5 + 0.5  # class a (root, c's and e's ancestor) > .5
    sizes = [(40, 30), (20, 50)]
    found = assert_same_as_alexeyab(net, head, sizes, 0.3, nms, hier_thresh=0.9)
    assert found > 0
    low, high = (detections_from_heads(net, [head], sizes, 0.3, hier, nms=nms) for hier in (0.1, 0.9))
    assert [[_fields(d) for d in dets] for dets in low] == [[_fields(d) for d in dets] for dets in high]


def test_alexeyab_region_golden_net(golden_net):
    """yolov2-tiny-slim's golden weights on scream.png in AlexeyAB's dialect (a plain resize): the network's own outputs."""
    from pydarknet.image import load_image
    from pydarknet.infer.engine import eager_model
    from pydarknet.infer.inputs import network_batch

    net = golden_net("yolov2-tiny-slim.cfg", 160, 160, "alexeyab")
    image = load_image(GOLDEN / "images" / "scream.png")
    with torch.inference_mode():
        head = net(network_batch(net, [image]))[0]
    size = (image.shape[2], image.shape[1])
    assert assert_same_as_alexeyab(net, head, [size], 0.1, 0.45) > 0
    detected = detect_image(net, image, 0.1, 0.5, 0.45, model=eager_model(net))  # the network's own forward, as `head`
    assert [_fields(d) for d in detected] == [_fields(d) for d in detections_from_heads(net, [head], [size], 0.1, 0.5, 0.45)[0]]


def _fields(d: Detection) -> tuple:
    return d.box, d.objectness, d.probs.tobytes()
