#!/usr/bin/env python3
"""pydarknet benchmarks: every figure measured side by side in one run.

usage: python tools/bench.py [--threads 2] [--repeat 5] [--only NAME ...]

Networks get Darknet-like random weights (no download needed); timings are
medians of `--repeat` runs after a warm-up.  Sections: forward latency and
throughput (yolov2, yolov2-tiny at 416, batch 1 and 8) with BFLOPs and the
achieved GFLOP/s, weights loading rate, Darknet's detection augmentation and
data loader at 416 (images/s), training throughput (yolov2-tiny-voc, yolov2-voc
at 416, batch 1 and 8; forward+backward+update, and the region loss's share),
checkpoint conversion times, end-to-end detection per image (load + letterbox +
forward + decode + NMS) and, for yolov2-tiny, stage by stage (`stages`), the shapes generator's images/s,
the gradient all-reduce of distributed training (`ddp`), classification
augmentation (`classifier`), and the inference modes (`--only inference`: eager, batch-norm folded +
channels_last, + prepacked convolutions, + Winograd, torch.compile; yolov2, yolov2-tiny and AlexeyAB's yolov4-tiny, yolov7-tiny) as a
table of ratios to eager PyTorch, with C Darknet's `detector test` time when `--darknet PATH` names a
(pjreddie) Darknet binary; the reduced precisions (`--only precision`: fp32, bf16, int8 against eager,
and what bf16 and int8 change in the demo model's answers); whole-process start-up time and peak RSS
(`startup`); and the inference modes against ONNX Runtime (`compare`).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydarknet import Darknet  # noqa: E402
from pydarknet.train.state import TrainingState  # noqa: E402
from pydarknet.train.step import train_network  # noqa: E402
from pydarknet.weights import load_weights, save_weights  # noqa: E402


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median seconds of each function, timed in turns (one call of each per round) after a warm-up,
    so that a change in the machine's load hits every variant alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def random_network(cfg: str, size: int = 416) -> Darknet:
    """A network with Darknet's init and sane batch-norm statistics."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(ROOT / "cfg" / cfg, size, size)
    torch.manual_seed(0)
    for module in net.modules():
        if hasattr(module, "running_var"):
            module.running_var.uniform_(0.5, 2.0)
            module.running_mean.uniform_(-0.1, 0.1)
    return net.eval()


def bench_forward(args: argparse.Namespace) -> list[str]:
    rows = []
    for cfg in ("yolov2.cfg", "yolov2-tiny.cfg"):
        net = random_network(cfg)
        flops = net.bflops()
        for batch in (1, 8):
            x = torch.rand(batch, 3, 416, 416)
            with torch.inference_mode():
                t = median_seconds(lambda: net(x), args.repeat)
            rows.append(
                f"forward  {cfg:<18s} 416x416 batch {batch}: {t / batch * 1000:8.1f} ms/image  "
                f"{flops:6.2f} BFLOPs/image  {flops * batch / t:6.1f} GFLOP/s"
            )
    return rows


def bench_weights_load(args: argparse.Namespace) -> list[str]:
    net = random_network("yolov2.cfg")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "yolov2.weights"
        save_weights(net, path)
        size = path.stat().st_size
        t = median_seconds(lambda: load_weights(net, path), args.repeat)
    return [f"weights  load yolov2.weights ({size / 1e6:.0f} MB): {t * 1000:7.1f} ms  {size / t / 1e9:5.2f} GB/s"]


def bench_augment(args: argparse.Namespace) -> list[str]:
    """load_data_detection at 416: augmentation alone, and the DetectionLoader end to end."""
    import shutil

    import numpy as np

    from pydarknet.data import DetectionLoader, augment_detection, label_path
    from pydarknet.image import load_image

    images = sorted((ROOT / "tests" / "golden" / "images").glob("*.png"))
    boxes = np.array([[k, 0.2 + 0.1 * k, 0.5, 0.2, 0.3] for k in range(5)], dtype=np.float32)
    im = load_image(images[0])
    rng = np.random.default_rng(0)
    n = 20
    t = median_seconds(lambda: [augment_detection(im, boxes, 416, 416, 0.3, 0.1, 1.5, 1.5, True, 30, rng) for _ in range(n)], args.repeat)
    rows = [f"augment  {images[0].name} {im.shape[2]}x{im.shape[1]} -> 416x416 (decoded): {n / t:6.1f} images/s"]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "images").mkdir()
        (Path(tmp) / "labels").mkdir()
        paths = [Path(shutil.copy(image, Path(tmp) / "images")) for image in images]
        for path in paths:
            np.savetxt(label_path(path), boxes, fmt="%d %.6f %.6f %.6f %.6f")
        for workers in (0, 2):
            loader = iter(DetectionLoader(paths, lambda i: (416, 416), 8, 0.3, 0.1, 1.5, 1.5, 30, workers, seed=0))
            next(loader)  # start the workers
            start = time.perf_counter()
            for _ in range(args.repeat):
                next(loader)
            t = time.perf_counter() - start
            rows.append(f"loader   golden PNGs -> 416x416, batch 8, {workers} workers: {8 * args.repeat / t:6.1f} images/s")
    return rows


def bench_eval(args: argparse.Namespace) -> list[str]:
    """VOC mAP of 5,000 images x 20 detections (20 classes, ~3 boxes per image); IoU k-means of 100k boxes."""
    import numpy as np

    from pydarknet.anchors import kmeans_anchors
    from pydarknet.eval.ap import DetectionTable, TruthTable, evaluate

    rng = np.random.default_rng(0)
    images, per_image, classes = 5000, 20, 20
    gt_image = np.repeat(np.arange(images), 3)
    gt_xy = rng.uniform(0, 400, (len(gt_image), 2))
    gt_box = np.concatenate([gt_xy, gt_xy + rng.uniform(20, 100, (len(gt_image), 2))], axis=1)
    truth = TruthTable(gt_image, rng.integers(classes, size=len(gt_image)), gt_box)
    source = rng.integers(len(gt_image), size=images * per_image)
    dets = DetectionTable(gt_image[source], np.where(rng.random(len(source)) < 0.7, truth.label[source], rng.integers(classes, size=len(source))),
                          rng.random(len(source)), gt_box[source] + rng.normal(0, 8, (len(source), 4)))
    t_map = median_seconds(lambda: evaluate(dets, truth, classes), args.repeat)
    boxes = np.exp(rng.normal(0, 0.6, (100_000, 2)))
    t_kmeans = median_seconds(lambda: kmeans_anchors(boxes, 5, seed=0), args.repeat)
    return [f"eval     mAP (11/all/101-point) of {images} images x {per_image} detections: {t_map * 1000:7.1f} ms",
            f"eval     k-means (d = 1 - IoU, k-means++) of 100k boxes, k=5: {t_kmeans * 1000:7.1f} ms"]


def bench_train(args: argparse.Namespace) -> list[str]:
    """Darknet train_network throughput: forward + loss + backward + SGD update per call."""
    rows = []
    for cfg in ("yolov2-tiny-voc.cfg", "yolov2-voc.cfg"):
        net = random_network(cfg)
        for layout in (torch.contiguous_format, torch.channels_last):  # channels_last: as `pydarknet train`
            net = net.to(memory_format=layout)
            name = "NCHW" if layout is torch.contiguous_format else "NHWC"
            for batch in (1, 8):
                net.options.batch, net.options.subdivisions = batch, 1  # one update per call
                x = torch.rand(batch, 3, 416, 416).contiguous(memory_format=layout)
                truth = torch.zeros(batch, 30, 5)
                truth[:, :3] = torch.tensor([[0.3, 0.4, 0.2, 0.3, 1], [0.6, 0.5, 0.5, 0.6, 7], [0.8, 0.2, 0.1, 0.1, 14]])
                state = TrainingState(net)
                t = median_seconds(lambda: train_network(net, state, x, truth), min(args.repeat, 3))
                rows.append(f"train    {cfg:<18s} 416x416 {name} batch {batch}: {batch / t:8.2f} images/s  {t * 1000:9.1f} ms/step")
        region = net.layers[net.output_indices[0]]
        raw = torch.randn(8, *region.in_shapes[0])
        t_region = median_seconds(lambda: region.delta(raw, truth, net.seen), min(args.repeat, 3))
        rows.append(f"train    {cfg:<18s} region loss (delta + cost), batch 8: {t_region * 1000:7.1f} ms = {t_region / t:.1%} of the step")
    rows += _train_builds(args)
    return rows


def _train_builds(args: argparse.Namespace) -> list[str]:
    """yolov4-tiny's train_network as AlexeyAB's GPU build (pydarknet's default) and its CPU build
    (--alexeyab-cpu-build), timed in turns: the ratio is the default's price or gain."""
    x = torch.rand(8, 3, 416, 416).contiguous(memory_format=torch.channels_last)
    truth = torch.zeros(8, 30, 5)
    truth[:, :3] = torch.tensor([[0.3, 0.4, 0.2, 0.3, 1], [0.6, 0.5, 0.5, 0.6, 7], [0.8, 0.2, 0.1, 0.1, 14]])
    steps = {}
    for build in ("gpu", "cpu"):
        net = random_network("yolov4-tiny.cfg").to(memory_format=torch.channels_last)
        net.set_training_build(build)
        net.options.batch, net.options.subdivisions = 8, 1
        state = TrainingState(net)
        steps[build] = lambda net=net, state=state: train_network(net, state, x, truth)
    t = interleaved_medians(steps, min(args.repeat, 5))
    return [f"train    yolov4-tiny.cfg    416x416 NHWC batch 8, AlexeyAB's {build} build: {8 / t[build]:6.2f} images/s "
            f"{t[build] * 1000:9.1f} ms/step" for build in steps] + [f"train    yolov4-tiny.cfg    gpu build / cpu build step time: {t['gpu'] / t['cpu']:.2f}"]


def bench_convert(args: argparse.Namespace) -> list[str]:
    """yolov2.cfg: .weights -> .pt / .h5 / .onnx and back, through the files (pydarknet.convert)."""
    from pydarknet.convert import convert

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "yolov2.weights"
        save_weights(random_network("yolov2.cfg"), src)
        steps = [(ROOT / "cfg" / "yolov2.cfg", src, "yolov2.pt"), (None, "yolov2.pt", "pt.weights"),
                 (ROOT / "cfg" / "yolov2.cfg", src, "yolov2.h5"), (None, "yolov2.h5", "h5.weights"),
                 (ROOT / "cfg" / "yolov2.cfg", src, "yolov2.onnx")]
        for cfg, source, target in steps:
            source, target = Path(tmp) / source, Path(tmp) / target
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t = median_seconds(lambda: convert(cfg, source, target, force=True), args.repeat)
            rows.append(f"convert  yolov2 {source.suffix:>8s} -> {target.suffix:<8s}: {t * 1000:7.0f} ms  "
                        f"({target.stat().st_size / 1e6:.0f} MB)")
    return rows


def _detect_jpeg(tmp: str) -> Path:
    """The 768x576 test JPEG (dog.png saved by OpenCV, quality 95)."""
    import cv2

    path = Path(tmp) / "dog.jpg"
    cv2.imwrite(str(path), cv2.imread(str(ROOT / "tests" / "golden" / "images" / "dog.png")))
    return path


def _stream(net: Darknet, model: Callable, path: Path, thresh: float, count: int = 16) -> None:
    """`count` JPEGs through detect's prefetching path: the next decoded and letterboxed in a thread."""
    from pydarknet.infer.detect import detect_batch
    from pydarknet.infer.inputs import network_batch
    from pydarknet.image import load_frame
    from pydarknet.infer.prefetch import prefetch

    frames = (load_frame(path) for _ in range(count))
    for frame, batch in prefetch((frame, network_batch(net, [frame])) for frame in frames):
        detect_batch(net, [frame], thresh, model=model, batch=batch)


def bench_detect(args: argparse.Namespace) -> list[str]:
    """Darknet's detector test path on a 768x576 JPEG through the inference mode (as `pydarknet detect`):
    one image end to end (load + letterbox + forward + decode + NMS), forward alone, decode + NMS alone
    (thresh: detect's .5 and valid's .005), and a stream of 16 JPEGs through detect's prefetching path
    (the next image decoded and letterboxed in a thread while the network runs), per image."""
    from pydarknet.infer.detect import detect_batch, detections_from_heads
    from pydarknet.infer.inputs import image_size, network_batch
    from pydarknet.image import load_frame
    from pydarknet.infer.engine import InferenceModel

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = _detect_jpeg(tmp)
        for cfg in ("yolov2.cfg", "yolov2-tiny.cfg"):
            net = random_network(cfg)
            model = InferenceModel(net)
            image = load_frame(path)
            size = [image_size(image)]
            x = network_batch(net, [image])
            heads = model(x)
            for thresh in (0.5, 0.005):
                times = interleaved_medians({
                    "forward": lambda: model(x),
                    "end to end": lambda: detect_batch(net, [load_frame(path)], thresh, model=model),
                    "stream": lambda: _stream(net, model, path, thresh),
                    "post": lambda: detections_from_heads(net, heads, size, thresh),
                }, args.repeat)
                forward, total, streamed = times["forward"], times["end to end"], times["stream"] / 16
                labels = sum(len(d.labels) for d in detections_from_heads(net, heads, size, thresh)[0])
                rows.append(f"detect   {cfg:<18s} 768x576 JPEG -> 416x416 thresh {thresh:<5}: {total * 1000:8.1f} ms/image end to end "
                            f"= {total / forward:.2f} x forward ({forward * 1000:.1f} ms); 16 JPEGs prefetched {streamed * 1000:.1f} ms/image "
                            f"= {streamed / forward:.2f} x forward; decode+nms {times['post'] * 1000:.1f} ms; {labels} labels")
    return rows


def bench_detect_stages(args: argparse.Namespace) -> list[str]:
    """yolov2-tiny's detect path at thresh .5 stage by stage, timed in turns: JPEG decode (cv2.imdecode), letterbox,
    forward, decode + NMS, one image end to end; the forward on 1 and on --threads intra-op threads; and the 16-JPEG
    prefetched stream with the forward on --threads threads and on 1 thread (the other core free for the prefetch)."""
    import cv2
    import numpy as np

    from pydarknet.infer.detect import detect_batch, detections_from_heads
    from pydarknet.infer.inputs import image_size, network_batch
    from pydarknet.image import letterbox_frame, load_frame
    from pydarknet.infer.engine import InferenceModel

    def threads(n: int, fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            torch.set_num_threads(n)
            try:
                return fn()
            finally:
                torch.set_num_threads(args.threads)
        return run

    with tempfile.TemporaryDirectory() as tmp:
        path = _detect_jpeg(tmp)
        net = random_network("yolov2-tiny.cfg")
        model = InferenceModel(net)
        data, frame = np.fromfile(path, dtype=np.uint8), load_frame(path)
        x, boxed = network_batch(net, [frame]), np.empty((3, net.height, net.width), dtype=np.float32)
        heads, size = model(x), [image_size(frame)]
        times = interleaved_medians({
            "JPEG decode": lambda: cv2.imdecode(data, cv2.IMREAD_COLOR),
            "letterbox": lambda: letterbox_frame(frame, net.width, net.height, out=boxed),
            "forward": lambda: model(x),
            "decode + NMS": lambda: detections_from_heads(net, heads, size, 0.5),
            "one image end to end": lambda: detect_batch(net, [load_frame(path)], 0.5, model=model),
            "forward, 1 thread": threads(1, lambda: model(x)),
            "16 JPEGs prefetched, per image": lambda: _stream(net, model, path, 0.5),
            "16 JPEGs prefetched, per image, forward on 1 thread": threads(1, lambda: _stream(net, model, path, 0.5)),
        }, args.repeat)
    for name in times:
        times[name] /= 16 if name.startswith("16 JPEGs") else 1
    one_thread = {name: name.endswith("1 thread") for name in times}
    return [f"stages   yolov2-tiny.cfg {name:<52s} {t * 1000:7.2f} ms = "
            f"{t / times['forward, 1 thread' if one_thread[name] else 'forward']:.3f} x forward{' on 1 thread' if one_thread[name] else ''}"
            for name, t in times.items()]


def bench_shapes(args: argparse.Namespace) -> list[str]:
    """tools/make_shapes.py throughput: detection images (160-480 px) written per second."""
    from make_shapes import make_detection_set

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        start = time.perf_counter()
        make_detection_set(Path(tmp) / "det", seed=0, n_train=200, n_valid=0, workers=args.threads)
        t = time.perf_counter() - start
    return [f"shapes   make_detection_set 200 images, {args.threads} workers: {200 / t:6.1f} images/s"]


def _in_fresh_processes(rows: Callable[[str, int, argparse.Namespace], list[str]], cfgs: tuple[str, ...],
                        args: argparse.Namespace) -> list[str]:
    """`rows(cfg, batch, args)` of each cfg at batch 1 and 8, each in a fresh process: after large batches,
    glibc's allocator and the page faults of a process that ran another network distort the next one's
    timings badly."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    found = []
    for cfg in cfgs:
        for batch in (1, 8):
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                found += pool.submit(rows, cfg, batch, args).result()
    return found


def bench_inference(args: argparse.Namespace) -> list[str]:
    """The inference modes against eager PyTorch in the same run: a markdown table of ms/image and ratios,
    each (network, batch) in a fresh process (`_in_fresh_processes`)."""
    return ["| network (416x416) | batch | mode | ms/image | images/s | time / eager | GFLOP/s |", "|---|---|---|---|---|---|---|",
            *_in_fresh_processes(_inference_rows, ("yolov2.cfg", "yolov2-tiny.cfg", "yolov4-tiny.cfg", "yolov7-tiny.cfg"), args)]


def _inference_rows(cfg: str, batch: int, args: argparse.Namespace) -> list[str]:
    from pydarknet.infer.engine import InferenceModel

    torch.set_num_threads(args.threads)
    net = random_network(cfg)
    models = {"folded + channels_last": InferenceModel(net, prepack=False),
              "folded + channels_last + prepacked (InferenceModel's default)": InferenceModel(net),
              "folded + channels_last + Winograd": InferenceModel(net, prepack=False, winograd=True)}
    compiled = InferenceModel(net, compile=True)
    x = torch.rand(batch, 3, 416, 416)
    start = time.perf_counter()
    compiled(x)
    compile_seconds = time.perf_counter() - start

    def eager() -> object:
        with torch.inference_mode():
            return net(x)

    times = interleaved_medians({"eager PyTorch": eager, **{name: (lambda m=m: m(x)) for name, m in models.items()},
                                 f"torch.compile (first call {compile_seconds:.0f} s)": lambda: compiled(x)}, args.repeat)
    if args.darknet and batch == 1 and net.dialect == "pjreddie":  # AlexeyAB's cfgs need AlexeyAB's binary
        times["C Darknet (detector test)"] = darknet_seconds(args.darknet, cfg, net)
    return [f"| {cfg} | {batch} | {mode} | {t / batch * 1000:.1f} | {batch / t:.2f} | {t / times['eager PyTorch']:.2f} | "
            f"{net.bflops() * batch / t:.1f} |" for mode, t in times.items()]


def bench_precision(args: argparse.Namespace) -> list[str]:
    """Reduced precision (docs/precision.md) against eager PyTorch in the same run: yolov2 and yolov2-tiny at 416,
    batch 1 and 8, as a markdown table of ms/image and ratios (each (network, batch) in a fresh process, as
    `inference`); then the demo model's answers at 544 on held-out shapes images (`_precision_answers`)."""
    return ["| network (416x416) | batch | precision | ms/image | images/s | time / eager |", "|---|---|---|---|---|---|",
            *_in_fresh_processes(_precision_rows, ("yolov2.cfg", "yolov2-tiny.cfg"), args), *_precision_answers()]


PRECISION_CALIBRATION = 8  # random images: enough for timing (the ranges do not change the kernels)


def _precision_rows(cfg: str, batch: int, args: argparse.Namespace) -> list[str]:
    import numpy as np

    from pydarknet.infer.engine import InferenceModel

    torch.set_num_threads(args.threads)
    net = random_network(cfg)
    rng = np.random.default_rng(0)
    calibration = [rng.random((3, 416, 416), dtype=np.float32) for _ in range(PRECISION_CALIBRATION)]
    x = torch.rand(batch, 3, 416, 416)
    models = {"fp32 (InferenceModel)": InferenceModel(net), "bf16": InferenceModel(net, precision="bf16")}
    start = time.perf_counter()
    models["int8"] = InferenceModel(net, precision="int8", calibration=calibration)
    models["int8"](x)
    int8_seconds = time.perf_counter() - start

    def eager() -> object:
        with torch.inference_mode():
            return net(x)

    fns = {"eager PyTorch (fp32)": eager, **{name: (lambda m=m: m(x)) for name, m in models.items()}}
    times = interleaved_medians(fns, args.repeat)
    times[f"int8 (calibration + compile {int8_seconds:.0f} s)"] = times.pop("int8")
    return [f"| {cfg} | {batch} | {mode} | {t / batch * 1000:.1f} | {batch / t:.2f} | {t / times['eager PyTorch (fp32)']:.3f} |"
            for mode, t in times.items()]


PRECISION_IMAGES = 100  # held-out shapes images (make_shapes seed 1, valid split)
PRECISION_CALIBRATION_IMAGES = 200  # make_shapes seed 1, train split: as `map --precision int8` on such a .data


def _precision_answers() -> list[str]:
    """The shipped demo model (544x544) on PRECISION_IMAGES held-out shapes images: the objects fp32 finds at
    detect's thresholds (.5, NMS .45) that bf16 and int8 find again (same class, IoU >= .8), and each head's
    largest absolute difference from fp32."""
    from make_shapes import detection_scene

    from pydarknet.eval.agreement import found_again
    from pydarknet.infer.detect import detect_batch
    from pydarknet.infer.engine import InferenceModel
    from pydarknet.infer.inputs import network_batch

    net = Darknet(ROOT / "cfg" / "yolov2-tiny-shapes.cfg")
    net.load_weights(ROOT / "weights" / "yolov2-tiny-shapes.weights")
    net.eval()
    frames = [detection_scene(1, "valid", k, (160, 480)).image for k in range(PRECISION_IMAGES)]
    calibration = [detection_scene(1, "train", k, (160, 480)).image for k in range(PRECISION_CALIBRATION_IMAGES)]
    models = {"fp32": InferenceModel(net), "bf16": InferenceModel(net, precision="bf16"),
              "int8": InferenceModel(net, precision="int8", calibration=calibration)}
    chunks = [frames[k : k + 8] for k in range(0, len(frames), 8)]
    batches = [network_batch(net, chunk) for chunk in chunks]
    found = {name: [detect_batch(net, chunk, model=m, batch=b) for chunk, b in zip(chunks, batches)] for name, m in models.items()}
    heads = {name: [m(b) for b in batches] for name, m in models.items()}
    total = sum(len(d) for part in found["fp32"] for d in part)
    rows = []
    for name in ("bf16", "int8"):
        again = sum(found_again(r, o) for ref, other in zip(found["fp32"], found[name]) for r, o in zip(ref, other))
        diffs = [max(float((o[h] - r[h]).abs().max()) for r, o in zip(heads["fp32"], heads[name])) for h in range(len(net.output_indices))]
        rows.append(f"answers  yolov2-tiny-shapes 544, {PRECISION_IMAGES} held-out images: {name} finds {again} of fp32's {total} "
                    f"objects again ({again / total:.1%}); heads' max |{name} - fp32|: {', '.join(f'{d:.4f}' for d in diffs)}")
    return rows


def bench_compare(args: argparse.Namespace) -> list[str]:
    """pydarknet's inference modes against ONNX Runtime (and OpenVINO when installed) on the same network, in one
    process, timed in turns: batch 1, yolov2 and yolov2-tiny at 416 and 608; ratios to ONNX Runtime's time.
    ONNX Runtime runs pydarknet's own `convert --fuse` export (batch norm folded) with `--threads` threads."""
    import onnxruntime

    from pydarknet.convert.fuse import fuse_batchnorm
    from pydarknet.convert.onnx_export import onnx_bytes
    from pydarknet.infer.engine import InferenceModel

    try:
        import openvino
    except ImportError:
        openvino = None
    rows = ["| network | size | mode | ms/image | time / ONNX Runtime |", "|---|---|---|---|---|"]
    for cfg in ("yolov2.cfg", "yolov2-tiny.cfg"):
        for size in (416, 608):
            net = random_network(cfg, size)
            exported = onnx_bytes(fuse_batchnorm(net))
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = args.threads
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads would steal torch's cores
            session = onnxruntime.InferenceSession(exported, options, providers=["CPUExecutionProvider"])
            x = torch.rand(1, 3, size, size)
            feed = {session.get_inputs()[0].name: x.numpy()}
            fast, compiled = InferenceModel(net), InferenceModel(net, compile=True)
            compiled(x)
            modes = {"ONNX Runtime": lambda: session.run(None, feed), "InferenceModel": lambda: fast(x),
                     "InferenceModel, compiled": lambda: compiled(x)}
            if openvino is not None:
                core = openvino.Core()
                core.set_property("CPU", {"INFERENCE_NUM_THREADS": args.threads})
                request = core.compile_model(core.read_model(exported), "CPU").create_infer_request()
                modes["OpenVINO fp32"] = lambda: request.infer([x.numpy()])
            times = interleaved_medians(modes, args.repeat)
            rows += [f"| {cfg} | {size} | {mode} | {t * 1000:.1f} | {t / times['ONNX Runtime']:.2f} |"
                     for mode, t in times.items()]
    return rows


def darknet_seconds(binary: str, cfg: str, net: Darknet) -> float:
    """C Darknet's own "Predicted in" time for `detector test` on dog.png with this network's weights (median)."""
    import re
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "random.weights"
        save_weights(net, weights)
        data = Path(tmp) / "coco.data"
        data.write_text(f"classes=80\nnames={ROOT / 'data' / 'coco.names'}\n")
        times = []
        for _ in range(3):
            out = subprocess.run([binary, "detector", "test", str(data), str(ROOT / "cfg" / cfg), str(weights),
                                  str(ROOT / "tests" / "golden" / "images" / "dog.png"), "-thresh", "0.5"],
                                 cwd=tmp, capture_output=True, text=True, timeout=600)
            found = re.search(r"Predicted in ([0-9.]+) seconds", out.stdout + out.stderr)
            if not found:
                raise SystemExit(f"bench: {binary} printed no 'Predicted in' time: {(out.stderr or out.stdout)[-300:]}")
            times.append(float(found.group(1)))
    return statistics.median(times)


def _ddp_rank(rank: int, port: int, repeat: int, out: str) -> None:
    """One of 2 gloo ranks: time the gradient all-reduce of yolov2-voc (one per iteration)."""
    import os

    from pydarknet.train.distributed import process_group, sum_gradients

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    with process_group("cpu", timeout=300):
        params = list(random_network("yolov2-voc.cfg").parameters())
        for param in params:
            param.grad = torch.ones_like(param)
        t = median_seconds(lambda: sum_gradients(params), repeat)
    if rank == 0:
        Path(out).write_text(f"{t} {sum(p.numel() for p in params)}")


# Runs argv[1:] (output discarded) and prints its wall seconds, peak RSS (kB) and exit status.  A small process
# starts it: a child's peak RSS counts the pages of the process that spawned it until its exec.
_LAUNCH = ("import os, sys, time\nstart = time.perf_counter()\nquiet = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_WRONLY, 0) "
           "for fd in (1, 2)]\npid = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ, file_actions=quiet)\n"
           "_, status, usage = os.wait4(pid, 0)\nprint(time.perf_counter() - start, usage.ru_maxrss, status)")


def _process(command: list[str], cwd: str) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one run of `command`."""
    seconds, kilobytes, status = subprocess.run([sys.executable, "-c", _LAUNCH, *command], cwd=cwd, check=True,
                                                capture_output=True, text=True).stdout.split()
    if int(status):
        raise SystemExit(f"{shlex.join(command)} failed (status {status})")
    return float(seconds), int(kilobytes) * 1024  # Linux: ru_maxrss in kilobytes


def bench_startup(args: argparse.Namespace) -> list[str]:
    """Whole processes, run in turns: a bare Python, `import torch`, `pydarknet --version`, `pydarknet detect` of the
    demo model and of yolov2 (random weights, its cfg's 608x608) on the demo image.  Median wall time and peak
    RSS, each also as the excess over `import torch` (#23's targets: --version <= 0.5 s over a bare Python; the
    demo detect <= 0.6 s over `import torch`; yolov2's RSS <= 2x its weights over torch's)."""
    script = Path(sys.executable).parent / "pydarknet"
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "pydarknet"]
    image = str(ROOT / "data" / "shapes-demo.jpg")
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "yolov2.weights"
        save_weights(random_network("yolov2.cfg"), weights)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import torch'": [sys.executable, "-c", "import torch"],
            "pydarknet --version": [*cli, "--version"],
            "pydarknet detect (demo model)": [*cli, "detect", str(ROOT / "cfg" / "yolov2-tiny-shapes.cfg"),
                                              str(ROOT / "weights" / "yolov2-tiny-shapes.weights"), image],
            "pydarknet detect (yolov2, 608)": [*cli, "detect", str(ROOT / "cfg" / "yolov2.cfg"), str(weights), image],
        }
        runs: dict[str, list[tuple[float, int]]] = {name: [] for name in commands}
        for _ in range(args.repeat):
            for name, command in commands.items():
                runs[name].append(_process(command, tmp))
        size = weights.stat().st_size
    seconds = {name: statistics.median(s for s, _ in r) for name, r in runs.items()}
    rss = {name: max(m for _, m in r) for name, r in runs.items()}
    base = "python -c 'import torch'"
    mib = 2**20
    rows = [f"yolov2.weights: {size / mib:.0f} MiB", "",
            "| process | wall s | over `import torch` | peak RSS MiB | RSS over torch's MiB |", "|---|---|---|---|---|"]
    rows += [f"| `{name}` | {seconds[name]:.2f} | {seconds[name] - seconds[base]:+.2f} | {rss[name] / mib:.0f} | "
             f"{(rss[name] - rss[base]) / mib:+.0f} |" for name in commands]
    return rows


def bench_ddp(args: argparse.Namespace) -> list[str]:
    """Distributed training's per-iteration communication: yolov2-voc's gradients summed over 2 CPU ranks (gloo)."""
    import socket

    import torch.multiprocessing

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "t")
        torch.multiprocessing.start_processes(_ddp_rank, args=(port, args.repeat, out), nprocs=2, start_method="spawn")
        t, count = Path(out).read_text().split()
    mb = int(count) * 4 / 1e6
    return [f"ddp      yolov2-voc gradients ({mb:.0f} MB) all-reduced over 2 gloo ranks: {float(t) * 1000:8.1f} ms/iteration "
            f"({mb / float(t):.0f} MB/s)"]


def bench_classifier(args: argparse.Namespace) -> list[str]:
    """Classifier training: load_data_augment at 224 (darknet19.cfg's augmentation) and one tiny-shapes train_step."""
    import numpy as np

    from pydarknet.data import augment_classification
    from pydarknet.image import load_image

    image = sorted((ROOT / "tests" / "golden" / "images").glob("*.png"))[0]
    im = load_image(image)
    rng = np.random.default_rng(0)
    n = 20
    t = median_seconds(lambda: [augment_classification(im, 224, 224, 448, 7, 0.75, 0.1, 0.75, 0.75, rng) for _ in range(n)], args.repeat)
    rows = [f"augment  {image.name} {im.shape[2]}x{im.shape[1]} -> 224x224 crop (decoded): {n / t:6.1f} images/s"]
    net = Darknet(ROOT / "cfg" / "tiny-shapes-classifier.cfg")
    x = torch.rand(32, 3, 32, 32)
    truth = torch.eye(6)[torch.arange(32) % 6]
    state = TrainingState(net)
    t = median_seconds(lambda: train_network(net, state, x, truth), args.repeat)
    rows.append(f"train    tiny-shapes-classifier 32x32, batch 32: {t * 1000:7.1f} ms/step ({torch.get_num_threads()} threads)")
    return rows


BENCHMARKS: dict[str, Callable[[argparse.Namespace], list[str]]] = {
    "forward": bench_forward,
    "weights": bench_weights_load,
    "augment": bench_augment,
    "eval": bench_eval,
    "train": bench_train,
    "convert": bench_convert,
    "detect": bench_detect,
    "stages": bench_detect_stages,
    "shapes": bench_shapes,
    "inference": bench_inference,
    "precision": bench_precision,
    "ddp": bench_ddp,
    "classifier": bench_classifier,
    "startup": bench_startup,
    "compare": bench_compare,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these sections")
    parser.add_argument("--darknet", metavar="PATH", help="a C Darknet binary: adds its detector test time to the inference table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"pydarknet bench: torch {torch.__version__}, {args.threads} threads, median of {args.repeat}")
    for name in args.only or BENCHMARKS:
        for row in BENCHMARKS[name](args):
            print(row, flush=True)


if __name__ == "__main__":
    main()
