"""Bad input to the CLI: one `pydarknet: ...` line naming what is wrong, a non-zero exit, no traceback,
no file left half-written (the shipped demo model as the network)."""

from __future__ import annotations

import os
import stat

import cv2
import numpy as np
import pytest
import torch

from conftest import DEMO_CFG, DEMO_IMAGE, DEMO_WEIGHTS, ROOT, run_cli
from pydarknet import Darknet
from pydarknet.cli import main
from pydarknet.convert import convert
from tools.make_shapes import make_classification_set, make_detection_set

CFG, WEIGHTS, IMAGE = DEMO_CFG, DEMO_WEIGHTS, DEMO_IMAGE


def one_line(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pydarknet: ") and "Traceback" not in err, err
    assert all(needle in err for needle in needles), err
    return err


@pytest.mark.parametrize(("args", "needles"), [
    (["detect", "C", "W", "I", "--thresh", "abc"], ["--thresh", "'abc'"]),
    (["detect", "C", "W", "I", "--nms", "2"], ["--nms", "from 0 to 1"]),
    (["detect", "C", "W", "I", "--batch", "0"], ["--batch", "at least 1"]),
    (["detect", "C", "W", "I", "--device", "mps"], ["--device", "'mps'"]),
    (["train", "D", "C", "--max-batches", "0"], ["--max-batches"]),
    (["train", "D", "C", "--workers=-1"], ["--workers"]),
    (["classifier", "valid", "D", "C", "W", "--top", "0"], ["--top"]),
    (["anchors", "D", "--width=-5"], ["--width"]),
    (["partial", "C", "W", "O", "-1"], ["N"]),
    (["detector", "frob"], ["detector", "'frob'", "calc_anchors"]),
    (["bogus"], ["invalid choice"]),
])
def test_bad_arguments_are_one_line_before_any_work(args, needles, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        code = main(args)
        raise SystemExit(code)
    assert stop.value.code == 2
    one_line(capsys, *needles)


def test_device_cuda_without_cuda_is_refused(capsys) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit):
        main(["map", "D", "C", "W", "--device", "cuda"])
    one_line(capsys, "CUDA is not available")


def test_partial_refuses_a_converted_format_name(tmp_path, capsys) -> None:
    assert main(["partial", str(CFG), str(WEIGHTS), str(tmp_path / "cut.pt"), "5"]) == 1
    one_line(capsys, "cut.pt", "convert")
    assert not (tmp_path / "cut.pt").exists()


def test_unwritable_output_is_one_line(tmp_path, capsys) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("")
    assert main(["detect", str(CFG), str(WEIGHTS), str(IMAGE), str(IMAGE), "--out", str(taken)]) == 1
    one_line(capsys, str(taken))


def test_empty_folder_and_thin_image_are_reported(tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["detect", str(CFG), str(WEIGHTS), str(tmp_path / "empty")]) == 1
    one_line(capsys, "empty", "no images")
    thin = tmp_path / "thin.png"
    cv2.imwrite(str(thin), np.zeros((1, 3000, 3), np.uint8))  # letterboxed to 544x0
    assert main(["detect", str(CFG), str(WEIGHTS), str(thin), "--out", str(tmp_path / "out")]) == 1
    assert "thin.png" in capsys.readouterr().err


def test_diverged_weights_are_refused(tmp_path, capsys) -> None:
    data = bytearray(WEIGHTS.read_bytes())
    data[-4:] = np.float32(np.nan).tobytes()  # the last float: a weight of layer 13, the last convolution
    bad = tmp_path / "nan.weights"
    bad.write_bytes(bytes(data))
    assert main(["detect", str(CFG), str(bad), str(IMAGE)]) == 1
    one_line(capsys, "nan.weights", "layer 13", "NaN")


def test_converted_checkpoints_detect_and_are_named_where_weights_are_needed(tmp_path, capsys) -> None:
    converted = tmp_path / "demo.pt"
    convert(CFG, WEIGHTS, converted)
    assert main(["detect", str(CFG), str(converted), str(IMAGE), "--out", str(tmp_path / "out")]) == 0
    assert "cross: 98%" in capsys.readouterr().out
    assert main(["partial", str(CFG), str(converted), str(tmp_path / "cut.conv.5"), "5"]) == 1
    one_line(capsys, "demo.pt", "a PyTorch (zip) file, not Darknet weights")


def test_damaged_pt_checkpoints_are_one_line(tmp_path, capsys) -> None:
    good = tmp_path / "good.pt"
    convert(CFG, WEIGHTS, good)
    checkpoint = torch.load(good, weights_only=True)
    (tmp_path / "junk.pt").write_bytes(b"hi")
    torch.save({**checkpoint, "cfg": 7}, tmp_path / "cfg-int.pt")
    torch.save({k: v for k, v in checkpoint.items() if k != "header"}, tmp_path / "no-header.pt")
    torch.save({**checkpoint, "cfg": checkpoint["cfg"].replace("filters=8", "filters=abc", 1)}, tmp_path / "bad-cfg.pt")
    for name, needle in (("junk.pt", "not a PyTorch checkpoint"), ("cfg-int.pt", "'cfg'"),
                         ("no-header.pt", "'header'"), ("bad-cfg.pt", "bad-cfg.pt (embedded")):
        assert main(["convert", "-", str(tmp_path / name), str(tmp_path / "out.weights")]) == 1
        one_line(capsys, name, needle)
    assert not (tmp_path / "out.weights").exists()


def test_valid_writes_each_result_beside_its_target(tmp_path, monkeypatch) -> None:
    """An -out prefix naming a folder: the results go there, no temporary file is left anywhere."""
    data = make_detection_set(tmp_path / "ds", seed=0, n_train=1, n_valid=2)
    monkeypatch.chdir(tmp_path)
    assert main(["valid", str(data), str(CFG), str(WEIGHTS), "--out", "sub/dir/pre_"]) == 0
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*pre_*"))
    assert written and all(p.startswith("results/sub/dir/pre_") and p.endswith(".txt") for p in written), written
    assert not list(tmp_path.rglob("*.tmp"))


def test_annotated_video_gets_the_usual_permissions(tmp_path, monkeypatch) -> None:
    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 48))
    for _ in range(2):
        writer.write(np.full((48, 64, 3), 127, np.uint8))
    writer.release()
    monkeypatch.chdir(tmp_path)
    assert main(["detect", str(CFG), str(WEIGHTS), str(video), "--json"]) == 0
    mode = stat.S_IMODE((tmp_path / "predictions.avi").stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_classifier_valid_reports_paths_without_a_label(tmp_path, capsys) -> None:
    data = make_classification_set(tmp_path / "cls", seed=0, n_train=1, n_valid=6)
    cfg = ROOT / "cfg" / "tiny-shapes-classifier.cfg"
    weights = tmp_path / "random.weights"
    torch.manual_seed(0)
    Darknet(cfg).save_weights(weights)
    valid = tmp_path / "cls" / "valid.list"
    valid.write_text(valid.read_text() + f"{IMAGE}\n")  # holds none of the shape names
    assert main(["classifier", "valid", str(data), str(cfg), str(weights), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pydarknet: warning:" in err and "1 of 7 image paths hold no label" in err, err
    assert main(["classifier", "valid", str(data), str(CFG), str(WEIGHTS)]) == 1
    one_line(capsys, "a detector")


def test_map_with_a_bad_coco_annotation_file_is_one_line(tmp_path, capsys) -> None:
    data = make_detection_set(tmp_path / "ds", seed=0, n_train=1, n_valid=2)
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "other.json").write_text('{"images": [], "annotations": [], "categories": []}')
    for name, needle in (("list.json", "not a COCO annotation file"), ("other.json", "do not hold the valid images")):
        assert main(["map", str(data), str(CFG), str(WEIGHTS), "--coco-gt", str(tmp_path / name)]) == 1
        lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("pydarknet")]
        assert len(lines) == 1 and needle in lines[0], lines


def test_a_broken_video_is_one_line_without_ffmpeg_noise(tmp_path) -> None:
    (tmp_path / "fake.mp4").write_text("not a video")
    out = run_cli("detect", CFG, WEIGHTS, tmp_path / "fake.mp4", cwd=tmp_path)
    assert out.returncode == 1 and out.stderr == f"pydarknet: {tmp_path / 'fake.mp4'}: cannot open video\n", out.stderr


def test_an_int_beyond_c_range_in_a_cfg_is_one_line(tmp_path, capsys) -> None:
    cfg = tmp_path / "huge.cfg"
    cfg.write_text("[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=99999999999999999999\nsize=3\n")
    assert main(["summary", str(cfg)]) == 1
    one_line(capsys, "huge.cfg:6", "filters", "out of range")
