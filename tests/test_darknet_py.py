"""pydarknet.darknet, the drop-in for AlexeyAB's darknet.py (`import pydarknet.darknet as darknet`).

darknet_images.py's own sequence of calls on the shipped demo model (its detections are
pydarknet's detect_batch on the same resized image, in network pixels), its script run
unchanged in a subprocess, and on AlexeyAB's golden yolov4-tiny (random weights,
tests/golden-alexeyab): detect_image's do_nms_sort whatever the cfg's nms_kind, and the
batch path (network_predict_batch's array: AlexeyAB's count; do_nms_obj as box.c's loops).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import warnings
from ctypes import POINTER, c_float

import cv2
import numpy as np
import pytest
import torch

import pydarknet.darknet as darknet
from conftest import CFG, DEMO_CFG, DEMO_IMAGE, DEMO_WEIGHTS, GOLDEN, ROOT
from helpers import alexeyab_case_dir, darknet_do_nms_obj, darknet_do_nms_sort
from pydarknet.data import read_names
from pydarknet.data.labels import read_labels
from pydarknet.errors import DarknetError
from pydarknet.infer.detect import candidates, detect_batch, predict
from pydarknet.layers.boxes import box_iou

SHAPES = ROOT / "data" / "shapes.names"
SCRIPT = ROOT / "tests" / "alexeyab-scripts" / "darknet_images.py"
THRESH = 0.25  # darknet_images.py's default --thresh
DOG = {"name": "yolov4-tiny_dog_416"}  # AlexeyAB's golden: thresh .8, greedynms, 420 candidates, 74 lines


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("data") / "shapes.data"
    path.write_text(f"classes=6\nnames={SHAPES}\n")
    return path


@pytest.fixture(scope="module")
def loaded(data_file):
    random.seed(3)  # darknet_images.py main: "deterministic bbox colors"
    return darknet.load_network(str(DEMO_CFG), str(data_file), str(DEMO_WEIGHTS), batch_size=1)


def image_detection(bgr: np.ndarray, network, class_names, thresh: float):
    """darknet_images.py image_detection's calls, as written: (the resized RGB image, its IMAGE, the detections)."""
    width, height = darknet.network_width(network), darknet.network_height(network)
    darknet_image = darknet.make_image(width, height, 3)
    image_rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    image_resized = cv2.resize(image_rgb, (width, height), interpolation=cv2.INTER_LINEAR)
    darknet.copy_image_from_bytes(darknet_image, image_resized.tobytes())
    detections = darknet.detect_image(network, class_names, darknet_image, thresh=thresh)
    darknet.free_image(darknet_image)
    return image_resized, darknet_image, detections


@pytest.fixture(scope="module")
def demo(loaded):
    network, class_names, _ = loaded
    return image_detection(cv2.imread(str(DEMO_IMAGE)), network, class_names, THRESH)


def expected_entries(dets, names: list[str], w: int, h: int) -> list[tuple]:
    """darknet.py's entries from pydarknet Detections: one per class above thresh, box * (w, h) in float32
    (get_network_boxes relative=0), confidence str(round(prob * 100, 2)), sorted by that string."""
    scale = np.array([w, h, w, h], dtype=np.float32)
    entries = [(names[c], str(round(p * 100, 2)), tuple((np.float32(d.box) * scale).tolist())) for d in dets for c, p in d.labels]
    return sorted(entries, key=lambda e: e[1])


def convert2original(image: np.ndarray, bbox, preproc_h: int, preproc_w: int) -> tuple[int, int, int, int]:
    """darknet_video.py convert2original, as written (with its convert2relative)."""
    x, y, w, h = bbox
    x, y, w, h = x / preproc_w, y / preproc_h, w / preproc_w, h / preproc_h
    image_h, image_w, __ = image.shape
    return int(x * image_w), int(y * image_h), int(w * image_w), int(h * image_h)


def test_load_network_names_and_seeded_colors(loaded):
    network, class_names, class_colors = loaded
    assert network.dialect == "alexeyab" and not network.training
    assert class_names == read_names(SHAPES)
    random.seed(3)
    assert class_colors == {name: (random.randint(0, 255), random.randint(0, 255), random.randint(0, 255))
                            for name in class_names}
    random.seed(3)
    assert darknet.class_colors(class_names) == class_colors


def test_image_holds_darknets_floats(demo):
    """copy_image_from_bytes: (float)byte / 255. per channel, planes in the order given (RGB here)."""
    image_resized, darknet_image, _ = demo
    assert (darknet_image.w, darknet_image.h, darknet_image.c) == (544, 544, 3)
    expected = (image_resized.transpose(2, 0, 1).astype(np.float64) / 255.0).astype(np.float32)
    np.testing.assert_array_equal(darknet_image.data, expected.ravel())
    assert not darknet.make_image(4, 3, 3).data.any() and darknet.make_image(4, 3, 3).data.size == 36


def test_detections_are_detect_batch_in_network_pixels(loaded, demo):
    """The same boxes and probabilities as pydarknet's detect_batch on the resized image (do_nms_sort on boxes
    in pixels: relative=False), in network-input pixels, formatted and ordered as darknet.py does."""
    network, class_names, _ = loaded
    image_resized, _, detections = demo
    frame = np.ascontiguousarray(image_resized[:, :, ::-1])  # detect_batch's frames are BGR
    (found,) = detect_batch(network, [frame], THRESH, relative=False)
    assert detections == expected_entries(found, class_names, 544, 544)
    assert [c for _, c, _ in detections] == sorted(c for _, c, _ in detections)  # darknet.py sorts the strings
    assert all(re.fullmatch(r"\d+\.\d{1,2}", c) for _, c, _ in detections)


def test_finds_every_demo_shape(loaded, demo):
    """At darknet_images.py's thresh .25, all 6 shapes of the demo image, with their class, back in original pixels
    (darknet_video.py's convert2original).  The faint ring scores .36 here, not .73 as in `detect`: the scripts
    stretch the image to the network (cv2.resize), the demo model saw letterboxed ones."""
    network, class_names, _ = loaded
    truth = read_labels(DEMO_IMAGE.with_suffix(".txt"), 6)
    original = cv2.imread(str(DEMO_IMAGE))
    height, width = original.shape[:2]
    assert len(demo[2]) == len(truth) == 6
    unmatched = list(range(len(truth)))
    for label, _, bbox in demo[2]:
        x, y, w, h = convert2original(original, bbox, 544, 544)
        ours = torch.tensor([x / width, y / height, w / width, h / height])
        hit = [t for t in unmatched if class_names[int(truth[t][0])] == label and float(box_iou(ours, torch.tensor(truth[t][1:]))) >= 0.5]
        assert hit, f"{label} at {bbox} matches no shape of {DEMO_IMAGE.name}"
        unmatched.remove(hit[0])
    image_resized, darknet_image, _ = demo
    at_half = darknet.detect_image(network, class_names, darknet_image, thresh=0.5)
    assert at_half == [d for d in demo[2] if float(d[1]) > 50] and len(at_half) == 5


def test_image_of_another_size_is_resized_not_letterboxed(loaded):
    """network_predict_image resize_image's an image that is not network-sized, and get_network_boxes(letter=0)
    gives boxes in its pixels: detect_batch's plain resize, even with [net] letter_box=1."""
    network, class_names, _ = loaded
    bgr = cv2.imread(str(DEMO_IMAGE))
    image = darknet.make_image(bgr.shape[1], bgr.shape[0], 3)
    darknet.copy_image_from_bytes(image, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).tobytes())
    detections = darknet.detect_image(network, class_names, image, thresh=THRESH)
    (found,) = detect_batch(network, [bgr], THRESH, relative=False)
    assert detections == expected_entries(found, class_names, bgr.shape[1], bgr.shape[0]) and len(detections) == 6
    network.options.letter_box = 1
    try:
        assert darknet.detect_image(network, class_names, image, thresh=THRESH) == detections
    finally:
        network.options.letter_box = None


def test_predict_image_is_the_network_output(loaded, demo):
    """network_predict_image: the last layer's output ([region] here), flat, as darknet_images.py's image_classification reads it."""
    network, _, _ = loaded
    _, darknet_image, _ = demo
    output = darknet.predict_image(network, darknet_image)
    with torch.inference_mode():
        (head,) = network(torch.from_numpy(darknet_image.data.reshape(1, 3, 544, 544)))
    np.testing.assert_allclose(output, head.numpy().ravel(), rtol=1e-5, atol=1e-5)  # the fast model: float32 rounding


def test_draw_boxes_bbox2points_and_print(loaded, demo, capsys):
    _, _, class_colors = loaded
    image_resized, _, detections = demo
    drawn = darknet.draw_boxes(detections, image_resized.copy(), class_colors)
    for label, _, bbox in detections:
        _, _, right, bottom = darknet.bbox2points(bbox)
        assert tuple(drawn[bottom, right]) == class_colors[label]  # the box's corner (the label is above its top)
    assert darknet.bbox2points((10.5, 20.5, 3, 4)) == (9, 18, 12, 22)  # Python's round: half to even
    assert darknet.decode_detection([(3, 0.98765, (1, 2, 3, 4))]) == [("3", "98.77", (1, 2, 3, 4))]
    darknet.print_detections([("ring", "92.27", (280.9, 281.8, 140.0, 141.5))], coordinates=True)
    darknet.print_detections([("ring", "92.27", (280.9, 281.8, 140.0, 141.5))])
    assert capsys.readouterr().out == ("\nObjects:\nring: 92.27%    (left_x: 281   top_y:  282   width:   140   height:  142)\n"
                                       "\nObjects:\nring: 92.27%\n")


def test_bad_input_is_one_line(tmp_path, data_file):
    no_names = tmp_path / "no-names.data"
    no_names.write_text("classes=6\n")
    too_many = tmp_path / "seven.data"
    too_many.write_text(f"classes=7\nnames={SHAPES}\n")
    cases = [(tmp_path / "missing.cfg", data_file, DEMO_WEIGHTS), (DEMO_CFG, data_file, tmp_path / "missing.weights"),
             (DEMO_CFG, tmp_path / "missing.data", DEMO_WEIGHTS), (DEMO_CFG, no_names, DEMO_WEIGHTS),
             (DEMO_CFG, too_many, DEMO_WEIGHTS)]
    for cfg, data, weights in cases:
        with pytest.raises(DarknetError) as err:
            darknet.load_network(str(cfg), str(data), str(weights))
        assert len(str(err.value).splitlines()) == 1 and ("missing" in str(err.value) or str(data) in str(err.value))
    with pytest.raises(DarknetError, match="bytes"):
        darknet.copy_image_from_bytes(darknet.make_image(4, 4, 3), bytes(47))


def test_darknet_images_script_runs_unchanged(tmp_path, data_file, demo):
    """AlexeyAB's darknet_images.py itself, `import darknet` satisfied by a one-line shim: exit 0, our detections printed."""
    shutil.copy(SCRIPT, tmp_path)
    (tmp_path / "darknet.py").write_text("from pydarknet.darknet import *\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    args = ["--input", DEMO_IMAGE, "--weights", DEMO_WEIGHTS, "--config_file", DEMO_CFG, "--data_file", data_file,
            "--dont_show", "--ext_output"]
    run = subprocess.run([sys.executable, str(tmp_path / SCRIPT.name), *map(str, args)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    printed = re.findall(r"^(\w+): ([\d.]+)%    \(left_x: +(-?\d+) ", run.stdout, flags=re.M)
    assert printed == [(label, confidence, f"{bbox[0]:.0f}") for label, confidence, bbox in demo[2]]
    assert re.search(r"^FPS: \d+$", run.stdout, flags=re.M)


@pytest.fixture(scope="module")
def yolov4_tiny(ab_random_weights, tmp_path_factory):
    """AlexeyAB's golden yolov4-tiny (random weights, nms_kind=greedynms) through load_network, and the golden input of dog.png."""
    data = tmp_path_factory.mktemp("coco") / "coco.data"
    data.write_text(f"classes=80\nnames={ROOT / 'data' / 'coco.names'}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        network, class_names, _ = darknet.load_network(str(CFG / "yolov4-tiny.cfg"), str(data), str(ab_random_weights("yolov4-tiny.cfg")))
    return network, class_names, np.load(alexeyab_case_dir(DOG) / "input.npy")


def test_detect_image_runs_do_nms_sort_whatever_the_cfg_says(yolov4_tiny):
    """darknet.py's detect_image calls do_nms_sort: box.c's loops on the boxes in pixels, not detector test's greedynms
    (which keeps 74 lines, tests/golden-alexeyab)."""
    network, class_names, inputs = yolov4_tiny
    detections = darknet.detect_image(network, class_names, darknet.IMAGE(416, 416, 3, inputs.ravel().copy()), thresh=0.8)
    with torch.inference_mode():  # the forward detect_image runs (the network's fast model)
        found = candidates(network, predict(network, torch.from_numpy(inputs[None])), [(416, 416)], 0.8, letterbox=False)
    boxes = found.boxes * torch.tensor([416.0] * 4)
    order, probs = darknet_do_nms_sort(boxes, found.objectness, found.probs, 0.45)
    expected = [(class_names[c], str(round(float(p[c]) * 100, 2)), tuple(boxes[i].tolist()))
                for i, p in zip(order.tolist(), probs) for c in torch.nonzero(p).flatten().tolist()]
    assert detections == sorted(expected, key=lambda e: e[1])
    golden_lines = len((alexeyab_case_dir(DOG) / "detections.txt").read_text().splitlines()) - 1
    assert golden_lines == 74 and len(detections) < golden_lines


def test_batch_detection_path(yolov4_tiny):
    """darknet_images.py batch_detection's calls: network_predict_batch on a ctypes batch (as many candidates per
    image as AlexeyAB's Darknet: 420 on dog.png), do_nms_obj as box.c's loops, remove_negatives, draw_boxes."""
    network, class_names, inputs = yolov4_tiny
    flipped = np.ascontiguousarray(inputs[:, :, ::-1])
    batch_array = np.ascontiguousarray(np.concatenate([inputs, flipped]).flat, dtype=np.float32)
    batch_array = batch_array.ctypes.data_as(darknet.POINTER(darknet.c_float))
    darknet_images = darknet.IMAGE(768, 576, 3, batch_array)
    pairs = darknet.network_predict_batch(network, darknet_images, 2, 768, 576, 0.8, 0.5, None, 0, 0)
    alone = darknet.network_predict_batch(network, darknet.IMAGE(768, 576, 3, flipped.ravel()), 1, 768, 576, 0.8, 0.5, None, 0, 0)
    assert pairs[0].num == 420 and pairs[1] == alone[0]
    dets = pairs[0].dets
    boxes = torch.tensor([[d.bbox.x, d.bbox.y, d.bbox.w, d.bbox.h] for d in dets])
    order, objectness, probs = darknet_do_nms_obj(boxes, torch.tensor([d.objectness for d in dets]),
                                                  torch.tensor([d.prob for d in dets]), 0.45)
    darknet.do_nms_obj(dets, pairs[0].num, len(class_names), 0.45)
    assert [d.objectness for d in dets] == objectness.tolist() and [d.prob for d in dets] == probs.tolist()
    assert [[d.bbox.x, d.bbox.y, d.bbox.w, d.bbox.h] for d in dets] == boxes[order].tolist()
    predictions = darknet.remove_negatives(dets, class_names, pairs[0].num)
    assert predictions and all(p > 0.8 for _, p, _ in predictions)
    image = cv2.imread(str(GOLDEN / "images" / "dog.png"))
    colors = darknet.class_colors(class_names)
    assert darknet.draw_boxes(predictions, image.copy(), colors).shape == image.shape
    darknet.free_batch_detections(pairs, 2)
    assert POINTER is darknet.POINTER and c_float is darknet.c_float


def test_batch_path_refuses_a_region_head(loaded, demo):
    """An AlexeyAB [region] array also holds its boxes without a class, which pydarknet does not decode: refused."""
    network, _, _ = loaded
    with pytest.raises(DarknetError, match=r"\[yolo\]"):
        darknet.network_predict_batch(network, demo[1], 1, 544, 544, 0.5, 0.5)
