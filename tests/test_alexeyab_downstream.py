"""AlexeyAB's models downstream of the forward (#18): detect on images, folders and videos, valid, map,
convert (.pt / .h5 / ONNX), partial, summary's BFLOPs and anchors for yolov4-tiny, yolov7-tiny and yolov4.

Where AlexeyAB's Darknet has numbers they are the reference: its detections (tests/golden-alexeyab),
its parser's layer table and its `partial` files (tests/golden-alexeyab-cli, see the README there).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import CFG, GOLDEN, GOLDEN_AB, MANIFEST_AB, ROOT, golden_close, run_cli, set_options
from helpers import alexeyab_golden_lines, assert_same_lines, finite_close, layer_outputs, our_lines, write_dataset
from pydarknet import Darknet
from pydarknet.cli import main
from pydarknet.commands.partial import partial
from pydarknet.convert import convert
from pydarknet.infer.detect import detect_batch, detections_from_heads
from pydarknet.eval.results import ResultWriter
from pydarknet.image import load_image
from pydarknet.infer.engine import InferenceModel

AB_CLI = ROOT / "tests" / "golden-alexeyab-cli"
TINY = "yolov4-tiny.cfg"
VALID = ROOT / "tests" / "golden-alexeyab-cli" / "valid"
DOG = {"name": "yolov4-tiny_dog_416", "cfg": TINY, "image": "dog.png", "thresh": 0.8}
HORSES = {"name": "yolov7-tiny_horses_416", "cfg": "yolov7-tiny.cfg", "image": "horses.png", "thresh": 0.9}


def json_lines(records: list[dict]) -> list[tuple]:
    """`detect --json` records as golden lines (class, prob, x, y, w, h, objectness)."""
    return [(r["class"], r["prob"], *r["box"], r["objectness"]) for r in records]


def assert_close_lines(ours: list[tuple], theirs: list[tuple], tol: float) -> None:
    assert [line[0] for line in ours] == [line[0] for line in theirs]
    assert np.abs(np.array(ours, dtype=np.float64) - np.array(theirs, dtype=np.float64)).max(initial=0) <= tol


def test_detect_cli_image_folder_and_video(tmp_path, ab_random_weights, ab_golden_net):
    """One `pydarknet detect --json` run: AlexeyAB's detections on the image, the same on a folder and on video frames."""
    net = ab_golden_net(TINY, 416, 416)
    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(GOLDEN / "images" / "horses.png", folder)
    dog = load_image(GOLDEN / "images" / "dog.png")
    frame = np.ascontiguousarray((dog.transpose(1, 2, 0)[:, :, ::-1] * 255).round().astype(np.uint8))
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (frame.shape[1], frame.shape[0]))
    for shift in (0, 40):
        writer.write(np.roll(frame, shift, axis=1))
    writer.release()
    out = run_cli("detect", CFG / TINY, ab_random_weights(TINY), GOLDEN / "images" / "dog.png", folder, video,
                  "--thresh", DOG["thresh"], "--json", "--no-compile", "--out", tmp_path / "out")
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [Path(r.get("image", r.get("video"))).name for r in records] == ["dog.png", "horses.png", "clip.avi", "clip.avi"]
    theirs, _ = alexeyab_golden_lines(DOG)
    ours = json_lines(records[0]["detections"])
    assert_same_lines(ours, theirs, DOG["thresh"])
    assert [line[0] for line in ours] == [line[0] for line in theirs]
    capture = cv2.VideoCapture(str(video))
    frames = [capture.read()[1] for _ in range(2)]
    images = [load_image(folder / "horses.png"), *frames]
    for record, dets in zip(records[1:], detect_batch(net, images, DOG["thresh"], 0.5, 0.45)):
        assert_close_lines(json_lines(record["detections"]), our_lines(dets), 1e-4)  # the CLI runs the InferenceModel
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip.avi", "dog.jpg", "horses.jpg"]


def small_cfg(tmp_path: Path, cfg: str, size: int) -> Path:
    """A copy of cfg/`cfg` at `size` x `size` (valid and map take the cfg's size)."""
    path = tmp_path / cfg
    path.write_text(set_options((CFG / cfg).read_text(), width=size, height=size))
    return path


def test_valid_writes_alexeyabs_result_files(tmp_path, ab_random_weights):
    """AlexeyAB's validate_detector: thresh .001 and NMS .6 (pjreddie's: .005, .45) on the resized image."""
    cfg = small_cfg(tmp_path, TINY, 160)
    (tmp_path / "valid.txt").write_text(f"{GOLDEN / 'images' / 'dog.png'}\n")
    names = tmp_path / "names"
    names.write_text("".join(f"c{i}\n" for i in range(80)))
    written = {}
    for dialect in ("alexeyab", "pjreddie"):
        data = tmp_path / f"{dialect}.data"
        data.write_text(f"classes=80\nvalid={tmp_path / 'valid.txt'}\nnames={names}\nresults={tmp_path / dialect}\n")
        assert main(["valid", str(data), str(cfg), str(ab_random_weights(TINY)), "--dialect", dialect]) == 0
        lines = [line.split() for f in (tmp_path / dialect).iterdir() for line in f.read_text().splitlines()]
        written[dialect] = len(lines)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = Darknet(cfg, dialect=dialect)
        net.load_weights(ab_random_weights(TINY))
        thresh, nms = (0.001, 0.6) if dialect == "alexeyab" else (0.005, 0.45)
        dets = detect_batch(net.eval(), [load_image(GOLDEN / "images" / "dog.png")], thresh, 0.5, nms, relative=False)[0]
        assert len(lines) == sum(len(d.labels) for d in dets)
    assert written["alexeyab"] > written["pjreddie"]


def _valid_lines(net: Darknet, heads: list[torch.Tensor], folder: Path, relative: bool) -> dict[str, list[str]]:
    """`detector valid`'s result lines (per class) of dog.png (768x576) from the given head outputs."""
    names = (ROOT / "data" / "coco.names").read_text().splitlines()
    (dets,) = detections_from_heads(net, heads, [(768, 576)], 0.001, 0.5, 0.6, relative=relative)
    with ResultWriter(folder, names) as writer:
        writer.add("dog.png", np.array([d.box for d in dets], dtype=np.float32),
                   np.array([d.probs for d in dets], dtype=np.float32), 768, 576)
    return {n: (folder / f"comp4_det_test_{n}.txt").read_text().splitlines() for n in names}


def test_valid_nms_on_pixel_boxes_as_alexeyab(tmp_path):
    """validate_detector's get_network_boxes(relative=0): the NMS compares pixel boxes. Fed AlexeyAB's own head
    outputs (tests/golden-alexeyab yolov4-tiny_dog_416), the result files hold AlexeyAB's lines, class by class
    (tests/golden-alexeyab-cli/valid: the counts, and every line with a prob of at least .8, corners within 1e-3); relative boxes
    round differently and give others."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(CFG / TINY)
    folder = GOLDEN_AB / "forward" / "yolov4-tiny_dog_416"
    heads = [torch.from_numpy(np.load(folder / f"layer_{i:03d}.npy"))[None] for i in net.output_indices]
    expect = json.loads((VALID / "dog_counts.json").read_text())["per_class"]
    ours = _valid_lines(net, heads, tmp_path / "pixels", relative=False)
    assert {n: len(lines) for n, lines in ours.items()} == expect
    names = list(ours)
    for line in (VALID / "dog_top.txt").read_text().splitlines():
        k, prob, *corners = line.split()
        same = [np.float64(o.split()[2:]) for o in ours[names[int(k)]] if o.split()[1] == prob]
        assert any(np.abs(c - np.float64(corners)).max() <= 1e-3 for c in same), (names[int(k)], line)
    relative = _valid_lines(net, heads, tmp_path / "relative", relative=True)
    assert {n: len(lines) for n, lines in relative.items()} != expect


def test_map_is_alexeyabs_detector_map(tmp_path, ab_random_weights, capsys):
    """`pydarknet map` in AlexeyAB's dialect prints what its `detector map -points 0|11|101` printed: every class's
    AP, TP and FP, precision/recall/F1, TP/FP/FN, average IoU at .25 and the mAP (tests/golden-alexeyab-cli/map:
    the labels are its yolov4-tiny detections on dog.png, clamped to the image; its unclamped boxes overlap them
    less)."""
    (tmp_path / "set").mkdir()
    shutil.copy(GOLDEN / "images" / "dog.png", tmp_path / "set")
    shutil.copy(AB_CLI / "map" / "dog.txt", tmp_path / "set")  # beside the image: both Darknets' label path
    (tmp_path / "valid.txt").write_text(f"{tmp_path / 'set' / 'dog.png'}\n")
    data = tmp_path / "set.data"
    data.write_text(f"classes=80\nvalid={tmp_path / 'valid.txt'}\nnames={ROOT / 'data' / 'coco.names'}\n")
    assert main(["map", str(data), str(CFG / TINY), str(ab_random_weights(TINY)), "--json"]) == 0
    ours = json.loads(capsys.readouterr().out)
    assert ours["method"] == "AlexeyAB's detector map"
    for points in ("0", "11", "101"):
        text = (AB_CLI / "map" / f"points_{points}.txt").read_text()
        theirs = re.findall(r"name = (.*), ap = ([\d.]+)%\s+\(TP = (\d+), FP = (\d+)\)", text)
        assert [(c["name"], f"{100 * c['ap'][points]:.2f}", str(c["tp"]), str(c["fp"])) for c in ours["classes"]] == theirs
        assert f"(mAP@0.50) = {ours['map'][points]:f}," in text
        assert (f"precision = {ours['precision']:1.2f}, recall = {ours['recall']:1.2f}, F1-score = {ours['f1']:1.2f}" in text)
        assert f"TP = {ours['tp']}, FP = {ours['fp']}, FN = {ours['fn']}, average IoU = {100 * ours['average_iou']:2.2f} %" in text


def test_map_reads_alexeyabs_label_files_and_options(tmp_path, ab_random_weights, capsys):
    """AlexeyAB's replace_image_to_label: `images/x.png`'s labels beside it (pjreddie's rule: `labels/x.txt`), a
    missing file is an image without objects (a warning); its -points default 0 and -iou_thresh; what its
    detector valid/map read differently is refused: -letter_box (ignored there), difficult= (not implemented)."""
    (tmp_path / "images").mkdir()
    for name in ("dog", "bare"):
        shutil.copy(GOLDEN / "images" / "dog.png", tmp_path / "images" / f"{name}.png")
    shutil.copy(AB_CLI / "map" / "dog.txt", tmp_path / "images")
    (tmp_path / "valid.txt").write_text("".join(f"{tmp_path / 'images' / n}.png\n" for n in ("dog", "bare")))
    data = tmp_path / "set.data"
    data.write_text(f"classes=80\nvalid={tmp_path / 'valid.txt'}\nnames={ROOT / 'data' / 'coco.names'}\n")
    weights = str(ab_random_weights(TINY))
    assert main(["detector", "map", str(data), str(CFG / TINY), weights, "-iou_thresh", "0.6", "--json"]) == 0
    printed = capsys.readouterr()
    assert f"warning: {tmp_path / 'images' / 'bare.txt'}: no label file for" in printed.err
    ours = json.loads(printed.out)
    labelled = len((AB_CLI / "map" / "dog.txt").read_text().splitlines())
    assert (ours["points"], ours["iou"]) == (0, 0.6)
    assert sum(c["ground_truth"] for c in ours["classes"]) == labelled
    assert main(["map", str(data), str(CFG / TINY), weights, "--letter-box"]) != 0
    assert "--letter-box: AlexeyAB's detector valid and map ignore -letter_box" in capsys.readouterr().err
    data.write_text(data.read_text() + "difficult=hard.txt\n")
    assert main(["map", str(data), str(CFG / TINY), weights]) != 0
    assert f"{data}:4:11: difficult=hard.txt: AlexeyAB's detector map" in capsys.readouterr().err


def test_lossless_formats_round_trip(tmp_path, ab_random_weights):
    """.weights -> .pt -> .h5 -> .weights is byte-identical, the cfg embedded (and the dialect it chooses)."""
    weights = ab_random_weights(TINY)
    convert(CFG / TINY, weights, tmp_path / "net.pt")
    convert(None, tmp_path / "net.pt", tmp_path / "net.h5")
    net = convert(None, tmp_path / "net.h5", tmp_path / "back.weights")
    assert net.dialect == "alexeyab"
    assert (tmp_path / "back.weights").read_bytes() == weights.read_bytes()


ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install pydarknet[onnx])")


def onnx_outputs(cfg: str, weights: Path, x: np.ndarray, fuse: bool, decode: bool, path: Path) -> list[np.ndarray]:
    """`pydarknet convert CFG WEIGHTS OUT.onnx [--fuse] [--decode] --size`, run by onnxruntime on `x`."""
    convert(CFG / cfg, weights, path, fuse=fuse, decode=decode, size=(x.shape[3], x.shape[2]))
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})


def assert_heads_close(net: Darknet, got: list[np.ndarray], x: np.ndarray) -> None:
    """The raw heads and the [yolo] outputs computed from them, at the golden tolerance of the eager forward."""
    with torch.inference_mode():
        eager = net.forward_layers(torch.from_numpy(x))
    for raw, index in zip(got, net.output_indices):
        ok, how = golden_close(raw, eager[net.layers[index].sources[0]].numpy())
        assert ok, f"raw head {index}: {how}"
        ok, how = golden_close(net.layers[index](torch.from_numpy(raw)).numpy(), eager[index].numpy())
        assert ok, f"[yolo] {index}: {how}"


@pytest.mark.parametrize("case,fuse", [(DOG, False), (HORSES, True)], ids=["yolov4-tiny", "yolov7-tiny-fused"])
def test_onnx_heads_and_decoded_boxes(case, fuse, tmp_path, ab_random_weights, ab_golden_net):
    """onnxruntime on AlexeyAB's input: the eager heads, and every detection AlexeyAB printed among the decoded
    boxes (scale_x_y; new_coords' squared sizes for yolov7-tiny)."""
    net = ab_golden_net(case["cfg"], 416, 416)
    x = np.load(GOLDEN_AB / "forward" / case["name"] / "input.npy")[None]
    *heads, boxes = onnx_outputs(case["cfg"], ab_random_weights(case["cfg"]), x, fuse, True, tmp_path / "net.onnx")
    assert_heads_close(net, heads, x)
    theirs, _ = alexeyab_golden_lines(case)
    for cls, prob, *box, objectness in theirs:
        near = np.abs(boxes[0, :, :4] - box).max(axis=1) <= 1e-3
        near &= np.abs(boxes[0, :, 4] - objectness) <= 1e-3
        assert near.any() and np.abs(boxes[0, near, 5 + cls] - prob).min() <= 1e-3, (cls, prob, box)


@pytest.mark.slow
def test_onnx_yolov4_heads(tmp_path, ab_random_weights, ab_golden_net):
    """yolov4 (mish, scale_x_y, SPP maxpools, 3 heads) folded at 128x128: ~10 s to export its 258 MB."""
    net = ab_golden_net("yolov4.cfg", 128, 128)
    x = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0)).numpy()
    assert_heads_close(net, onnx_outputs("yolov4.cfg", ab_random_weights("yolov4.cfg"), x, True, False, tmp_path / "net.onnx"), x)


@pytest.mark.slow
def test_compiled_inference_model_matches_alexeyab(ab_golden_net):
    """The torch.compile'd InferenceModel (folded, channels_last, Winograd) of yolov4-tiny: AlexeyAB's [yolo]
    outputs (~30 s to compile on 2 cores, ~7 s from inductor's cache)."""
    case = next(c for c in MANIFEST_AB["forward"] if c["name"] == DOG["name"])
    net = ab_golden_net(TINY, 416, 416)
    model = InferenceModel(net, compile=True)
    for index, out in layer_outputs(net, case, model).items():
        ok, how = finite_close(out, np.load(GOLDEN_AB / "forward" / case["name"] / f"layer_{index:03d}.npy"))
        assert ok, f"head {index}: {how}"
    assert model.compiled


def test_partial_writes_alexeyabs_file(tmp_path, ab_random_weights):
    """AlexeyAB's `partial` writes the first N layers under its version 0.2.5 (pjreddie's: 0.2.0), seen 0."""
    expected = json.loads((AB_CLI / "partial.json").read_text())
    for cfg, entry in expected.items():
        out = tmp_path / f"{cfg}.conv.{entry['layers']}"
        partial(CFG / cfg, ab_random_weights(cfg), out, entry["layers"])
        assert hashlib.sha256(out.read_bytes()).hexdigest() == entry["sha256"], cfg
    out = tmp_path / "pjreddie.conv.29"
    partial(CFG / TINY, ab_random_weights(TINY), out, 29, dialect="pjreddie")
    assert np.frombuffer(out.read_bytes()[:12], "<i4").tolist() == [0, 2, 0]


def alexeyab_printout(path: Path) -> tuple[dict[int, str], str]:
    """AlexeyAB's parser table: each layer's `BF` figure by layer index (lines without an index belong to the
    last index printed: its messages interleave), and `Total BFLOPS`."""
    bf: dict[int, str] = {}
    index = -1
    for line in path.read_text().splitlines():
        if m := re.match(r"\s*(\d+) ", line):
            index = int(m[1])
        if m := re.search(r" (\d+\.\d+) BF$", line):
            bf[index] = m[1]
    total = re.search(r"^Total BFLOPS (\d+\.\d+)$", path.read_text(), re.M)
    assert total, path
    return bf, total[1]


PRINTOUTS = {"yolov4-tiny": (CFG / TINY, None), "yolov7-tiny": (CFG / "yolov7-tiny.cfg", None), "yolov4": (CFG / "yolov4.cfg", None),
             **{f"{c}_1024": (ROOT / "tools" / "goldens" / "cfg" / f"{c}.cfg", 1024) for c in ("conv", "pool", "sam_scale", "shortcut")}}


@pytest.mark.parametrize("name", PRINTOUTS)
def test_alexeyab_bflops_match_its_printout(name):
    """Every layer's BF and the total as AlexeyAB's parser prints them: groups, dilation, strides, every maxpool,
    local_avgpool, max-depth, every shortcut (weighted: x2), nothing for route/upsample/yolo/sam/scale_channels."""
    cfg, size = PRINTOUTS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(cfg, size, size, dialect="alexeyab")
    theirs, total = alexeyab_printout(AB_CLI / "summary" / f"{name}.txt")
    ours = {layer.index: f"{layer.alexeyab_bflops():5.3f}" for layer in net.layers if layer.alexeyab_bflops()}
    assert ours == theirs
    assert f"{sum(layer.alexeyab_bflops() for layer in net.layers):5.3f}" == total


def test_summary_prints_the_dialects_bflops():
    """`pydarknet summary`: AlexeyAB's count for its cfgs (every maxpool), pjreddie's table unchanged for his."""
    ab = run_cli("summary", CFG / TINY)
    assert ab.returncode == 0, ab.stderr
    assert "Total BFLOPs 6.910;" in ab.stdout
    assert re.search(r"^\s+9 maxpoo .* 0\.001 BFLOPs$", ab.stdout, re.M)
    pj = run_cli("summary", CFG / "yolov3-tiny.cfg")
    assert pj.returncode == 0, pj.stderr
    assert "Total BFLOPs 5.565;" in pj.stdout
    assert not re.search(r"maxpoo .*BFLOPs", pj.stdout)


NINE = np.array([[12, 16], [19, 36], [40, 28], [36, 75], [76, 55], [72, 146], [142, 110], [192, 243], [459, 401]])  # yolov4.cfg's
SHAPES = {9: NINE, 6: NINE[[0, 2, 4, 5, 7, 8]]}  # pixels of a 608x608 input


@pytest.mark.parametrize("cfg,num", [("yolov4.cfg", 9), (TINY, 6)])
def test_anchors_written_into_alexeyab_cfgs(cfg, num, tmp_path, capsys):
    """--num_of_clusters 9 / 6 into yolov4 / yolov4-tiny: pixels of the cfg's input, by area, read back by the cfg."""
    rng = np.random.default_rng(0)
    shapes = SHAPES[num]
    boxes = shapes[rng.integers(num, size=600)] * np.exp(rng.normal(0, 0.02, (600, 2))) / 608
    data = write_dataset(tmp_path / "set", np.minimum(boxes, 1))
    target = tmp_path / cfg
    shutil.copy(CFG / cfg, target)
    assert main(["anchors", str(data), "--num_of_clusters", str(num), "--write", str(target)]) == 0
    printed = re.search(r"^anchors = (.*)$", capsys.readouterr().out, re.M)[1]
    anchors = np.array(printed.replace(" ", "").split(","), dtype=float).reshape(-1, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(target)
    assert np.all(np.diff(anchors.prod(axis=1)) > 0)
    assert anchors == pytest.approx(shapes * net.width / 608, rel=0.03, abs=1)
    for head in (layer for layer in net.layers if layer.kind == "yolo"):
        assert head.anchors.numpy() == pytest.approx(anchors)


def test_alexeyab_calc_anchors_form(tmp_path, capsys):
    """`detector calc_anchors DATA -num_of_clusters 9 -width W -height H` in pixels: whole numbers when W > 32,
    four decimals otherwise (AlexeyAB's -width 13 -height 13: grid cells)."""
    rng = np.random.default_rng(1)
    data = write_dataset(tmp_path, NINE[rng.integers(9, size=900)] * np.exp(rng.normal(0, 0.02, (900, 2))) / 608)
    for size, pattern in ((608, r"\d+,\d+"), (13, r"\d+\.\d{4},\d+\.\d{4}")):
        assert main(["detector", "calc_anchors", str(data), "-num_of_clusters", "9", "-width", str(size), "-height", str(size)]) == 0
        printed = re.search(r"^anchors = (.*)$", capsys.readouterr().out, re.M)[1]
        assert re.fullmatch(rf"{pattern}(, {pattern}){{8}}", printed), printed
        anchors = np.array(printed.replace(" ", "").split(","), dtype=float).reshape(-1, 2)
        assert anchors == pytest.approx(NINE * size / 608, rel=0.03, abs=0.6)
