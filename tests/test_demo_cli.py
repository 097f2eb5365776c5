"""`pydarknet demo` / `pydarknet detector demo` (AlexeyAB's src/demo.c) through the real console script.

The shipped shapes model on small videos made here from data/shapes-demo.jpg: every frame gets one
`Objects:` block with the detections `detect` finds on that frame (as decoded from the input video),
and the annotated video has the input's frame count and fps.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import DEMO_CFG, DEMO_IMAGE, DEMO_WEIGHTS, ROOT, run_cli
from pydarknet.cli import darknet_spelling, main
from pydarknet.commands.detect import load_detector
from pydarknet.infer.detect import detect_batch
from pydarknet.infer.draw import draw_detections

THRESH = 0.25  # AlexeyAB's run_detector default, demo's default here
SIZE = "320x320"  # the network's input: the shapes are still found in these small frames, 3x faster than the cfg's 544
BLOCK = re.compile(r"^Objects:\n\n(.*?)\nFPS:\d+\.\d \t AVG_FPS:\d+\.\d$", re.M | re.S)
LINE = re.compile(r"^(\w+): (\d+)% (?:\t\(left_x: +(-?\d+)   top_y: +(-?\d+)   width: +(\d+)   height: +(\d+)\))?$")


@pytest.fixture(scope="module")
def detector():
    """The network and names exactly as `pydarknet detect` loads them (its load_detector), at SIZE."""
    args = argparse.Namespace(cfg=str(DEMO_CFG), weights=str(DEMO_WEIGHTS), size=SIZE, device="cpu", nms=None, thresh=0.25,
                              names=str(ROOT / "data" / "shapes.names"), data=None)
    return load_detector(args)


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "shapes.data"
    path.write_text(f"classes=6\nnames={ROOT / 'data' / 'shapes.names'}\n")
    return path


def shifted_frames(count: int, size: tuple[int, int] = (160, 120)) -> list[np.ndarray]:
    """data/shapes-demo.jpg at `size`, rolled 3 pixels further right each frame."""
    small = cv2.resize(cv2.imread(str(DEMO_IMAGE)), size, interpolation=cv2.INTER_AREA)
    return [np.roll(small, 3 * k, axis=1) for k in range(count)]


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(frame)
    writer.release()


def read_video(path: Path) -> tuple[list[np.ndarray], int, float]:
    """(the frames read, CAP_PROP_FRAME_COUNT, CAP_PROP_FPS)."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), path
    count, fps = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while (read := capture.read())[0]:
        frames.append(read[1])
    capture.release()
    return frames, count, fps


def printed_blocks(stdout: str) -> list[list[tuple]]:
    """Each frame's `Objects:` block as (name, percent, [left, top, width, height]) tuples."""
    blocks = [match.group(1) for match in BLOCK.finditer(stdout)]
    assert len(blocks) == stdout.count("Objects:"), stdout
    parsed = []
    for block in blocks:
        assert block == "" or block.endswith("\n"), block  # demo.c: "\nFPS:..." after the last line
        matches = [LINE.match(line) for line in block.splitlines()]
        assert all(matches), block
        parsed.append([(m[1], int(m[2]), *(int(v) for v in m.groups()[2:] if v is not None)) for m in matches])
    return parsed


def expected_lines(dets, names: list[str]) -> list[tuple[str, int]]:
    """(name, C's `%.0f` of float prob * 100) per (detection, class above thresh): one class each here."""
    assert all(len(d.labels) == 1 for d in dets)
    return [(names[c], int(f"{np.float32(p) * np.float32(100):.0f}")) for d in dets for c, p in d.labels]


def test_darknet_spelling():
    argv = ["detector", "demo", "d.data", "c.cfg", "w.weights", "v.mp4", "-c", "1", "-out_filename", "o.avi",
            "-dont_show", "-thresh", ".3", "-ext_output"]
    assert darknet_spelling(argv) == ["demo", "--data", "d.data", "c.cfg", "w.weights", "v.mp4", "-c", "1",
                                      "--out_filename", "o.avi", "--dont_show", "--thresh", ".3", "--ext_output"]


def test_video_file_frames_detections_and_annotated_video(detector, data_file, tmp_path):
    net, names = detector
    video = tmp_path / "in.avi"
    write_video(video, shifted_frames(10), fps=10)  # batches of 4, 4 and 2 frames
    decoded, _, _ = read_video(video)
    out = run_cli("detector", "demo", data_file, DEMO_CFG, DEMO_WEIGHTS, video, "-dont_show",
                  "-out_filename", "out.avi", "-prefix", "frame", "--size", SIZE, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stderr == "" and out.stdout.startswith(f"video file: {video}\nVideo stream: 160 x 120 \n")
    assert out.stdout.endswith("Stream closed.\nwrote out.avi: 10 frames at 10 fps\n")
    written, count, fps = read_video(tmp_path / "out.avi")
    assert (len(written), count, fps) == (10, 10, 10.0)
    frame_files = [f"frame_{k:08d}.jpg" for k in range(1, 11)]  # -prefix frame: demo.c's "%s_%08d.jpg", from 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [*frame_files, "in.avi", "out.avi", "shapes.data"]  # no temporary

    blocks = printed_blocks(out.stdout)
    assert len(blocks) == 10
    found = [detect_batch(net, [frame], THRESH, THRESH, 0.45)[0] for frame in decoded]  # `detect` of each frame
    for k, (block, dets) in enumerate(zip(blocks, found)):
        assert len(dets) >= 5, k  # the shapes are found: boxes are drawn
        assert block == expected_lines(dets, names), f"frame {k}"
        # the box and label pixels differ from the input in the output, the others stay (MJPG-close)
        drawn = draw_detections(decoded[k].copy(), dets, names)
        boxes = (drawn != decoded[k]).any(axis=2)
        to_input, to_drawn = (np.abs(written[k] - im.astype(int)).mean(axis=2) for im in (decoded[k], drawn))
        # MJPG at 160x120 blurs the thin lines: measured ~90 from the input, ~20 from the drawing there, ~4.5 elsewhere
        assert to_input[boxes].mean() > 60 and to_drawn[boxes].mean() < 30 and to_input[~boxes].mean() < 8, k


def test_glob_of_images_in_sorted_order_with_ext_output(detector, tmp_path, capsys):
    net, names = detector
    frames = shifted_frames(3, size=(200, 150))
    for k, name in enumerate(["b.png", "c.png", "a.png"]):  # sorted: a (frame 2), b (0), c (1)
        cv2.imwrite(str(tmp_path / name), frames[k])
    assert main(["demo", str(DEMO_CFG), str(DEMO_WEIGHTS), str(tmp_path / "*.png"), "--names",
                 str(ROOT / "data" / "shapes.names"), "-ext_output", "-out_filename", str(tmp_path / "out.mp4"),
                 "--size", SIZE]) == 0
    out = capsys.readouterr()
    assert out.err == "pydarknet: warning: no window: pydarknet demo never opens one (-dont_show silences this; " \
                      "-out_filename writes the annotated video)\n"
    blocks = printed_blocks(out.out)
    found = detect_batch(net, [frames[2], frames[0], frames[1]], THRESH, THRESH, 0.45)
    assert [[line[:2] for line in block] for block in blocks] == [expected_lines(dets, names) for dets in found]
    for block, dets in zip(blocks, found):
        for (_, _, left, top, width, height), det in zip(block, dets):
            x1, y1, x2, y2 = det.pixel_box(200, 150)  # -ext_output: the drawn box's corner and size
            assert (left, top) == (x1, y1) and abs(width - (x2 - x1)) <= 1 and abs(height - (y2 - y1)) <= 1
    written, count, fps = read_video(tmp_path / "out.mp4")
    assert (len(written), count, fps) == (3, 3, 25.0)  # images have no fps: demo.c's 25


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_url_stream_frame_by_frame(tmp_path, capsys):
    """A URL (here a video served over HTTP): every frame, the stream's fps kept."""
    write_video(tmp_path / "in.avi", shifted_frames(5, size=(96, 96)), fps=12)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=tmp_path))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/in.avi"
    try:
        assert main(["demo", str(DEMO_CFG), str(DEMO_WEIGHTS), url, "-dont_show", "--size", "128x128",
                     "-out_filename", str(tmp_path / "out.mp4")]) == 0
    finally:
        server.shutdown()
    out = capsys.readouterr()
    assert out.err == "" and out.out.startswith(f"video file: {url}\nVideo stream: 96 x 96 \n")
    assert len(printed_blocks(out.out)) == 5
    written, count, fps = read_video(tmp_path / "out.mp4")
    assert (len(written), count, fps) == (5, 5, 12.0)


def demo_that_cannot_open(source: list[str], data_file: Path) -> int:
    """`detector demo` of `source` (in-process: it fails before loading the network); no output file is left."""
    out = data_file.parent / "out.avi"
    status = main(["detector", "demo", str(data_file), str(DEMO_CFG), str(DEMO_WEIGHTS), *source, "-dont_show",
                   "-out_filename", str(out)])
    assert not out.exists() and [p.name for p in data_file.parent.iterdir()] == ["shapes.data"]
    return status


def test_camera_that_cannot_be_opened_is_one_line(data_file, capfd):
    assert demo_that_cannot_open(["-c", "99"], data_file) == 1
    # OpenCV's own "[ WARN:0@...] can't open camera by index" lines (file descriptor 2) are silenced
    assert capfd.readouterr().err == "pydarknet: camera 99: cannot open it (no such camera, or no access to it)\n"


def test_url_that_cannot_be_opened_is_one_line(data_file, capsys):
    url = "http://127.0.0.1:9/none.mjpg"  # the discard port: connection refused
    assert demo_that_cannot_open([url], data_file) == 1
    # (FFmpeg's own "Connection refused" line is silenced by the CLI's OPENCV_FFMPEG_LOGLEVEL, read at the first video
    # a process opens: in the pytest process that was earlier, hence only Python's stderr here)
    assert capsys.readouterr().err == f"pydarknet: {url}: cannot open this stream\n"


def test_ctrl_c_keeps_a_playable_video_and_exits_130(data_file, tmp_path):
    video = tmp_path / "long.avi"
    write_video(video, shifted_frames(150, size=(96, 96)), fps=15)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "pydarknet", "detector", "demo", str(data_file), str(DEMO_CFG), str(DEMO_WEIGHTS),
               str(video), "-dont_show", "-out_filename", "out.avi", "--size", "128x128"]
    # SIGINT as a terminal's Ctrl-C sends it (a shell may have left it ignored for background jobs)
    with subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) as process:
        watchdog = threading.Timer(60, process.kill)
        watchdog.start()
        head = [process.stdout.readline()]
        while head[-1] and not head[-1].startswith("FPS:"):  # the first frame's block, printed once it is written
            head.append(process.stdout.readline())
        process.send_signal(signal.SIGINT)
        # read on through process.stdout (communicate() would skip what its readline() already buffered)
        stdout, stderr = "".join(head) + process.stdout.read(), process.stderr.read()
        process.wait()
        watchdog.cancel()
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "pydarknet: interrupted" and "Traceback" not in stderr
    written, count, fps = read_video(tmp_path / "out.avi")
    assert 1 <= len(written) == count < 150 and fps == 15.0
    assert stdout.endswith(f"wrote out.avi: {count} frames at 15 fps\n")
    assert stdout.count("Objects:") == count  # a frame is written and printed wholly or not at all
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.avi", "out.avi", "shapes.data"]
