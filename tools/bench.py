#!/usr/bin/env python3
"""pydarknet benchmarks: every figure measured side by side in one run.

usage: python tools/bench.py [--threads 2] [--repeat 5] [--only NAME ...]

Networks get Darknet-like random weights (no download needed); timings are
medians of `--repeat` runs after a warm-up.  Sections: forward latency and
throughput (yolov2, yolov2-tiny at 416, batch 1 and 8) with BFLOPs and the
achieved GFLOP/s, weights loading rate, and the shapes generator's images/s.
"""

from __future__ import annotations

import argparse
import statistics
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


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
        net.save_weights(path)
        size = path.stat().st_size
        t = median_seconds(lambda: net.load_weights(path), args.repeat)
    return [f"weights  load yolov2.weights ({size / 1e6:.0f} MB): {t * 1000:7.1f} ms  {size / t / 1e9:5.2f} GB/s"]


def bench_shapes(args: argparse.Namespace) -> list[str]:
    """tools/make_shapes.py throughput: detection images (160-480 px) written per second."""
    from make_shapes import make_detection_set

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        start = time.perf_counter()
        make_detection_set(Path(tmp) / "det", seed=0, n_train=200, n_valid=0, workers=args.threads)
        t = time.perf_counter() - start
    return [f"shapes   make_detection_set 200 images, {args.threads} workers: {200 / t:6.1f} images/s"]


BENCHMARKS: dict[str, Callable[[argparse.Namespace], list[str]]] = {
    "forward": bench_forward,
    "weights": bench_weights_load,
    "shapes": bench_shapes,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these sections")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"pydarknet bench: torch {torch.__version__}, {args.threads} threads, median of {args.repeat}")
    for name in args.only or BENCHMARKS:
        for row in BENCHMARKS[name](args):
            print(row, flush=True)


if __name__ == "__main__":
    main()
