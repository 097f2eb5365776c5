"""Helpers shared by several test modules (plain functions, no fixtures: those are in conftest.py).

Test modules import these from here, never from one another.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import torch

from conftest import GOLDEN, GOLDEN_AB, MANIFEST, golden_close
from pydarknet.layers.boxes import pairwise_iou
from pydarknet.infer.detect import Detection
from pydarknet.image import letterbox_image, load_image

# --- the C Darknet's goldens (tests/golden) --------------------------------------------------------------------------

Line = tuple[int, float, float, float, float, float, float]  # class prob x y w h objectness


def case(name: str) -> dict:
    """The manifest's `forward` case of that name."""
    return next(c for c in MANIFEST["forward"] if c["name"] == name)


def case_input(case: dict) -> np.ndarray:
    stored = GOLDEN / "forward" / case["name"] / "input.npy"
    if stored.exists():
        return np.load(stored)
    image = load_image(GOLDEN / "images" / case["image"])
    return letterbox_image(image, case["width"], case["height"])


def assert_heads_golden(name: str, net, heads: list[torch.Tensor], item: int = 0) -> None:
    for index, head in zip(net.output_indices, heads):
        assert head.is_contiguous()
        ok, how = golden_close(head[item].numpy(), np.load(GOLDEN / "forward" / name / f"layer_{index:03d}.npy"))
        assert ok, f"{name} head {index}: {how}"


def golden_lines(case: dict, golden: Path = GOLDEN) -> tuple[list[Line], tuple[int, int]]:
    """Darknet's lines (pjreddie's goldens, or `golden`'s), and the image size from the header."""
    text = (golden / "forward" / case["name"] / "detections.txt").read_text().splitlines()
    header = text[0].split()
    lines = [(int(f[0]), *map(float, f[1:])) for f in (line.split() for line in text[1:])]
    return lines, (int(header[2]), int(header[3]))  # type: ignore[misc]


def our_lines(dets: list[Detection]) -> list[Line]:
    return [(c, p, *d.box, d.objectness) for d in dets for c, p in d.labels]


def assert_same_lines(ours: list[Line], theirs: list[Line], thresh: float) -> None:
    """Same (class, box) lines, values within 1e-3; a prob within 1e-3 of thresh may appear or not."""
    left = list(ours)
    for line in theirs:
        match = [o for o in left if o[0] == line[0] and max(abs(a - b) for a, b in zip(o[1:], line[1:])) <= 1e-3]
        assert match or abs(line[1] - thresh) <= 1e-3, f"Darknet's line {line} is missing"
        if match:
            left.remove(match[0])
    assert all(abs(o[1] - thresh) <= 1e-3 for o in left), f"lines Darknet does not have: {left}"


# --- AlexeyAB's Darknet's goldens (tests/golden-alexeyab) ------------------------------------------------------------


def alexeyab_case_dir(case: dict) -> Path:
    return GOLDEN_AB / "forward" / case["name"]


def alexeyab_golden_lines(case: dict) -> tuple[list[Line], tuple[int, int]]:
    """AlexeyAB's Darknet's lines (tests/golden-alexeyab), and the image size from the header."""
    return golden_lines(case, GOLDEN_AB)


def finite_close(ours: np.ndarray, theirs: np.ndarray) -> tuple[bool, str]:
    """The README's tolerance over the entries Darknet's -Ofast build left finite (yolov4's [yolo] NaNs)."""
    finite = np.isfinite(theirs)
    return golden_close(np.asarray(ours)[finite], theirs[finite])


def layer_outputs(net, case: dict, model=None) -> dict[int, np.ndarray]:
    """The manifest's layers (and every stored one) on input.npy: eager layer by layer, or the heads of `model`."""
    x = torch.from_numpy(np.load(alexeyab_case_dir(case) / "input.npy"))[None]
    with torch.inference_mode():
        if model is None:
            return {i: t[0].numpy() for i, t in enumerate(net.forward_layers(x))}
        return {i: t[0].numpy() for i, t in zip(net.output_indices, model(x))}


# --- training runs ---------------------------------------------------------------------------------------------------


def training_log(path: Path) -> list[dict[str, float]]:
    """The trainer's NAME_log.csv: one row per iteration, its numbers (iteration, loss, avg_loss, rate, seconds,
    images; `map` only where measured; the `run` id left out)."""
    with open(path, newline="") as f:
        return [{key: float(value) for key, value in row.items() if key != "run" and value != ""} for row in csv.DictReader(f)]


# --- reference loops and data sets -----------------------------------------------------------------------------------


def _swap_zero_objectness_to_the_end(dets: list[int], objectness: list[float]) -> int:
    """box.c's do_nms_sort/do_nms_obj first loop: swap each objectness-0 detection with the last kept, in place;
    returns how many are kept (its `total`)."""
    k, i = len(dets) - 1, 0
    while i <= k:
        if objectness[dets[i]] == 0:
            dets[i], dets[k] = dets[k], dets[i]
            k -= 1
        else:
            i += 1
    return k + 1


def darknet_do_nms_sort(boxes: torch.Tensor, objectness: torch.Tensor, probs: torch.Tensor, thresh: float):
    """src/box.c:do_nms_sort with Python lists; qsort is glibc's stable merge sort, as Python's sort."""
    dets = list(range(len(objectness)))
    probs = probs.clone()
    iou = pairwise_iou(boxes, boxes).tolist()  # Darknet's box_iou of every pair, looked up in the loop
    total = _swap_zero_objectness_to_the_end(dets, objectness.tolist())
    dets = dets[:total]
    for c in range(probs.shape[1]):
        p = probs[:, c].tolist()
        dets.sort(key=lambda d: -p[d])  # Darknet: nms_comparator, descending
        for i in range(total):
            if p[dets[i]] == 0:
                continue
            for j in range(i + 1, total):
                if iou[dets[i]][dets[j]] > thresh:
                    p[dets[j]] = 0
        probs[:, c] = torch.tensor(p)
    return torch.tensor(dets, dtype=torch.long), probs[dets]


def darknet_do_nms_obj(boxes: torch.Tensor, objectness: torch.Tensor, probs: torch.Tensor, thresh: float):
    """src/box.c:do_nms_obj with Python lists; qsort (nms_comparator_v3, sort_class -1: objectness
    descending) is glibc's stable merge sort, as Python's sort.  Returns the array's order and the
    objectness and probs in it."""
    dets = list(range(len(objectness)))
    obj = objectness.tolist()
    probs = probs.clone()
    iou = pairwise_iou(boxes, boxes).tolist()  # Darknet's box_iou of every pair, looked up in the loop
    total = _swap_zero_objectness_to_the_end(dets, obj)
    dets[:total] = sorted(dets[:total], key=lambda d: -obj[d])
    for i in range(total):
        if obj[dets[i]] == 0:
            continue
        for j in range(i + 1, total):
            if obj[dets[j]] != 0 and iou[dets[i]][dets[j]] > thresh:
                obj[dets[j]] = 0
                probs[dets[j]] = 0
    order = torch.tensor(dets, dtype=torch.long)
    return order, torch.tensor(obj)[order], probs[order]


def write_dataset(root, boxes):
    (root / "labels").mkdir(parents=True)
    (root / "images").mkdir()
    lines = []
    for k in range(0, len(boxes), 10):
        name = f"img{k}"
        (root / "labels" / f"{name}.txt").write_text("".join(f"{k % 3} 0.5 0.5 {w:.6f} {h:.6f}\n" for w, h in boxes[k:k + 10]))
        lines.append(f"{root / 'images' / name}.jpg\n")
    (root / "train.txt").write_text("".join(lines))
    data = root / "set.data"
    data.write_text(f"classes=3\ntrain={root / 'train.txt'}\n")
    return data


# --- whole training steps against Darknet's (tests/test_train_golden.py, tests/test_train_step_alexeyab.py) ----------

def loaded_net(cfg: Path, weights: Path):  # type: ignore[no-untyped-def]
    """`Darknet(cfg)` (its warnings silenced) with `weights` loaded."""
    import warnings

    from pydarknet import Darknet

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(cfg)
    net.load_weights(weights)
    return net


def weights_tensors(net) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Every tensor save_weights writes (weights, biases, scales, rolling mean and variance), in float64."""
    rolling = {name: b for name, b in net.named_buffers() if name.endswith(("running_mean", "running_var"))}
    return {name: t.detach().double().numpy().copy() for name, t in {**dict(net.named_parameters()), **rolling}.items()}


def relative_to_update(ours: np.ndarray, theirs: np.ndarray, before: np.ndarray) -> float:
    """|ours - theirs| relative to Darknet's own update |theirs - before| (L2)."""
    return float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs - before))


_PRINTED_NUMBER = re.compile(r"-?nan|-?inf|-?\d+\.\d+")


def assert_same_printed_line(ours: str, theirs: str, rel: float) -> None:
    """A Darknet printf line: the same text, integers included, and each %f number within `rel` of the
    line's largest number (a difference of two sums, AlexeyAB's iou_loss, has its terms' error)."""
    assert _PRINTED_NUMBER.sub("#", ours.rstrip()) == _PRINTED_NUMBER.sub("#", theirs.rstrip()), f"{ours!r} != {theirs!r}"
    pairs = list(zip(_PRINTED_NUMBER.findall(ours), _PRINTED_NUMBER.findall(theirs)))
    scale = max([abs(float(b)) for _, b in pairs if "n" not in b] + [1.0])
    for a, b in pairs:
        assert a == b if "n" in b else abs(float(a) - float(b)) <= rel * scale, f"{a} != {b} in {theirs!r} (ours {ours!r})"
