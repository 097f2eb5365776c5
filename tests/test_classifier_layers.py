"""The classifier's training side against Darknet's formulas, transliterated from the C:
softmax_cpu / softmax_x_ent_cpu (src/blas.c), forward/backward_cost_layer (l2_cpu, smooth_l1_cpu,
l1_cpu), forward/backward_avgpool_layer, fill_truth / fill_hierarchy, rotate_crop_image,
center_crop_image, resize_min, top_k, calc_network_cost and the update of a classifier."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT
from pydarknet import Darknet
from pydarknet.infer.classify import top_k
from pydarknet.data.classification import (
    bilinear_interpolate,
    center_crop_image,
    class_of,
    crop_image,
    fill_hierarchy,
    fill_truth,
    resize_min,
    rotate_crop_image,
)
from pydarknet.image import resize_image
from pydarknet.layers.softmax import SECRET_NUM
from pydarknet.train.classifier import classifier_checkpoint_names
from pydarknet.train.multiscale import classifier_multiscale_size, classifier_resize_lines
from pydarknet.train.state import TrainingState
from pydarknet.train.step import train_network
from pydarknet.tree import read_tree


def c_softmax(x: np.ndarray, temp: float) -> np.ndarray:
    """src/blas.c softmax(): largest, sum of exp(x/temp - largest/temp), divide."""
    largest = x.max()
    e = np.exp(x / temp - largest / temp)
    return e / e.sum()


def c_softmax_x_ent(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    delta = truth - pred
    error = np.where(truth != 0, -np.log(pred), 0.0)
    return delta, error


def write_cfg(tmp: Path, body: str, width: int = 8, batch: int = 4) -> Path:
    path = tmp / "c.cfg"
    path.write_text(f"[net]\nbatch={batch}\nsubdivisions=1\nwidth={width}\nheight={width}\nchannels=3\n"
                    f"learning_rate=0.5\nmomentum=0\ndecay=0\n\n{body}")
    return path


def softmax_layer(tmp: Path, options: str, inputs: int = 12):
    net = Darknet(write_cfg(tmp, f"[convolutional]\nfilters={inputs}\nsize=1\nactivation=linear\n\n[avgpool]\n\n[softmax]\n{options}\n"))
    return net.layers[2]


@pytest.mark.parametrize("groups,temperature", [(1, 1.0), (3, 1.0), (2, 0.5)])
def test_softmax_forward_and_delta_are_darknets(tmp_path, groups, temperature):
    layer = softmax_layer(tmp_path, f"groups={groups}\ntemperature={temperature}")
    rng = np.random.default_rng(1)
    raw = rng.normal(size=(3, 12, 1, 1)).astype(np.float32) * 3
    truth = np.zeros((3, 12), np.float32)
    truth[np.arange(3), [1, 5, 11]] = 1
    out, delta, cost = layer.loss(torch.from_numpy(raw), torch.from_numpy(truth))
    flat = raw.reshape(3, groups, -1).astype(np.float64)
    want = np.stack([[c_softmax(g, temperature) for g in row] for row in flat]).reshape(3, 12)
    want_delta, want_error = c_softmax_x_ent(want, truth)
    np.testing.assert_allclose(out.reshape(3, 12).numpy(), want, atol=1e-6)
    # Darknet: delta is truth - output whatever the temperature (no 1/T factor)
    np.testing.assert_allclose(delta.reshape(3, 12).numpy(), want_delta, atol=1e-6)
    assert float(cost) == pytest.approx(want_error.sum(), rel=1e-5)


def test_softmax_noloss_gives_no_delta(tmp_path):
    layer = softmax_layer(tmp_path, "noloss=1")
    _, delta, cost = layer.loss(torch.randn(2, 12, 1, 1), torch.eye(12)[:2])
    assert float(delta.abs().max()) == 0 and float(cost) == 0


def test_tree_softmax_truth_and_masked_delta(tmp_path):
    tree = read_tree(ROOT / "data" / "9k.tree")
    leaf = max(range(tree.n), key=lambda i: (tree.child[i] < 0, i))
    truth = fill_hierarchy(fill_truth(f"/x/{leaf}/a.jpg", [str(i) for i in range(tree.n)], tree.n) * 0, tree)
    assert (truth == SECRET_NUM).all()  # no label: every group masked
    one = np.zeros(tree.n, np.float32)
    one[leaf] = 1
    truth = fill_hierarchy(one, tree)
    path = [leaf]
    while tree.parent[path[-1]] >= 0:
        path.append(tree.parent[path[-1]])
    assert set(np.flatnonzero(truth == 1)) == set(path)  # the leaf and every ancestor
    labelled_groups = {tree.group[i] for i in path}
    for g in range(tree.groups):
        members = truth[tree.group_offset[g] : tree.group_offset[g] + tree.group_size[g]]
        assert (members != SECRET_NUM).all() if g in labelled_groups else (members == SECRET_NUM).all()

    net = Darknet(write_cfg(tmp_path, f"[convolutional]\nfilters={tree.n}\nsize=1\nactivation=linear\n\n[avgpool]\n\n"
                            f"[softmax]\ngroups=1\ntree={ROOT / 'data' / '9k.tree'}\n", width=2))
    layer = net.layers[2]
    raw = torch.randn(1, tree.n, 1, 1)
    out, delta, cost = layer.loss(raw, torch.from_numpy(truth[None]))
    p = out.flatten().double().numpy()
    for g in range(tree.groups):  # softmax within each group
        s = slice(tree.group_offset[g], tree.group_offset[g] + tree.group_size[g])
        np.testing.assert_allclose(p[s], c_softmax(raw.flatten()[s].double().numpy(), 1.0), atol=1e-6)
    # Darknet GPU: mask_gpu zeroes delta and loss where truth == SECRET_NUM
    d = delta.flatten().numpy()
    masked = truth == SECRET_NUM
    assert (d[masked] == 0).all()
    np.testing.assert_allclose(d[~masked], (truth - p)[~masked], atol=1e-6)
    assert float(cost) == pytest.approx(-np.log(p[truth == 1]).sum(), rel=1e-5)


@pytest.mark.parametrize("cost_type", ["sse", "smooth", "L1", "masked"])
def test_cost_layer_is_darknets(tmp_path, cost_type):
    net = Darknet(write_cfg(tmp_path, f"[convolutional]\nfilters=6\nsize=1\nactivation=linear\n\n[avgpool]\n\n[cost]\ntype={cost_type}\n"))
    layer = net.layers[2]
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(2, 6)) * 2).astype(np.float32)
    truth = rng.normal(size=(2, 6)).astype(np.float32)
    truth[0, 2] = SECRET_NUM
    delta, cost = layer.loss(torch.from_numpy(x.reshape(2, 6, 1, 1)), torch.from_numpy(truth))
    pred = np.where(truth == SECRET_NUM, SECRET_NUM, x) if cost_type == "masked" else x
    diff = (truth - pred).astype(np.float64)
    if cost_type == "smooth":  # smooth_l1_cpu
        error = np.where(np.abs(diff) < 1, diff * diff, 2 * np.abs(diff) - 1)
        want = np.where(np.abs(diff) < 1, diff, np.sign(diff))
    elif cost_type == "L1":  # l1_cpu
        error, want = np.abs(diff), np.where(diff > 0, 1.0, -1.0)
    else:  # l2_cpu
        error, want = diff * diff, diff
    np.testing.assert_allclose(delta.reshape(2, 6).numpy(), want, rtol=1e-5, atol=1e-4)
    assert float(cost) == pytest.approx(error.sum(), rel=1e-5)


def test_avgpool_forward_and_backward(tmp_path):
    net = Darknet(write_cfg(tmp_path, "[convolutional]\nfilters=3\nsize=1\nactivation=linear\n\n[avgpool]\n"))
    layer = net.layers[1]
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64, requires_grad=True)
    out = layer(x)
    np.testing.assert_allclose(out.detach().numpy()[:, :, 0, 0], x.detach().numpy().sum(axis=(2, 3)) / 35)
    delta = torch.randn(2, 3, 1, 1, dtype=torch.float64)
    out.backward(delta)
    # Darknet backward_avgpool_layer: net.delta[in] += l.delta[out] / (h*w)
    np.testing.assert_allclose(x.grad.numpy(), np.broadcast_to(delta.numpy() / 35, (2, 3, 5, 7)))


@pytest.mark.parametrize("tail,scale", [("", 0.0), ("[cost]\ntype=sse\n", 1.0), ("[cost]\ntype=sse\nscale=.5\n", 0.5)])
def test_classifier_step_update_and_cost(tmp_path, tail, scale):
    """One train_network call: the last conv's bias moves by lr/batch * sum_n (1 + scale)(t - p),
    and the returned loss is the mean over loss layers (calc_network_cost) divided by the images."""
    cfg = write_cfg(tmp_path, "[convolutional]\nfilters=5\nsize=1\nactivation=linear\n\n[avgpool]\n\n[softmax]\ngroups=1\n\n" + tail, width=4)
    net = Darknet(cfg)
    x = torch.rand(4, 3, 4, 4)
    truth = torch.zeros(4, 5)
    truth[torch.arange(4), torch.tensor([0, 3, 3, 1])] = 1
    with torch.no_grad():
        p = net.forward_layers(x)[2].reshape(4, 5).double()
    bias = net.layers[0].conv.bias.detach().clone().double()
    loss = train_network(net, TrainingState(net), x, truth)
    t = truth.double()
    step = 0.5 / 4 * ((1 + scale) * (t - p)).sum(0)
    np.testing.assert_allclose((net.layers[0].conv.bias.detach().double() - bias).numpy(), step.numpy(), atol=1e-5)
    xent = float(-(t * torch.log(p)).sum())
    costs = [xent] + ([float(((t - p) ** 2).sum())] if tail else [])
    assert loss == pytest.approx(sum(costs) / len(costs) / 4, rel=1e-4)
    assert net.seen == 4


def c_bilinear(im: np.ndarray, x: float, y: float, c: int) -> float:
    ix, iy = math.floor(x), math.floor(y)
    dx, dy = np.float32(x) - np.float32(ix), np.float32(y) - np.float32(iy)

    def px(a: int, b: int) -> float:
        return 0.0 if a < 0 or a >= im.shape[2] or b < 0 or b >= im.shape[1] else float(im[c, b, a])

    return float((1 - dy) * (1 - dx) * px(ix, iy) + dy * (1 - dx) * px(ix, iy + 1)
                 + (1 - dy) * dx * px(ix + 1, iy) + dy * dx * px(ix + 1, iy + 1))


def test_rotate_crop_image_matches_the_c_loops():
    rng = np.random.default_rng(3)
    im = rng.random((3, 11, 9)).astype(np.float32)
    rad, s, w, h, dx, dy, aspect = 0.2, 1.3, 7, 6, 1.5, -2.0, 0.8
    out = rotate_crop_image(im, rad, s, w, h, dx, dy, aspect)
    for c in range(3):
        for y in range(h):
            for x in range(w):
                rx = math.cos(rad) * ((x - w / 2.0) / s * aspect + dx / s * aspect) - math.sin(rad) * ((y - h / 2.0) / s + dy / s) + 9 / 2.0
                ry = math.sin(rad) * ((x - w / 2.0) / s * aspect + dx / s * aspect) + math.cos(rad) * ((y - h / 2.0) / s + dy / s) + 11 / 2.0
                assert out[c, y, x] == pytest.approx(c_bilinear(im, np.float32(rx), np.float32(ry), c), abs=2e-6)
    assert float(bilinear_interpolate(im, np.float32([-5.0]), np.float32([3.0]))[0, 0]) == 0  # outside reads 0


def test_crops_and_resize_min():
    im = np.random.default_rng(4).random((3, 10, 16)).astype(np.float32)
    np.testing.assert_array_equal(crop_image(im, -2, 8, 4, 4)[:, :, 0], im[:, [8, 9, 9, 9], 0])  # clamped
    np.testing.assert_array_equal(center_crop_image(im, 5, 5), resize_image(im[:, :, 3:13], 5, 5))
    assert resize_min(im, 5).shape == (3, 5, 8)  # w = 16 * 5 // 10
    assert resize_min(im, 10) is im


def test_labels_from_paths_and_top_k():
    labels = ["cat", "dog", "hotdog"]
    np.testing.assert_array_equal(fill_truth("/d/hotdog/1.jpg", labels, 3), [0, 1, 1])  # strstr: every match
    assert class_of("/d/hotdog/1.jpg", labels) == 1  # validation: the first match
    assert class_of("/d/bird/1.jpg", labels) == -1
    probs = torch.tensor([[0.2, 0.5, 0.2, 0.5, 0.1]])
    assert top_k(probs, 3).tolist() == [[1, 3, 0]]  # Darknet's top_k: ties to the earlier index


def test_classifier_schedules():
    # Darknet: NAME_E.weights when seen/N grows, NAME.backup every 1000 iterations
    assert classifier_checkpoint_names("c", 3, 96, 32, 90) == ["c_1.weights"]
    assert classifier_checkpoint_names("c", 4, 128, 32, 90) == []
    assert classifier_checkpoint_names("c", 1000, 32000, 32, 100000) == ["c.backup"]
    sizes = [classifier_multiscale_size(b, 0, (224, 224), True) for b in range(4000)]
    assert {w for w, _ in sizes} == {32 * k for k in range(4, 15)}  # (rand() % 11 + 4) * 32
    assert all(len(set(sizes[p * 40 : p * 40 + 40])) == 1 for p in range(100))
    assert classifier_multiscale_size(7, 0, (224, 224), False) == (224, 224)
    # train_classifier: printf("Resizing\n"); printf("%d\n", dim); printf("%d %d\n", args.min, args.max)
    size = partial(classifier_multiscale_size, seed=0, cfg_size=(224, 224), random=True)
    assert classifier_resize_lines(size, 0.5, 1.25, 3, 3) == ["Resizing", str(sizes[3][0]),
                                                               f"{sizes[3][0] // 2} {int(sizes[3][0] * 1.25)}"]
    assert classifier_resize_lines(size, 0.5, 1.25, 3, 39) == [] and classifier_resize_lines(size, 0.5, 1.25, 3, 40)
