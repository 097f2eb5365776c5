"""`pydarknet detect CFG WEIGHTS [INPUT...]` (`pydarknet detector test DATA CFG WEIGHTS [IMAGE...]`): Darknet's
`detector test`, pleasant to use.

Inputs are images, folders of images, text files listing images (one path
per line, as written or beside the list) and videos; with none, image paths
are read from stdin, one a line, each run as it comes (Darknet's `Enter Image
Path:` loop; the prompt only on a terminal).  For each image it prints
`PATH: Predicted in ...` (its share of its batch's time; AlexeyAB's
`milli-seconds` wording in its dialect) and Darknet's lines (`dog: 82%`, one
per class above thresh: pjreddie's draw_detections order, or in AlexeyAB's
dialect and with `--ext-output` its draw_detections_v3 order,
pydarknet.infer.formats) with the box in pixels (pydarknet's `(left, top,
right, bottom)`, or AlexeyAB's `-ext_output` form), and writes the image with
labelled boxes: `predictions.jpg` for a single input (and for each path read
from stdin, as Darknet), otherwise one file per input into `--out` (default
`predictions/`).  A video gives an annotated video.  An output never replaces
an input (`detect imgs/ --out imgs/`): such a run is refused before any
detection.  `--json` prints one JSON object per image (or video frame)
instead; `--json-out FILE` (AlexeyAB's `-out`) writes its JSON result file,
`--save-labels` a Darknet label file beside each image.  An input that
cannot be read is reported in one line; the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from itertools import groupby
from pathlib import Path

import cv2
import numpy as np
import torch

from pydarknet.commands import verb_parser
from pydarknet.commands.arguments import (add_dialect, add_precision, apply_dialect, device, positive_int, precision_options,
                                         probability, save_calibration)
from pydarknet.progress import progress
from pydarknet.commands.summary import parse_size
from pydarknet.convert import network_with_weights
from pydarknet.data import read_names
from pydarknet.data.labels import alexeyab_label_path, label_path
from pydarknet.infer.detect import Detection, default_nms, detect_batch, find_names, names_from_data
from pydarknet.infer.inputs import network_batch, network_input
from pydarknet.infer.draw import class_name, draw_detections
from pydarknet.infer.formats import ext_output, json_file, json_object, label_lines, percent, printed_classes
from pydarknet.errors import DarknetError
from pydarknet.image import IMAGE_EXTENSIONS, load_frame
from pydarknet.infer.engine import InferenceModel, compile_pays_back
from pydarknet.network import Darknet
from pydarknet.infer.prefetch import batched, prefetch
from pydarknet.weights import NEW_FILE_MODE, write_atomic

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv")
LIST_EXTENSIONS = (".txt", ".list")
VIDEO_CODECS = {".avi": "MJPG"}  # everything else: mp4v


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = verb_parser(sub, "detect",
                    usage="pydarknet detect CFG WEIGHTS [INPUT ...] [options]\n"
                             "       pydarknet detector test DATA CFG WEIGHTS [IMAGE ...] [options]")
    p.add_argument("cfg", help="Darknet .cfg file")
    p.add_argument("weights", help="Darknet .weights file (or a .pt/.h5 made by pydarknet convert)")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image, folder of images, list of images (.txt/.list) or "
                   "video (.mp4/.avi/.mov/.mkv); none: image paths from stdin, one a line (Darknet's Enter Image Path)")
    p.add_argument("--thresh", type=probability, default=None,
                   help="probability threshold (default .5; .25 in AlexeyAB's dialect, as its detector test)")
    p.add_argument("--hier-thresh", "--hier_thresh", "--hier", dest="hier_thresh", type=probability, default=0.5,
                   help="YOLO9000 tree threshold (default .5; AlexeyAB's -hier)")
    p.add_argument("--nms", type=probability, default=None,
                   help="NMS IoU threshold, 0 for none (default .45; .4 for a YOLOv1 [detection] head, as `yolo test`)")
    p.add_argument("--names", help="class names file, one per line (default: the cfg's .names, see docs/detection.md)")
    p.add_argument("--data", help="Darknet .data file whose names= gives the class names")
    p.add_argument("--out", help="folder for the annotated outputs (default: predictions.jpg, or predictions/); "
                   "an output never replaces an input: such a run is refused")
    p.add_argument("--json", action="store_true", help="print JSON lines (one per image or frame) instead of text")
    p.add_argument("--ext-output", "--ext_output", dest="ext_output", action="store_true",
                   help="AlexeyAB's -ext_output lines: sorted by left edge, `(left_x: ... height: ...)`")
    p.add_argument("--json-out", metavar="FILE", help="write AlexeyAB's JSON result file (its detector test -out): "
                   "frame_id, filename, objects with class_id, name, relative_coordinates, confidence")
    p.add_argument("--save-labels", "--save_labels", dest="save_labels", action="store_true",
                   help="write a Darknet label file (class x y w h, the best class above thresh) beside each image, "
                        "where the dialect's map reads it (AlexeyAB's -save_labels)")
    p.add_argument("--device", type=device, default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--size", metavar="WxH", help="network input size, e.g. 608x608 (default: the cfg's)")
    p.add_argument("--batch", type=positive_int, default=4, help="images or video frames per forward (default 4)")
    add_dialect(p, inference=True)
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the network (default: only when the inputs hold enough images to pay back; "
                        "int8 always)")
    add_precision(p, "the --data file's train= images (else valid=); without --data, --calibrate is needed")
    p.set_defaults(run=run)


def _names(args: argparse.Namespace, classes: int) -> list[str] | None:
    path = args.names or (names_from_data(args.data) if args.data else find_names(args.cfg, classes))
    if path is None:
        return None
    names = read_names(path)
    if len(names) != classes:
        print(f"pydarknet: warning: {path} has {len(names)} names for {classes} classes", file=sys.stderr)
    return names


def _expand(inputs: list[str], report: Callable[[str], None]) -> Iterator[Path]:
    """Every image or video the inputs name, in order; unreadable inputs are reported and skipped."""
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
            if not found:
                report(f"{path}: no images or videos in this folder")
            yield from found
        elif path.suffix.lower() in LIST_EXTENSIONS and path.is_file():
            yield from _read_list(path, report)
        elif path.exists():
            yield path
        else:
            report(f"{path}: no such file or folder")


def _read_list(path: Path, report: Callable[[str], None]) -> Iterator[Path]:
    """Darknet's image list: one path per line, as written (from the working directory) or beside the list."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        report(f"{path}: cannot read image list: {err}")
        return
    entries = [raw.strip() for raw in lines if raw.strip()]
    if not entries:
        report(f"{path}: empty image list")
    for line in entries:
        written = Path(line)
        yield written if written.exists() or written.is_absolute() else path.parent / written


class Outputs:
    """Where outputs go: annotated images (one input -> predictions.<ext>; several -> one file each in a
    folder), AlexeyAB's JSON result file (`json_out`) and label files (`label_file`: image path -> label path).

    An output never replaces an input (the same file, by any path or hard
    link): the names the inputs would get are checked before any detection
    and a clash is refused in one line; a renamed duplicate (`a_2.jpg`) that
    would hit an input is refused when it is reached.  `single`: one
    predictions.<ext> however many sources (default: when there is one).
    """

    def __init__(self, out: str | None, sources: list[Path], inputs: list[Path], *, single: bool | None = None,
                 json_out: str | None = None, label_file: Callable[[Path], Path] | None = None) -> None:
        single = len(sources) == 1 if single is None else single
        self.folder = Path(out) if out else (None if single else Path("predictions"))
        self.used: set[str] = set()
        self.inputs: dict[tuple[int, int], Path] = {}
        self.json_out = Path(json_out) if json_out else None
        self.json_objects: list[str] = []
        self.label_file = label_file
        self.add_inputs(inputs)
        for source in sources:
            self._refuse_input(self._target(source, source.stem + _output_suffix(source)))

    def add_inputs(self, inputs: list[Path]) -> None:
        """Files no output may replace (sources read later, from stdin, are added as they come)."""
        for path in inputs:
            if key := file_key(path):
                self.inputs.setdefault(key, path)
        if self.json_out is not None:
            replaced = self.inputs.get(file_key(self.json_out))
            if replaced is not None:
                raise DarknetError(f"{replaced}: the JSON result file {self.json_out} would replace this input")

    def add_image(self, path: Path, dets: list[Detection], names: list[str] | None, thresh: float) -> None:
        """AlexeyAB's per-image files: the image's object in the JSON result file, its label file."""
        if self.json_out is not None:
            self.json_objects.append(json_object(len(self.json_objects) + 1, str(path), dets, names))
        if self.label_file is not None:
            target = self.label_file(path)
            if target.suffix != ".txt" or file_key(target) in self.inputs:  # AlexeyAB writes over the image
                raise DarknetError(f"{path}: --save-labels: its label file would be {target} (Darknet replaces only "
                                   "some image extensions by .txt); not written")
            if not target.parent.is_dir():
                raise DarknetError(f"{path}: --save-labels: no folder {target.parent} for its label file {target.name}")
            write_atomic(target, label_lines(dets, thresh).encode())

    def close(self) -> None:
        """Write the JSON result file (also after an error or Ctrl-C: the images done so far)."""
        if self.json_out is not None:
            write_atomic(self.json_out, json_file(self.json_objects).encode())

    def path_for(self, source: Path) -> Path:
        """The output of `source` (an annotated .jpg, or a video of its own type): a name no earlier output took."""
        suffix = _output_suffix(source)
        name, n = source.stem + suffix, 1
        while name in self.used:
            n += 1
            name = f"{source.stem}_{n}{suffix}"
        self.used.add(name)
        target = self._target(source, name)
        self._refuse_input(target)
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        return target

    def _target(self, source: Path, name: str) -> Path:
        return Path("predictions" + _output_suffix(source)) if self.folder is None else self.folder / name

    def _refuse_input(self, target: Path) -> None:
        replaced = self.inputs.get(file_key(target))
        if replaced is not None:
            advice = "choose another --out" if self.folder is not None else "pass --out FOLDER (one input's default output is predictions.jpg)"
            raise DarknetError(f"{replaced}: the output {target} would replace this input; {advice}")


def _output_suffix(source: Path) -> str:
    return source.suffix.lower() if source.suffix.lower() in VIDEO_EXTENSIONS else ".jpg"


def file_key(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file, or None: equal for every path and hard link of one file."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _records(dets: list[Detection], width: int, height: int, names: list[str] | None) -> list[dict]:
    """One JSON record per (detection, class above thresh), as Darknet prints them."""
    return [{"class": c, "name": class_name(c, names), "prob": round(p, 6), "objectness": round(d.objectness, 6),
             "box": [round(v, 6) for v in d.box], "pixels": list(d.pixel_box(width, height))}
            for d in dets for c, p in d.labels]


def _print_text(source: Path, seconds: float, dets: list[Detection], width: int, height: int, names: list[str] | None,
                args: argparse.Namespace) -> None:
    """test_detector's lines: pjreddie's (draw_detections), or AlexeyAB's (draw_detections_v3) in its dialect and with
    --ext-output; pydarknet's box `(left, top, right, bottom)` unless --ext-output gives AlexeyAB's."""
    if args.dialect == "alexeyab":
        print(f"{source}: Predicted in {seconds * 1000:f} milli-seconds.")  # AlexeyAB: "%s: Predicted in %lf milli-seconds.\n"
    else:
        print(f"{source}: Predicted in {seconds:f} seconds.")  # pjreddie: "%s: Predicted in %f seconds.\n"
    if args.dialect == "alexeyab" or args.ext_output:
        printed = printed_classes(dets, names, args.thresh)
    else:
        printed = [(d, c) for d in dets for c, _ in d.labels]  # pjreddie: each detection's classes above thresh
    for d, c in printed:  # Darknet: printf("%s: %.0f%%", names[j], dets[i].prob[j]*100)
        print(f"{class_name(c, names)}: {percent(d.probs[c])}{_box(d, width, height, args.ext_output)}")


def _box(det: Detection, width: int, height: int, ext: bool) -> str:
    """The box after a line: AlexeyAB's -ext_output, else pydarknet's Darknet's drawn box (`Detection.pixel_box`)."""
    if ext:
        return ext_output(det, width, height)
    left, top, right, bottom = det.pixel_box(width, height)
    return f"\t(left {left}, top {top}, right {right}, bottom {bottom})"


def _load_input(net: Darknet, path: Path, out: np.ndarray) -> np.ndarray:
    """The BGR frame of `path`, its network input written into `out`; a DarknetError naming the file if it cannot be."""
    frame = load_frame(path)  # its errors name the file
    try:
        network_input(net, frame, out=out)
    except DarknetError as err:  # too thin to letterbox, e.g. 20000x1
        raise DarknetError(f"{path}: {err}") from None
    return frame


def _image_batches(net: Darknet, paths: list[Path], size: int) -> Iterator[tuple[list[tuple[Path, object]], torch.Tensor | None]]:
    """Batches of `size` paths loaded and letterboxed: ([(path, BGR frame or DarknetError)], inputs of the frames)."""
    for chunk in batched(paths, size):
        loaded: list[tuple[Path, object]] = []
        inputs = np.empty((len(chunk), 3, net.height, net.width), dtype=np.float32)
        count = 0
        for path in chunk:
            try:
                loaded.append((path, _load_input(net, path, inputs[count])))
                count += 1
            except DarknetError as err:
                loaded.append((path, err))
        yield loaded, (torch.from_numpy(inputs[:count]) if count else None)


def _detect_images(net: Darknet, model: InferenceModel, paths: list[Path], args: argparse.Namespace,
                   names: list[str] | None, outputs: Outputs, report: Callable[[str], None]) -> None:
    for loaded, batch in prefetch(_image_batches(net, paths, args.batch)):
        for path, failed in loaded:
            if isinstance(failed, DarknetError):
                report(str(failed))
        good = [(path, im) for path, im in loaded if isinstance(im, np.ndarray)]
        if not good:
            continue
        start = time.perf_counter()
        found = detect_batch(net, [im for _, im in good], args.thresh, args.hier_thresh, args.nms, model=model, batch=batch,
                             names=names)
        seconds = (time.perf_counter() - start) / len(good)
        for (path, image), dets in zip(good, found):
            try:
                _write_image(path, image, dets, seconds, args, names, outputs)
            except DarknetError as err:
                report(str(err))


def _write_image(path: Path, frame: np.ndarray, dets: list[Detection], seconds: float, args: argparse.Namespace,
                 names: list[str] | None, outputs: Outputs) -> None:
    height, width = frame.shape[:2]
    if args.json:
        print(json.dumps({"image": str(path), "width": width, "height": height, "detections": _records(dets, width, height, names)}))
    else:
        _print_text(path, seconds, dets, width, height, names, args)
    outputs.add_image(path, dets, names, args.thresh)
    ok, encoded = cv2.imencode(".jpg", draw_detections(frame, dets, names))
    if not ok:
        raise DarknetError(f"{path}: cannot encode the annotated image")
    target = outputs.path_for(path)
    write_atomic(target, encoded.tobytes())
    if not args.json:
        print(f"wrote {target}")


def _detect_video(net: Darknet, model: InferenceModel, path: Path, args: argparse.Namespace, names: list[str] | None,
                  outputs: Outputs) -> None:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DarknetError(f"{path}: cannot open video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    target = outputs.path_for(path)
    output = VideoOutput(target, fps)
    boxes = 0
    try:
        with progress(frames, path.name, "frame") as bar:
            for chunk, batch in prefetch(frame_batches(net, capture, args.batch)):
                found = detect_batch(net, chunk, args.thresh, args.hier_thresh, args.nms, model=model, batch=batch, names=names)
                for frame, dets in zip(chunk, found):
                    boxes += len(dets)
                    if args.json:
                        h, w = frame.shape[:2]
                        print(json.dumps({"video": str(path), "frame": output.frames, "width": w, "height": h,
                                          "detections": _records(dets, w, h, names)}))
                    output.write(draw_detections(frame, dets, names))
                bar.update(len(chunk))
        if not output.frames:
            raise DarknetError(f"{path}: no frames could be read")
        output.finish()
    finally:
        capture.release()
        output.discard()
    if not args.json:
        print(f"{path}: {output.frames} frames, {boxes} detections; wrote {target}")


class VideoOutput:
    """A video written frame by frame under a temporary name beside `target`, renamed to `target` by `finish`.

    The codec follows the suffix (`VIDEO_CODECS`); the writer opens at the
    first frame, with its size: a later frame of another size is resized to
    it.  `discard` (a no-op after `finish`) closes and deletes the
    temporary file, so an unfinished video never takes the target's name.
    """

    def __init__(self, target: Path, fps: float) -> None:
        self.target, self.fps, self.frames = target, fps, 0
        fd, self.tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent)
        os.fchmod(fd, NEW_FILE_MODE)
        os.close(fd)
        self.writer: cv2.VideoWriter | None = None
        self.size = (0, 0)  # (width, height), set by the first frame

    def write(self, frame: np.ndarray) -> None:
        if self.writer is None:
            self.size = (frame.shape[1], frame.shape[0])
            fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS.get(self.target.suffix.lower(), "mp4v"))
            self.writer = cv2.VideoWriter(self.tmp, fourcc, self.fps, self.size)
            if not self.writer.isOpened():
                raise DarknetError(f"{self.target}: cannot write a {self.target.suffix} video here")
        if (frame.shape[1], frame.shape[0]) != self.size:
            frame = cv2.resize(frame, self.size)
        self.writer.write(frame)
        self.frames += 1

    def finish(self) -> None:
        """Close the video (its index written: playable) and give it the target's name."""
        if self.writer is not None:
            self.writer.release()
        os.replace(self.tmp, self.target)

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.release()
        Path(self.tmp).unlink(missing_ok=True)


def frame_batches(net: Darknet, capture: cv2.VideoCapture, size: int) -> Iterator[tuple[list[np.ndarray], torch.Tensor]]:
    """Batches of `size` video frames: (BGR frames, their network inputs)."""
    for chunk in batched(_frames(capture), size):
        yield chunk, network_batch(net, chunk)


def _frames(capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
    while True:
        ok, frame = capture.read()
        if not ok:
            return
        yield frame


def _image_count(sources: list[Path]) -> int:
    """How many images the sources hold (a video counts its frames), to decide whether compiling pays back."""
    count = 0
    for source in sources:
        if source.suffix.lower() in VIDEO_EXTENSIONS:
            capture = cv2.VideoCapture(str(source))
            count += max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
            capture.release()
        else:
            count += 1
    return count


def load_detector(args: argparse.Namespace) -> tuple[Darknet, list[str] | None]:
    """The network of `args.cfg`/`args.weights` (--size, --device, --dialect, --letter-box) in eval mode, and its
    class names (`_names`); a --nms of None becomes the detector's default."""
    width, height = parse_size(args.size)
    net = apply_dialect(network_with_weights(args.cfg, args.weights, width, height), args)
    net.to(torch.device(args.device)).eval()
    args.dialect = net.dialect  # auto resolved: the lines, "Predicted in" and the label path follow it
    if args.nms is None:
        args.nms = default_nms(net)
    if args.thresh is None:  # test_detector's -thresh default: pjreddie's .5, AlexeyAB's .25
        args.thresh = 0.25 if net.dialect == "alexeyab" else 0.5
    classes = getattr(net.layers[net.output_indices[-1]], "classes", 0)
    return net, _names(args, classes)


def run(args: argparse.Namespace) -> int:
    net, names = load_detector(args)
    precision = precision_options(args, args.data)
    failures = 0

    def report(message: str) -> None:
        nonlocal failures
        failures += 1
        print(f"pydarknet: {message}", file=sys.stderr)

    labels = (alexeyab_label_path if net.dialect == "alexeyab" else label_path) if args.save_labels else None
    given = [Path(args.cfg), Path(args.weights)]
    if args.inputs:
        sources = list(_expand(args.inputs, report))
        outputs = Outputs(args.out, sources, [*sources, *given], json_out=args.json_out, label_file=labels)
        compile = args.compile if args.compile is not None else compile_pays_back(_image_count(sources))
    else:  # Darknet's "Enter Image Path:" loop: each path as it comes, predictions.jpg for each
        outputs = Outputs(args.out, [], given, single=True, json_out=args.json_out, label_file=labels)
        compile = args.compile or False
    model = InferenceModel(net, compile=compile, in_place=True, **precision)
    save_calibration(model, args)
    try:
        if args.inputs:
            _detect_sources(net, model, sources, args, names, outputs, report)
        else:
            for line in _stdin_paths(prompt=sys.stdin.isatty() and not args.json):
                sources = list(_expand([line], report))
                outputs.add_inputs(sources)
                _detect_sources(net, model, sources, args, names, outputs, report)
    finally:
        outputs.close()
    return 1 if failures else 0


def _detect_sources(net: Darknet, model: InferenceModel, sources: list[Path], args: argparse.Namespace,
                    names: list[str] | None, outputs: Outputs, report: Callable[[str], None]) -> None:
    """Run the images (in batches) and videos of `sources`, in order."""
    for is_video, group in groupby(sources, key=lambda p: p.suffix.lower() in VIDEO_EXTENSIONS):
        if not is_video:
            _detect_images(net, model, list(group), args, names, outputs, report)
            continue
        for source in group:
            try:
                _detect_video(net, model, source, args, names, outputs)
            except DarknetError as err:
                report(str(err))


def _stdin_paths(prompt: bool) -> Iterator[str]:
    """Darknet's `Enter Image Path: ` loop (test_detector without a file name): the lines of stdin until it ends,
    blank ones skipped; the prompt printed before each read when `prompt`."""
    while True:
        if prompt:
            print("Enter Image Path: ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            if prompt:
                print()
            return
        if line.strip():
            yield line.rstrip("\r\n")
