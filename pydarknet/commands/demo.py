"""`pydarknet demo CFG WEIGHTS [INPUT]`: AlexeyAB's `detector demo` (src/demo.c demo()), headless.

The input is a camera (`-c N`, camera 0 when no INPUT is given), a video
file, a stream URL (anything with `://`: RTSP, HTTP, ...), or images (one
file or a glob such as `'frames/*.jpg'`, read in sorted order as the frames
of a video).  Each frame is detected exactly as `pydarknet detect` detects
an image (the network's dialect decides letterbox or resize and the NMS), with
demo.c's defaults: `-thresh .25` (src/detector.c run_detector), NMS .45,
hier_thresh = thresh (demo.c passes demo_thresh for both).  For each frame
it prints demo.c's block: `Objects:`, one line per detection as
image_opencv.cpp draw_detections_cv_v3 prints them (`name: 97% `, the other
classes above thresh after `, `; with `-ext_output` the drawn box), and
`FPS:%.1f \t AVG_FPS:%.1f`.

`-out_filename out.avi|mp4|mov|mkv` writes the annotated video: every frame,
at the input's fps (25, as demo.c's get_stream_fps_cpp_cv, when the source
has none: images, some cameras and streams), under a temporary name renamed
to out_filename at the end.  Ctrl-C stops cleanly: a frame is written and
printed wholly or not at all (`WholeFrames`), the frames written so far are
closed into a playable out_filename and the exit status is 130.  The end
of the stream ends the run with status 0 (1 if an image of a glob could not
be read: it is reported and skipped).  `-prefix NAME` also writes each
annotated frame to NAME_%08d.jpg (counted from 1), as demo.c does.

Differences from demo.c, on purpose: no window ever opens (`-dont_show` is
accepted; without it the run says so once).  Each frame is drawn, by
`detect`'s draw_detections, with its own detections (demo.c draws a frame
with the detections of another, a few frames apart: its ring of `-avgframes`
images; `-avgframes` is accepted and changes nothing, as the mean_alpha
demo.c sets on a copy of the [yolo] layer changes nothing there).  Frames are letterboxed or resized as
`detect` does (demo.c's fetch thread resizes with OpenCV's cv::resize, its
`detector test` with Darknet's resize_image).  A video file or images are
read in batches (`--batch`, default 4) with the next batch prefetched; a
camera or URL one frame at a time, every frame it delivers (demo.c's fetch
thread drops those that arrive while the network runs).  The screen is not
cleared between frames and `cvWriteFrame` is not printed.  Not implemented:
`-s`, `-mjpeg_port`, `-json_port`, `-http_post_host`, `-time_limit_sec`,
`-json_file_output`, `-dontdraw_bbox`, `-benchmark`.
"""

from __future__ import annotations

import argparse
import glob
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pydarknet.commands import verb_parser
from pydarknet.commands.arguments import add_dialect, device, non_negative_int, positive_int, probability
from pydarknet.commands.detect import VIDEO_EXTENSIONS, VideoOutput, file_key, frame_batches, load_detector
from pydarknet.errors import DarknetError
from pydarknet.image import IMAGE_EXTENSIONS, load_frame
from pydarknet.infer.detect import Detection, detect_batch
from pydarknet.infer.draw import class_name, draw_detections
from pydarknet.infer.engine import InferenceModel, compile_pays_back
from pydarknet.infer.formats import percent, shown_class
from pydarknet.infer.prefetch import prefetch
from pydarknet.network import Darknet

DEFAULT_FPS = 25.0  # image_opencv.cpp get_stream_fps_cpp_cv: "For output video FPS = 25 by default"
GLOB_CHARACTERS = "*?["


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = verb_parser(sub, "demo")
    p.add_argument("cfg", help="Darknet .cfg file")
    p.add_argument("weights", help="Darknet .weights file (or a .pt/.h5 made by pydarknet convert)")
    p.add_argument("input", nargs="?", metavar="INPUT",
                   help="video file, stream URL (rtsp://, http://, ...), image or glob of images ('dir/*.jpg'); "
                        "default: the camera of -c")
    p.add_argument("-c", "--camera", type=non_negative_int, default=None, metavar="N",
                   help="camera index when no INPUT is given (default 0)")
    p.add_argument("--out-filename", "--out_filename", dest="out_filename", metavar="VIDEO",
                   help="write the annotated video (.avi, .mp4, .mov or .mkv): every frame, at the input's fps")
    p.add_argument("--prefix", help="also write each annotated frame to PREFIX_00000001.jpg, ...")
    p.add_argument("--dont-show", "--dont_show", dest="dont_show", action="store_true",
                   help="accepted for AlexeyAB's command lines: no window is ever opened")
    p.add_argument("--ext-output", "--ext_output", dest="ext_output", action="store_true",
                   help="print each detection's box (left_x, top_y, width, height in pixels)")
    p.add_argument("--thresh", type=probability, default=0.25, help="probability threshold (default .25)")
    p.add_argument("--hier-thresh", "--hier", dest="hier_thresh", type=probability, default=None,
                   help="YOLO9000 tree threshold (default: --thresh, as demo.c)")
    p.add_argument("--nms", type=probability, default=0.45, help="NMS IoU threshold, 0 for none (default .45)")
    p.add_argument("--avgframes", type=positive_int, default=3, help="accepted for AlexeyAB's command lines; no effect")
    p.add_argument("--names", help="class names file, one per line (default: the cfg's .names, see docs/detection.md)")
    p.add_argument("--data", help="Darknet .data file whose names= gives the class names")
    p.add_argument("--device", type=device, default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--size", metavar="WxH", help="network input size, e.g. 608x608 (default: the cfg's)")
    p.add_argument("--batch", type=positive_int, default=None,
                   help="frames per forward (default 4 for a video file or images, 1 for a camera or URL)")
    add_dialect(p, inference=True)
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the network (default: only for a video file or images long enough to pay back)")
    p.set_defaults(run=run)


class ImageSequence:
    """Image files read as the frames of a video, with cv2.VideoCapture's `read`, `get` and `release`.

    An image that cannot be read is given to `report` and skipped.
    """

    def __init__(self, paths: list[Path], report: Callable[[str], None]) -> None:
        self.paths, self.report, self.next = paths, report, 0

    def read(self) -> tuple[bool, np.ndarray | None]:
        while self.next < len(self.paths):
            self.next += 1
            try:
                return True, load_frame(self.paths[self.next - 1])
            except DarknetError as err:
                self.report(str(err))
        return False, None

    def get(self, prop: int) -> float:
        return float(len(self.paths)) if prop == cv2.CAP_PROP_FRAME_COUNT else 0.0

    def release(self) -> None:
        self.next = len(self.paths)


@dataclass
class Source:
    capture: cv2.VideoCapture | ImageSequence
    title: str  # demo.c's first line: "video file: %s" (for any INPUT) or "Webcam index: %d"
    live: bool  # a camera or URL: frames as they come, no known length


@contextmanager
def _quiet_opencv() -> Iterator[None]:
    """OpenCV's own warnings off (`can't open camera by index`): the failure is reported in one line of ours."""
    logging = cv2.utils.logging
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging.setLogLevel(level)


def _capture(what: int | str) -> cv2.VideoCapture | None:
    with _quiet_opencv():
        capture = cv2.VideoCapture(what)
    return capture if capture.isOpened() else None


def open_source(text: str | None, camera: int | None, report: Callable[[str], None]) -> Source:
    """The frames of INPUT or of camera `camera` (demo.c: get_capture_video_stream / get_capture_webcam);
    a DarknetError naming it if it cannot be opened (demo.c: "Couldn't connect to webcam.")."""
    if text is None:
        index = camera or 0
        capture = _capture(index)
        if capture is None:
            raise DarknetError(f"camera {index}: cannot open it (no such camera, or no access to it)")
        return Source(capture, f"Webcam index: {index}", live=True)
    if camera is not None:
        print(f"pydarknet: warning: -c {camera} ignored: reading {text} (as AlexeyAB's demo does when given a file)",
              file=sys.stderr)
    if "://" in text:
        capture = _capture(text)
        if capture is None:
            raise DarknetError(f"{text}: cannot open this stream")
        return Source(capture, f"video file: {text}", live=True)
    path = Path(text)
    if path.is_dir():
        raise DarknetError(f"{text}: is a folder; for its images pass a glob such as '{path / '*.jpg'}'")
    if path.suffix.lower() in IMAGE_EXTENSIONS or (not path.exists() and any(c in text for c in GLOB_CHARACTERS)):
        paths = [Path(p) for p in sorted(glob.glob(glob.escape(text) if path.exists() else text, recursive=True))]
        if not paths:
            raise DarknetError(f"{text}: " + ("no such image file" if path.suffix.lower() in IMAGE_EXTENSIONS and
                                              not any(c in text for c in GLOB_CHARACTERS) else "no files match"))
        return Source(ImageSequence(paths, report), f"video file: {text} ({len(paths)} images)", live=False)
    if not path.is_file():
        raise DarknetError(f"{text}: no such video file")
    capture = _capture(text)
    if capture is None:
        raise DarknetError(f"{text}: cannot open video")
    return Source(capture, f"video file: {text}", live=False)


def source_fps(source: Source) -> float:
    """The input's frame rate, or demo.c's 25 where it has none (images; a camera or stream may report 0)."""
    fps = source.capture.get(cv2.CAP_PROP_FPS)
    return fps if math.isfinite(fps) and fps > 0 else DEFAULT_FPS


def object_lines(dets: list[Detection], width: int, height: int, names: list[str] | None,
                 ext_output: bool) -> list[str]:
    """The lines image_opencv.cpp draw_detections_cv_v3 prints for a frame of width x height.

    One per detection with a class above thresh (classes named `dont_show...`
    left out): `name: 97% ` for each such class in class order, joined by
    `, `; the percentages are C's float `prob * 100`.  With `ext_output`,
    the box as it is drawn: `b.x, b.y, b.w, b.h` not-finite -> .5 and
    capped at 1, left/top truncated and clamped at 0, width/height float.
    """
    lines = []
    for det in dets:
        shown = [(c, p) for c, p in det.labels if shown_class(c, names)]
        if not shown:
            continue
        line = ", ".join(f"{class_name(c, names)}: {percent(p)} " for c, p in shown)
        if ext_output:
            x, y, w, h = (min(v, 1.0) if math.isfinite(v) else 0.5 for v in det.box)
            left, top = max(int((x - w / 2.0) * width), 0), max(int((y - h / 2.0) * height), 0)
            line += (f"\t(left_x: {left:4.0f}   top_y: {top:4.0f}   width: {np.float32(w) * np.float32(width):4.0f}"
                     f"   height: {np.float32(h) * np.float32(height):4.0f})")
        lines.append(line)
    return lines


class FrameRate:
    """demo.c's `FPS` (each frame's rate, smoothed: fps = fps*.9 + curr*.1) and `AVG_FPS` (the frames
    of the last 3 s window over its length); both 0 until measured, as demo.c prints them."""

    def __init__(self) -> None:
        self.fps = self.avg_fps = 0.0
        self.window_start = time.perf_counter()
        self.window_frames = 0

    def line(self) -> str:
        return f"FPS:{self.fps:.1f} \t AVG_FPS:{self.avg_fps:.1f}"

    def frame_done(self, seconds: float) -> None:
        """One more frame, that took `seconds` (its batch's time over its frames)."""
        self.fps = self.fps * 0.9 + 0.1 / max(seconds, 1e-9)
        self.window_frames += 1
        spent = time.perf_counter() - self.window_start
        if spent >= 3.0:
            self.avg_fps = self.window_frames / spent
            self.window_start, self.window_frames = time.perf_counter(), 0


class WholeFrames:
    """Ctrl-C (SIGINT) as KeyboardInterrupt, but never in the middle of a frame's `frame()` block: one arriving
    there is raised when the frame is done, so the video holds exactly the frames whose blocks were printed.

    Elsewhere (waiting for frames, in the forward) it interrupts at once.  Installed only over Python's own
    SIGINT handler: a SIGINT ignored (a shell's background job) or handled by an embedding program stays so.
    """

    def __init__(self) -> None:
        self.inside = self.pending = False
        self.previous: object = None

    def __enter__(self) -> WholeFrames:
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _handler(self, signum: int, frame: object) -> None:
        if not self.inside:
            raise KeyboardInterrupt
        self.pending = True

    @contextmanager
    def frame(self) -> Iterator[None]:
        self.inside = True
        try:
            yield
        finally:
            self.inside = False
        if self.pending:
            raise KeyboardInterrupt


def _stream(net: Darknet, model: InferenceModel, source: Source, args: argparse.Namespace, names: list[str] | None,
            output: VideoOutput | None) -> int:
    """Detect, print, draw and write every frame until the stream ends (or Ctrl-C: KeyboardInterrupt); the count."""
    rate, count = FrameRate(), 0
    batch = args.batch or (1 if source.live else 4)
    before = time.perf_counter()
    frames = prefetch(frame_batches(net, source.capture, batch), depth=1 if source.live else 2)
    with WholeFrames() as interrupts, closing(frames) as batches:
        for chunk, inputs in batches:
            found = detect_batch(net, chunk, args.thresh, args.hier_thresh, args.nms, model=model, batch=inputs)
            now = time.perf_counter()
            seconds, before = (now - before) / len(chunk), now
            for frame, dets in zip(chunk, found):
                with interrupts.frame():
                    height, width = frame.shape[:2]
                    if count == 0:
                        print(f"Video stream: {width} x {height} ")
                    count += 1
                    drawn = draw_detections(frame, dets, names)
                    if output is not None:
                        output.write(drawn)
                    if args.prefix and not cv2.imwrite(f"{args.prefix}_{count:08d}.jpg", drawn):
                        raise DarknetError(f"{args.prefix}_{count:08d}.jpg: cannot write this image")
                    print("\n".join(["Objects:", "", *object_lines(dets, width, height, names, args.ext_output), "",
                                     rate.line()]), flush=True)
                    rate.frame_done(seconds)
    return count


def _finish(output: VideoOutput | None, fps: float) -> None:
    """Close the annotated video under its name, if a frame was written (else leave nothing)."""
    if output is None:
        return
    if not output.frames:
        output.discard()
        return
    output.finish()
    print(f"wrote {output.target}: {output.frames} frames at {fps:g} fps")


def _output_name(args: argparse.Namespace) -> Path | None:
    """-out_filename, checked before any work: a video suffix, and not the input, cfg or weights."""
    if not args.out_filename:
        return None
    target = Path(args.out_filename)
    if target.suffix.lower() not in VIDEO_EXTENSIONS:
        raise DarknetError(f"{target}: -out_filename takes a {', '.join(VIDEO_EXTENSIONS)} video")
    if not target.parent.is_dir():
        raise DarknetError(f"{target}: no such folder {target.parent}")
    key = file_key(target)
    if key is not None and key in {file_key(Path(p)) for p in (args.input, args.cfg, args.weights) if p}:
        raise DarknetError(f"{target}: -out_filename would replace an input")
    return target


def run(args: argparse.Namespace) -> int:
    failures = 0

    def report(message: str) -> None:
        nonlocal failures
        failures += 1
        print(f"pydarknet: {message}", file=sys.stderr)

    target = _output_name(args)
    if args.hier_thresh is None:
        args.hier_thresh = args.thresh
    net, names = load_detector(args)  # before the source: a bad cfg never leaves a camera open
    source = open_source(args.input, args.camera, report)
    print(source.title)
    length = 0 if source.live else int(source.capture.get(cv2.CAP_PROP_FRAME_COUNT))
    model = InferenceModel(net, compile=args.compile if args.compile is not None else compile_pays_back(length), in_place=True)
    if not args.dont_show and not args.prefix:
        print("pydarknet: warning: no window: pydarknet demo never opens one (-dont_show silences this; "
              "-out_filename writes the annotated video)", file=sys.stderr)
    fps = source_fps(source)
    output = None
    try:
        output = VideoOutput(target, fps) if target else None
        count = _stream(net, model, source, args, names, output)
    except KeyboardInterrupt:
        _finish(output, fps)  # the frames so far, closed: playable
        raise  # the CLI's "pydarknet: interrupted", exit status 130
    except BaseException:
        if output is not None:
            output.discard()
        raise
    finally:
        source.capture.release()  # the prefetch thread has stopped reading it (infer.prefetch joins it)
    print("Stream closed.")
    _finish(output, fps)
    if not count:
        raise DarknetError(f"{args.input or f'camera {args.camera or 0}'}: no frames could be read")
    return 1 if failures else 0
