"""AlexeyAB's command line as its users type it, through the real console script (issue #20 items 1 and 5).

`detector test ... -dont_show -ext_output -out result.json -save_labels` against what AlexeyAB's Darknet
printed and wrote for the shipped demo model (tests/golden-alexeyab-cli/test), and in pjreddie's dialect
against the C formulas applied to pydarknet's detections; image paths from stdin; `detector recall`
against AlexeyAB's lines; the AlexeyAB options refused by name; -i / -gpus; --version; the usage lines.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import DEMO_CFG, DEMO_IMAGE, DEMO_WEIGHTS, ROOT, run_cli
from pydarknet import Darknet
from pydarknet.cli import UNSUPPORTED, build_parser, main
from pydarknet.progress import PlainProgress
from pydarknet.convert import network_with_weights
from pydarknet.data import DataFile, read_names
from pydarknet.infer.detect import Detection, detect_image
from pydarknet.infer.formats import c_round, ext_output, percent
from tools.make_shapes import make_detection_set

GOLDEN_CLI = ROOT / "tests" / "golden-alexeyab-cli"
NAMES = ROOT / "data" / "shapes.names"
DEMO_PIXELS = "c52b318eb5b260de4925a5ea5443f4a9d75080fc58502956a5b0df538779ca2d"  # golden README: demo.png
RECALL_PIXELS = "2cbbabb3ce4a046f750b73a8aef522b5c24efa50aab1816e92a919932a91ba7d"  # golden README: recall/
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def as_png(jpg: Path, png: Path, digest: hashlib._Hash) -> None:
    """Save OpenCV's pixels of `jpg` as `png` (what AlexeyAB's stb_image read), adding them to `digest`."""
    pixels = cv2.imread(str(jpg))
    digest.update(pixels.tobytes())
    cv2.imwrite(str(png), pixels)


def shapes_data(folder: Path, valid: Path | None = None) -> Path:
    data = folder / "shapes.data"
    data.write_text(f"classes=6\nnames={NAMES}\n" + (f"valid={valid}\n" if valid else ""))
    return data


def number_shapes(text: str) -> str:
    """`text` with each number replaced by its shape: `#` and as many `d` as it has decimals (`0.5164` -> `#.dddd`)."""
    return NUMBER.sub(lambda m: "#" + ("." + "d" * len(m[0].split(".")[1]) if "." in m[0] else ""), text)


def assert_same_but_numbers(ours: str, theirs: str, tolerance: float) -> None:
    """The same text, character for character, around the numbers, each number printed with as many decimals;
    the numbers within `tolerance` (pydarknet's CLI runs the fast InferenceModel: its floats may differ from the
    C's in the 6th digit)."""
    assert number_shapes(ours) == number_shapes(theirs), f"\n{ours}\n---\n{theirs}"
    for a, b in zip(NUMBER.findall(ours), NUMBER.findall(theirs)):
        assert abs(float(a) - float(b)) <= tolerance, (a, b)


def one_line(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pydarknet: ") and "Traceback" not in err, err
    assert all(needle in err for needle in needles), err
    return err


def test_detector_test_writes_what_alexeyabs_darknet_writes(tmp_path) -> None:
    """AlexeyAB's own command, its default -thresh (.25): the same lines, JSON file and label file as its Darknet."""
    digest = hashlib.sha256()
    as_png(DEMO_IMAGE, tmp_path / "demo.png", digest)
    assert digest.hexdigest() == DEMO_PIXELS, "OpenCV decodes data/shapes-demo.jpg to other pixels than the golden's"
    out = run_cli("detector", "test", shapes_data(tmp_path), DEMO_CFG, DEMO_WEIGHTS, "demo.png", "-dont_show",
                  "-ext_output", "-out", "result.json", "-save_labels", "--dialect", "alexeyab", cwd=tmp_path)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    lines = out.stdout.splitlines()
    assert re.fullmatch(r"demo\.png: Predicted in \d+\.\d{6} milli-seconds\.", lines[0]), lines[0]
    assert lines[1:-1] == (GOLDEN_CLI / "test" / "lines.txt").read_text().splitlines()
    assert lines[-1] == "wrote predictions.jpg" and (tmp_path / "predictions.jpg").stat().st_size > 0
    assert_same_but_numbers((tmp_path / "result.json").read_text(), (GOLDEN_CLI / "test" / "result.json").read_text(), 1e-5)
    assert_same_but_numbers((tmp_path / "demo.txt").read_text(), (GOLDEN_CLI / "test" / "demo.txt").read_text(), 1.5e-4)


def round_away(x: float) -> float:
    """C's round(): halves away from zero (written again here, independently of pydarknet.infer.formats)."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def expected_ext_lines(dets, width: int, height: int, names: list[str]) -> list[str]:
    """src/image.c draw_detections_v3 with ext_output, written out again here: sorted by float `x - w/2`, the best
    class first, `%.0f%%` of the float `prob*100`, `round(...)` of the float pixel products, `%4.0f`."""
    f32 = np.float32
    lines = []
    for det in sorted(dets, key=lambda d: f32(d.box[0]) - f32(d.box[2]) / f32(2)):
        x, y, w, h = map(f32, det.box)
        box = (round_away(float((x - w / f32(2)) * f32(width))), round_away(float((y - h / f32(2)) * f32(height))),
               round_away(float(w * f32(width))), round_away(float(h * f32(height))))
        best = det.best_class
        for c in [best, *(c for c, _ in det.labels if c != best)]:
            lines.append(f"{names[c]}: {float(f32(det.probs[c]) * f32(100)):.0f}%\t(left_x: {box[0]:4.0f}   "
                         f"top_y: {box[1]:4.0f}   width: {box[2]:4.0f}   height: {box[3]:4.0f})")
    return lines


def test_image_paths_from_stdin_with_ext_output_json_and_labels(tmp_path) -> None:
    """pjreddie's dialect (the demo model's own), paths read from stdin as `< list.txt` gives them: per image the
    -ext_output lines computed from pydarknet's detections by the C formulas, a JSON object, a label file; a video
    read the same way writes predictions.avi with no progress bar on a non-terminal stderr."""
    shutil.copy(DEMO_IMAGE, tmp_path / "a.jpg")
    as_png(DEMO_IMAGE, tmp_path / "b.png", hashlib.sha256())
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 48))
    for _ in range(3):
        writer.write(np.full((48, 64, 3), 127, np.uint8))
    writer.release()
    out = run_cli("detector", "test", shapes_data(tmp_path), DEMO_CFG, DEMO_WEIGHTS, "-dont_show", "-ext_output",
                  "-out", "result.json", "-save_labels", "-thresh", ".25", cwd=tmp_path, stdin="a.jpg\n\nb.png\nclip.avi\n")
    assert out.returncode == 0 and out.stderr == "", out.stderr
    net = network_with_weights(DEMO_CFG, DEMO_WEIGHTS).eval()
    names = read_names(NAMES)
    dets = detect_image(net, tmp_path / "a.jpg", 0.25, 0.5, 0.45, names=names)
    assert [d.name for d in dets] == [names[d.best_class] for d in dets]
    block = [*expected_ext_lines(dets, 640, 480, names), "wrote predictions.jpg"]
    lines = out.stdout.splitlines()
    assert re.fullmatch(r"a\.jpg: Predicted in \d+\.\d{6} seconds\.", lines[0]) and lines[1:len(block) + 1] == block
    assert lines[len(block) + 1].startswith("b.png: Predicted in ") and lines[len(block) + 2:-1] == block
    assert re.fullmatch(r"clip\.avi: 3 frames, \d+ detections; wrote predictions\.avi", lines[-1])
    frames = json.loads((tmp_path / "result.json").read_text())
    assert [(f["frame_id"], f["filename"]) for f in frames] == [(1, "a.jpg"), (2, "b.png")]
    for frame in frames:
        assert all(set(o) == {"class_id", "name", "relative_coordinates", "confidence"} for o in frame["objects"])
        got = [(o["class_id"], o["name"], *o["relative_coordinates"].values(), o["confidence"]) for o in frame["objects"]]
        assert all(list(o["relative_coordinates"]) == ["center_x", "center_y", "width", "height"] for o in frame["objects"])
        want = [(c, names[c], *d.box, p) for d in dets for c, p in d.labels]
        assert [g[:2] for g in got] == [w[:2] for w in want]
        np.testing.assert_allclose([g[2:] for g in got], [w[2:] for w in want], atol=1e-5)
    labels = "".join(f"{d.best_class} {d.box[0]:.4f} {d.box[1]:.4f} {d.box[2]:.4f} {d.box[3]:.4f}\n" for d in dets)
    for name in ("a.txt", "b.txt"):
        assert_same_but_numbers((tmp_path / name).read_text(), labels, 1.5e-4)


def test_save_labels_never_writes_over_the_image(tmp_path, capsys, monkeypatch) -> None:
    """A .tif keeps its name under Darknet's label rule (AlexeyAB's would write its labels over the image): refused."""
    cv2.imwrite(str(tmp_path / "x.tif"), cv2.imread(str(DEMO_IMAGE)))
    before = (tmp_path / "x.tif").read_bytes()
    monkeypatch.chdir(tmp_path)
    assert main(["detector", "test", str(shapes_data(tmp_path)), str(DEMO_CFG), str(DEMO_WEIGHTS), "x.tif", "-save_labels"]) == 1
    one_line(capsys, "x.tif: --save-labels: its label file would be x.tif")
    assert (tmp_path / "x.tif").read_bytes() == before


def test_detector_recall_prints_alexeyabs_lines(tmp_path) -> None:
    make_detection_set(tmp_path / "ds", seed=0, n_train=0, n_valid=4, size_range=(160, 320))
    flat, digest = tmp_path / "flat", hashlib.sha256()
    flat.mkdir()
    for i in range(4):
        as_png(tmp_path / "ds" / "images" / "valid" / f"{i:06d}.jpg", flat / f"{i:06d}.png", digest)
        shutil.copy(tmp_path / "ds" / "labels" / "valid" / f"{i:06d}.txt", flat / f"{i:06d}.txt")
    assert digest.hexdigest() == RECALL_PIXELS, "tools/make_shapes.py or OpenCV gives other pixels than the golden's"
    (flat / "valid.txt").write_text("".join(f"{flat / f'{i:06d}.png'}\n" for i in range(4)))
    out = run_cli("detector", "recall", shapes_data(flat, flat / "valid.txt"), DEMO_CFG, DEMO_WEIGHTS, "--dialect", "alexeyab")
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert out.stdout == (GOLDEN_CLI / "recall" / "lines.txt").read_text()


def test_unsupported_alexeyab_option_is_one_line_naming_it() -> None:
    out = run_cli("detector", "train", "a.data", "b.cfg", "-dont_show", "-http_port", "8090", "-map")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("pydarknet: -http_port: AlexeyAB's Darknet option") and out.stderr.count("\n") == 1
    assert "does not support" in out.stderr


@pytest.mark.parametrize("verb", ["test", "demo"])
@pytest.mark.parametrize("flag", sorted(UNSUPPORTED))
def test_every_unsupported_option_is_refused_before_any_work(flag, verb, capsys) -> None:
    assert main(["detector", verb, "a.data", "b.cfg", "c.weights", "d.jpg", flag, "1"]) == 2
    one_line(capsys, f"pydarknet: {flag}: AlexeyAB's Darknet option", "does not support")


def test_gpu_options(capsys) -> None:
    assert main(["detector", "train", "a.data", "b.cfg", "c.conv.29", "-gpus", "0,1", "-map", "-dont_show"]) == 2
    err = one_line(capsys, "-gpus 0,1", "torchrun")
    assert err.rstrip("\n").endswith("CUDA_VISIBLE_DEVICES=0,1 torchrun --standalone --nproc_per_node 2 -m pydarknet "
                                      "detector train a.data b.cfg c.conv.29 -map -dont_show --device cuda")
    assert main(["detector", "test", "a.data", "b.cfg", "c.weights", "-gpus", "zero"]) == 2
    one_line(capsys, "-gpus zero", "GPU numbers")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    for option in ("-i", "-gpus"):
        assert main(["detector", "test", "a.data", "b.cfg", "c.weights", "d.jpg", option, "0"]) == 2
        one_line(capsys, f"{option} 0: CUDA is not available")


def test_version() -> None:
    out = run_cli("--version")
    assert (out.returncode, out.stdout, out.stderr) == (0, "pydarknet 0.1.0\n", "")


def test_version_verb(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["version"])
    assert stop.value.code == 0 and capsys.readouterr().out == "pydarknet 0.1.0\n"


def test_detector_test_help_shows_darknets_form() -> None:
    out = run_cli("detector", "test", "--help")
    assert out.returncode == 0
    assert out.stdout.startswith("usage: pydarknet detector test DATA CFG WEIGHTS [IMAGE ...] [-thresh T] [-ext_output]")


def test_detector_help_lists_the_forms(capsys) -> None:
    assert main(["detector", "--help"]) == 0
    usage = capsys.readouterr().out.splitlines()
    assert usage[0] == ("usage: pydarknet detector test DATA CFG WEIGHTS [IMAGE ...] [-thresh T] [-ext_output] "
                        "[-out RESULT.json] [-save_labels] [options]")
    assert [line.split()[2] for line in usage[1:6]] == ["train", "valid", "map", "recall", "calc_anchors"]


def verb_parsers(parser: argparse.ArgumentParser, prefix: str = "") -> list[tuple[str, argparse.ArgumentParser]]:
    """(name, parser) of every verb and sub-verb (`classifier predict`)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [(f"{prefix}{name}", sub), *verb_parsers(sub, f"{prefix}{name} ")]
    return found


@pytest.mark.parametrize(("name", "parser"), verb_parsers(build_parser()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_verb_usage_names_the_verb(name, parser) -> None:
    usage = parser.format_usage()
    assert usage.startswith(f"usage: pydarknet {name} "), usage
    assert "[[" not in usage, usage  # argparse's rendering of a multi-word metavar with nargs="+"


def test_classifier_predict_names_each_image(tmp_path, capsys) -> None:
    cfg = ROOT / "cfg" / "tiny-shapes-classifier.cfg"
    weights = tmp_path / "random.weights"
    torch.manual_seed(0)
    Darknet(cfg).save_weights(weights)
    assert main(["classifier", "predict", str(cfg), str(weights), str(DEMO_IMAGE), str(DEMO_IMAGE), "--names", str(NAMES)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [i for i, line in enumerate(lines) if line.startswith(f"{DEMO_IMAGE}: Predicted in ")] == [0, 2]
    assert re.fullmatch(r" *(\d+\.\d\d|nan)%: \w+", lines[1])  # random weights: NaN probabilities are possible


def test_readme_classifier_data_file_finds_its_names() -> None:
    data = DataFile.read(ROOT / "cfg" / "imagenet1k.data")
    assert data.names_path is not None and len(data.names) >= data.classes


def test_c_rounding_of_halves() -> None:
    """The demo's numbers hit no exact half: C's round() (away from 0) and printf's %.0f (to even) on ties."""
    det = Detection((0.25, 0.5, 0.5, 0.5), 1.0, np.array([0.125], np.float32))
    assert ext_output(det, 5, 5) == "\t(left_x:    0   top_y:    1   width:    3   height:    3)"  # 1.25 -> 1, 2.5 -> 3
    assert c_round(-2.5) == -3 and percent(0.125) == "12%"


def test_plain_progress_lines_every_interval() -> None:
    now = [0.0]
    lines: list[str] = []

    class Stream:
        def write(self, text: str) -> None:
            lines.append(text)

        def flush(self) -> None:
            pass

    bar = PlainProgress(40, "valid", "img", interval=10, stream=Stream(), clock=lambda: now[0])
    for t in (1, 5, 10, 12, 25):
        now[0] = t
        bar.update(8)
    assert "".join(lines) == "valid: 24/40 img (60%)\nvalid: 40/40 img (100%)\n"
