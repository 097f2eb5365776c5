"""`pydarknet detect` through the real console script, on the golden slim network."""

from __future__ import annotations

import json
import shutil

import cv2
import pytest

from conftest import CFG, GOLDEN, MANIFEST, ROOT, run_cli
from helpers import assert_same_lines, golden_lines
from pydarknet.infer.detect import find_names, names_from_data

CASE = next(c for c in MANIFEST["forward"] if c["name"] == "yolov2-tiny-slim_scream_160")
CFG_FILE = CFG / CASE["cfg"]
IMAGE = GOLDEN / "images" / CASE["image"]
VOC = (CFG / "voc.names").read_text().split("\n")


@pytest.fixture(scope="module")
def weights(random_weights):
    return random_weights(CASE["cfg"])


def assert_one_line_errors(stderr: str, count: int) -> None:
    lines = stderr.splitlines()
    assert len(lines) == count and all(line.startswith("pydarknet: ") for line in lines), stderr
    assert "Traceback" not in stderr


def test_prints_darknet_lines_and_writes_predictions_jpg(weights, tmp_path):
    out = run_cli("detect", CFG_FILE, weights, IMAGE, "--size", "160x160", "--thresh", ".1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"{IMAGE}: Predicted in ")
    theirs, (width, height) = golden_lines(CASE)
    # names from cfg/voc.names (the .names beside the cfg with 20 lines); Darknet's "%.0f%%"
    assert [line.split("\t")[0] for line in lines[1:-1]] == [f"{VOC[c]}: {p * 100:.0f}%" for c, p, *_ in theirs]
    assert lines[-1] == "wrote predictions.jpg"
    drawn = cv2.imread(str(tmp_path / "predictions.jpg"))
    assert drawn.shape == (height, width, 3)


def test_darknet_spelling_with_data_file_and_json(weights, tmp_path):
    out = run_cli("detector", "test", "cfg/voc.data", CFG_FILE, weights, IMAGE, "-thresh", ".1", "--size", "160x160",
                  "--json", "--out", tmp_path)
    assert out.returncode == 0, out.stderr
    [record] = [json.loads(line) for line in out.stdout.splitlines()]
    theirs, (width, height) = golden_lines(CASE)
    assert (record["image"], record["width"], record["height"]) == (str(IMAGE), width, height)
    ours = [(d["class"], d["prob"], *d["box"], d["objectness"]) for d in record["detections"]]
    assert_same_lines(ours, theirs, CASE["thresh"])
    assert [d["name"] for d in record["detections"]] == [VOC[line[0]] for line in theirs]
    first = record["detections"][0]
    x, y, w, h = first["box"]
    assert first["pixels"] == [max(int((x - w / 2) * width), 0), max(int((y - h / 2) * height), 0),
                               min(int((x + w / 2) * width), width - 1), min(int((y + h / 2) * height), height - 1)]
    assert (tmp_path / "scream.jpg").is_file()


def test_folders_lists_and_bad_images(weights, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    shutil.copy(IMAGE, folder / "scream.png")
    shutil.copy(GOLDEN / "images" / "dog.png", folder / "dog.png")
    (folder / "broken.jpg").write_text("not an image")
    (tmp_path / "list.txt").write_text("imgs/dog.png\nmissing.png\n")
    out = run_cli("detect", CFG_FILE, weights, folder, tmp_path / "list.txt", tmp_path / "nothere.png",
                  "--size", "160x160", "--out", tmp_path / "out", cwd=tmp_path)
    assert out.returncode == 1
    assert_one_line_errors(out.stderr, 3)
    assert "broken.jpg" in out.stderr and "missing.png" in out.stderr and "nothere.png" in out.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dog.jpg", "dog_2.jpg", "scream.jpg"]
    assert out.stdout.count("Predicted in") == 3


def test_missing_or_mismatched_weights_is_one_line(tmp_path):
    out = run_cli("detect", CFG_FILE, tmp_path / "none.weights", IMAGE, cwd=tmp_path)
    assert out.returncode == 1 and "none.weights" in out.stderr
    assert_one_line_errors(out.stderr, 1)
    short = tmp_path / "short.weights"
    short.write_bytes(bytes(20 + 4000))
    out = run_cli("detect", CFG_FILE, short, IMAGE, cwd=tmp_path)
    assert out.returncode == 1 and "short.weights" in out.stderr
    assert_one_line_errors(out.stderr, 1)
    assert not (tmp_path / "predictions.jpg").exists()


def test_video_in_annotated_video_out(weights, tmp_path):
    frame = cv2.resize(cv2.imread(str(IMAGE)), (96, 128))
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 5, (96, 128))
    for _ in range(3):
        writer.write(frame)
    writer.release()
    out = run_cli("detect", CFG_FILE, weights, clip, "--size", "160x160", "--thresh", ".1", "--json", "--out", tmp_path / "out")
    assert out.returncode == 0, out.stderr
    assert [json.loads(line)["frame"] for line in out.stdout.splitlines()] == [0, 1, 2]
    result = cv2.VideoCapture(str(tmp_path / "out" / "clip.mp4"))
    assert int(result.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    result.release()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["clip.mp4"]


def test_names_lookup(tmp_path):
    """A .names beside the cfg (or in ../data) with the head's line count, the cfg's stem first; .data names= paths."""
    assert find_names(CFG / "yolov2.cfg", 80).name == "coco.names"
    assert find_names(CFG / "yolov2-voc.cfg", 20).name == "voc.names"
    assert find_names(CFG / "yolo9000.cfg", 9418).name == "9k.names"
    assert find_names(CFG / "yolov2.cfg", 7) is None
    (tmp_path / "cfg").mkdir()
    (tmp_path / "data").mkdir()
    cfg = tmp_path / "cfg" / "mine.cfg"
    cfg.write_text("[net]\n")
    (tmp_path / "data" / "a.names").write_text("x\ny\n")
    assert find_names(cfg, 2) == tmp_path / "data" / "a.names"
    (tmp_path / "data" / "mine.names").write_text("p\nq\n")
    assert find_names(cfg, 2) == tmp_path / "data" / "mine.names"
    assert names_from_data(CFG / "coco.data").resolve() == ROOT / "data" / "coco.names"
