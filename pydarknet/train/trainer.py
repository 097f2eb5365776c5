"""The training loop of `darknet detector train` (examples/detector.c:train_detector).

Per iteration: one Darknet batch (`batch` images from the cfg, drawn with
replacement from the `train` list and augmented as load_data_detection),
`train_step` (forward, deltas, backward, update every `subdivisions`
mini-batches), Darknet's progress line
`N: loss, avg avg, rate rate, seconds seconds, images images`
(avg = .9 avg + .1 loss), multi-scale resizing (`multiscale.py`),
checkpoints on Darknet's schedule (`checkpoints.py`), until
`max_batches`.  Ctrl-C lets the current iteration finish, saves
`NAME.backup` (and its resume state) and raises KeyboardInterrupt; a second
Ctrl-C stops at once.

Under torchrun (pydarknet.train.distributed) every rank runs this loop on
its share of each batch (`batch / W` images, sampled and augmented with its
own seed, at the multi-scale size every rank computes for that batch), the
loss printed is the mean over the ranks, and only rank 0 writes checkpoints,
the log and the chart.

`--amp` (TrainRun.amp) trains in mixed precision (pydarknet.train.amp);
the loss scale is saved in the resume state with the momentum buffers.
"""

from __future__ import annotations

import contextlib
import csv
import io
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TextIO

import torch
from tqdm import tqdm

from pydarknet.data import BatchLoader, DataFile, DetectionLoader, read_list
from pydarknet.errors import DarknetError
from pydarknet.layers.region import Region
from pydarknet.layers.yolo import Yolo
from pydarknet.network import Darknet
from pydarknet.train import distributed
from pydarknet.train.amp import enable_amp, load_scaler_state, scaler_state
from pydarknet.train.chart import draw_loss_chart
from pydarknet.train.checkpoints import load_state, save_checkpoint, scheduled_names
from pydarknet.train.multiscale import multiscale_size
from pydarknet.train.policy import current_batch, learning_rate
from pydarknet.train.step import rank_mini_batch, sgd_state
from pydarknet.weights import write_atomic

LOG_FIELDS = ["iteration", "loss", "avg_loss", "rate", "seconds", "images"]


@dataclass
class TrainRun:
    """What `pydarknet train` (or `pydarknet classifier train`) was asked to do."""

    data: Path
    cfg: Path
    weights: Path | None = None
    clear: bool = False
    device: str = "cpu"
    workers: int = 2
    seed: int = 0
    max_batches: int | None = None
    backup: Path | None = None
    chart: Path | None = None
    quiet: bool = False
    sync_bn: bool = False
    timeout: float = 600.0
    amp: bool = False


def _head(net: Darknet) -> Region | Yolo:
    head = net.layers[-1]
    if not isinstance(head, (Region, Yolo)):
        raise DarknetError(f"{net.cfg_path}: the last layer is [{head.kind}]; detector training needs [region] or [yolo]")
    return head


def start_network(run: TrainRun, device: str) -> tuple[Darknet, dict | None]:
    """The network from the cfg (seeded init) and WEIGHTS on `device`, and the resume state beside a .backup.

    The network is channels_last (NHWC), as the batches `train_loop` feeds it:
    about 1.3x faster convolutions on the CPU for Darknet's thin early layers.
    With `run.amp` it trains in mixed precision (enable_amp).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run.seed)  # Darknet's random init, reproducible by --seed
        net = Darknet(run.cfg)
    state = None
    if run.weights is not None:
        net.load_weights(run.weights, partial=True)  # Darknet starts detectors from darknet19_448.conv.23
        if run.weights.suffix == ".backup" and not run.clear:
            state = load_state(run.weights)
    if run.clear:  # Darknet's -clear: load_network(cfg, weights, clear=1) sets seen to 0
        net.seen = 0
    if state is not None and state.get("seen") != net.seen:
        state = None  # a state file from another save than this .backup
    net = net.to(device, memory_format=torch.channels_last)
    if run.amp:
        enable_amp(net)
    return net, state


@contextlib.contextmanager
def _deferred_interrupt():
    """While training: the first SIGINT sets a flag (checked between iterations), the second interrupts."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):  # type: ignore[no-untyped-def]
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class LoopPlan:
    """What differs between `detector train` and `classifier train` around the shared loop."""

    base: str  # NAME of the checkpoint files (the cfg's stem)
    backup_dir: Path
    max_batches: int
    images_per_batch: int
    checkpoint_names: Callable[[int, int], list[str]]  # (iteration, seen) -> files to save now
    progress_line: Callable[[int, float, float, float, float], str]  # (iteration, loss, avg, rate, seconds)
    final_name: str


def train_detector(run: TrainRun) -> Path:
    """Train as Darknet does, alone or as one rank of a torchrun job; returns the path of `NAME_final.weights`."""
    with distributed.process_group(run.device, run.timeout) as ranks:
        return _train(run, ranks)


def _train(run: TrainRun, ranks: distributed.Ranks) -> Path:
    data = DataFile.read(run.data, need=("train",))
    paths = read_list(data.train)
    if not paths:
        raise DarknetError(f"{data.train}: the train list is empty")
    net, state = start_network(run, ranks.device)
    head = _head(net)
    opt = net.options
    if head.classes != data.classes:
        raise DarknetError(f"{run.data}: classes={data.classes} but {run.cfg} has classes={head.classes}")
    rank_mini_batch(net, ranks.world_size)  # the batch must split over the ranks
    if ranks.world_size > 1:
        distributed.broadcast_model(net)
        distributed.synchronize_batchnorm(net, run.sync_bn)
    max_batches = run.max_batches if run.max_batches is not None else opt.max_batches
    base = run.cfg.stem
    size_for_batch = partial(
        multiscale_size, max_batches=max_batches, seed=run.seed, cfg_size=(opt.width, opt.height), random=bool(head.random)
    )
    loader = DetectionLoader(
        paths, size_for_batch, opt.batch // ranks.world_size, head.jitter, opt.hue, opt.saturation, opt.exposure,
        head.max_boxes, run.workers, run.seed, start_batch=current_batch(net.seen, opt), rank=ranks.rank, classes=head.classes,
    )
    plan = LoopPlan(
        base=base,
        backup_dir=run.backup or data.backup,
        max_batches=max_batches,
        images_per_batch=opt.batch,
        checkpoint_names=lambda i, seen: scheduled_names(base, i),
        progress_line=lambda i, loss, avg, rate, secs: (
            f"{i}: {loss:f}, {avg:f} avg, {rate:f} rate, {secs:f} seconds, {i * opt.batch} images"
        ),
        final_name=f"{base}_final.weights",
    )
    return train_loop(run, net, state, loader, plan, ranks)


def train_loop(run: TrainRun, net: Darknet, state: dict | None, loader: BatchLoader, plan: LoopPlan, ranks: distributed.Ranks) -> Path:
    """Darknet's training loop (see the module doc) until `plan.max_batches`; returns the final weights' path."""
    opt = net.options
    backup_dir = plan.backup_dir
    base = plan.base
    start = current_batch(net.seen, opt)
    if state is not None:
        sgd_state(net).load_state_dict(state["optimizer"])
        load_scaler_state(net, state.get("loss_scale"))
    avg_loss = state["avg_loss"] if state is not None else -1.0
    log_path = backup_dir / f"{base}_log.csv"
    log_file = _open_log(log_path, start) if ranks.main else None
    log = csv.writer(log_file) if log_file is not None else None

    def resume_state() -> dict:
        return {
            "seen": net.seen, "avg_loss": avg_loss, "optimizer": sgd_state(net).state_dict(), "seed": run.seed,
            "loss_scale": scaler_state(net),
        }

    quiet = run.quiet or not ranks.main
    progress = tqdm(total=plan.max_batches, initial=start, unit="batch", disable=quiet, dynamic_ncols=True)
    net.train()
    try:
        with _deferred_interrupt() as stop:
            for batch, images, truth in (loader if start < plan.max_batches else ()):
                width, height = images.shape[3], images.shape[2]
                if (width, height) != (net.width, net.height):
                    net.resize(width, height)
                tic = time.perf_counter()
                images = images.to(ranks.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                loss = net.train_step(images, truth.to(ranks.device, non_blocking=True))
                seconds = time.perf_counter() - tic
                loss, stopping = distributed.agree(loss, stop.is_set())  # every rank stops at the same iteration
                avg_loss = loss if avg_loss < 0 else avg_loss * 0.9 + loss * 0.1
                i = current_batch(net.seen, opt)
                rate = learning_rate(opt, i)
                progress.set_postfix_str(f"loss {loss:.3f} avg {avg_loss:.3f} rate {rate:g} {width}x{height}")
                progress.update(1)
                if ranks.main:
                    log.writerow([i, f"{loss:f}", f"{avg_loss:f}", f"{rate:g}", f"{seconds:f}", i * plan.images_per_batch])
                    log_file.flush()
                    if not quiet:
                        progress.write(plan.progress_line(i, loss, avg_loss, rate, seconds))
                    for name in plan.checkpoint_names(i, net.seen):
                        save_checkpoint(net, backup_dir / name, resume_state() if name.endswith(".backup") else None)
                if stopping:
                    if ranks.main:
                        save_checkpoint(net, backup_dir / f"{base}.backup", resume_state())
                        progress.write(f"interrupted: saved {backup_dir / f'{base}.backup'} at iteration {i}")
                    raise KeyboardInterrupt
                if i >= plan.max_batches:
                    break
    finally:
        progress.close()
        if log_file is not None:
            log_file.close()
            if run.chart is not None and log_path.exists():
                draw_loss_chart(log_path, run.chart, f"{base} on {run.data.name}")
    final = backup_dir / plan.final_name
    if ranks.main:
        save_checkpoint(net, final)
    return final


def _open_log(path: Path, start: int) -> TextIO:
    """The CSV log, open for appending: new at iteration 0; when resuming at `start`, its rows up to `start` kept.

    A run that went on past its last backup logged iterations that now run
    again: their rows are dropped rather than written twice.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [LOG_FIELDS]
    if start > 0 and path.exists():
        with open(path, newline="") as f:
            rows += [row for row in list(csv.reader(f))[1:] if row and row[0].isdigit() and int(row[0]) <= start]
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    write_atomic(path, text.getvalue().encode())
    return open(path, "a", newline="")
