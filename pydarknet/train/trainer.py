"""The training loop of `darknet detector train` (examples/detector.c:train_detector).

Per iteration: one Darknet batch (`batch` images from the cfg, drawn with
replacement from the `train` list and augmented as load_data_detection),
`train_network` (forward, deltas, backward, update every `subdivisions`
mini-batches), Darknet's progress line
`N: loss, avg avg, rate rate, seconds seconds, images images`
(avg = .9 avg + .1 loss; AlexeyAB's dialect: its own, `AlexeyabProgress`), multi-scale resizing (`multiscale.py`),
checkpoints on Darknet's schedule (`checkpoints.py`: pjreddie's, or for a cfg
in AlexeyAB's dialect AlexeyAB's, whose `NAME_last.weights` replaces
`NAME.backup`), until `max_batches`.  With `--map`, AlexeyAB's mAP on the
valid list on its schedule and `NAME_best.weights` (`calc_map.py`).
`--max-batches` below the cfg's max_batches squeezes the schedule into the
shorter run (policy.shorten_schedule; one line says what changed).
Ctrl-C, SIGTERM, SIGHUP or SIGUSR1 let the current
iteration finish, save `NAME.backup` (AlexeyAB's dialect: `NAME_last.weights`)
with its resume state, and raise
StopRequested (pydarknet.train.signals); a second signal stops at once.

Nothing is saved from a diverged run: a NaN or infinite loss, or weights or
momentum that are no longer finite when a checkpoint is due, stop the run
with a DarknetError naming the iteration and the last good backup, which
stays as it was.  One run at a time writes a NAME's checkpoints into a
folder (pydarknet.train.backup_lock); the log (appended, a run id on each
row) and the chart (redrawn every 100 iterations, after each mAP and after
the last save) are warnings when they cannot be written.

Under torchrun (pydarknet.train.distributed) every rank runs this loop on
its share of each batch (`batch / W` images, sampled and augmented with its
own seed, at the multi-scale size every rank computes for that batch), the
loss printed is the mean over the ranks, and only rank 0 writes checkpoints,
the log and the chart, and measures the mAP (the others wait for it, within
`--dist-timeout`).

`--amp` (TrainRun.amp) trains in mixed precision (pydarknet.train.amp);
the loss scale is saved in the resume state with the momentum buffers.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pydarknet.cfg.net import NetOptions
from pydarknet.cfg.parser import read_cfg
from pydarknet.data import AlexeyabAugment, BatchLoader, DataFile, DetectionLoader, read_list
from pydarknet.errors import DarknetError, StopRequested
from pydarknet.layers.region import Region
from pydarknet.layers.yolo import Yolo
from pydarknet.layers.yolo_alexeyab import LossOptions
from pydarknet.network import Darknet
from pydarknet.train import distributed
from pydarknet.train.backup_lock import hold_backup_folder
from pydarknet.train.calc_map import MAP_EPOCHS, MapSchedule, TrainingMap
from pydarknet.train.chart import TrainingChart
from pydarknet.train.checkpoints import AlexeyabCheckpoints, load_state, save_checkpoint, scheduled_names
from pydarknet.train.log import TrainingLog, new_run_id
from pydarknet.train.multiscale import detector_sizes, last_window, multiscale, resize_lines
from pydarknet.train.options import check_training_cfg
from pydarknet.train.policy import current_batch, learning_rate, scaled, shorten_schedule
from pydarknet.train.signals import deferred_stop
from pydarknet.train.state import TrainingState
from pydarknet.train.step import rank_mini_batch, train_network
from pydarknet.weights import load_weights


@dataclass
class TrainRun:
    """What `pydarknet train` (or `pydarknet classifier train`) was asked to do."""

    data: Path
    cfg: Path
    weights: Path | None = None
    clear: bool = False
    device: str = "cpu"
    workers: int = 2
    seed: int | None = None  # None: the resumed .backup's own seed, else 0
    max_batches: int | None = None
    backup: Path | None = None
    chart: Path | None = None
    quiet: bool = False
    sync_bn: bool = False
    timeout: float = 600.0
    amp: bool = False
    training_build: str = "gpu"  # AlexeyAB's dialect: train as its GPU build or its CPU build (Darknet.set_training_build)
    calc_map: bool = False  # AlexeyAB's -map: mAP on the valid list during training, NAME_best.weights
    map_epochs: int = MAP_EPOCHS  # AlexeyAB's -mAP_epochs


def _head(net: Darknet) -> Region | Yolo:
    head = net.layers[-1]
    if not isinstance(head, (Region, Yolo)):
        raise DarknetError(f"{net.cfg_path}: the last layer is [{head.kind}]; detector training needs [region] or [yolo]")
    return head


def start_network(run: TrainRun, device: str, detector: bool = True) -> tuple[Darknet, dict | None]:
    """The network from the cfg (seeded init) and WEIGHTS on `device`, and the resume state beside a .backup.
    `detector`: the training options are checked for a detector's training (else a classifier's).

    The network is channels_last (NHWC), as the batches `train_loop` feeds it:
    about 1.3x faster convolutions on the CPU for Darknet's thin early layers.
    """
    check_training_cfg(run.cfg, detector)  # training-only keys (AlexeyAB's mosaic, iou_loss, ...) not implemented: refused
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run.seed or 0)  # Darknet's random init, reproducible by --seed
        net = Darknet(run.cfg)
    net.set_training_build(run.training_build)
    if net.dialect == "alexeyab":  # its [yolo] loss options, read at each step, checked before the run
        for layer in net.layers:
            if isinstance(layer, Yolo):
                LossOptions.read(layer.section, layer.classes)
    state = None
    if run.weights is not None:
        load_weights(net, run.weights, partial=True)  # Darknet starts detectors from darknet19_448.conv.23
        if not run.clear:
            state = load_state(run.weights, net.seen)
    run.seed = _run_seed(run, state)
    if run.clear:  # Darknet's -clear: load_network(cfg, weights, clear=1) sets seen to 0
        net.seen = 0
    return net.to(device, memory_format=torch.channels_last), state


def run_length(run: TrainRun, net: Darknet, ranks: distributed.Ranks, resizes: bool = False) -> tuple[int, int]:
    """The run's max_batches (`--max-batches`, else the cfg's) and how many of its last iterations are at
    one size under `random` (multiscale.last_window).  A run shorter than the cfg's has its schedule scaled
    to it (policy.shorten_schedule, and that window), and rank 0 prints one line saying so."""
    opt = net.options
    cfg_max = opt.max_batches
    window, size = last_window(net.dialect)
    if run.max_batches is None or run.max_batches >= cfg_max:
        return (cfg_max if run.max_batches is None else run.max_batches), window
    changes = shorten_schedule(opt, run.max_batches)
    full_size = scaled(window, run.max_batches, cfg_max)
    if resizes:
        changes.append(f"{size} for the last {window} -> {full_size}")
    if ranks.main:
        print(f"--max-batches {run.max_batches} is below the cfg's max_batches={cfg_max}: its schedule is scaled by "
              f"{run.max_batches}/{cfg_max}: {', '.join(changes) or 'nothing to scale'}")
    return run.max_batches, full_size


def _run_seed(run: TrainRun, state: dict | None) -> int:
    """The seed of the sampling and augmentation: --seed, else the resumed run's own (its exact continuation), else 0."""
    if state is None:
        return run.seed or 0
    if run.seed is None:
        return state["seed"]
    if run.seed != state["seed"]:
        warnings.warn(f"{run.weights} was trained with --seed {state['seed']}; going on with --seed {run.seed} "
                      "draws other images than the uninterrupted run would")
    return run.seed


def learning_rate_line(opt: NetOptions) -> str:
    """What both Darknets' train_detector and train_classifier print before training: `Learning Rate: %g,
    Momentum: %g, Decay: %g` of the cfg's floats."""
    rate, momentum, decay = (float(np.float32(v)) for v in (opt.learning_rate, opt.momentum, opt.decay))
    return f"Learning Rate: {rate:g}, Momentum: {momentum:g}, Decay: {decay:g}"


def darknet_loaded_line(seconds: float, avg_loss: float) -> str:
    """What both Darknets' train loops print once a batch's data is there (pjreddie's and AlexeyAB's
    train_classifier, pjreddie's train_detector; AlexeyAB's train_detector: AlexeyabProgress.loaded)."""
    return f"Loaded: {seconds:f} seconds"


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
    resume_name: str  # the checkpoint that carries the resume state, saved on a stop signal
    header: list[str]  # printed before the first iteration, as Darknet's train_detector/train_classifier do
    calc_map: TrainingMap | None = None  # --map
    loaded_line: Callable[[float, float], str] = darknet_loaded_line  # (seconds waited for the batch, avg loss)
    resize_lines: Callable[[int], list[str]] | None = None  # batch -> what train_detector/_classifier print drawing its size
    ema_name: str | None = None  # saved with the EMA beside each scheduled resume_name once it exists (train.ema)


class AlexeyabProgress:
    """AlexeyAB's lines around a step (src/detector.c train_detector): before it `Loaded: S seconds`, the
    wait for the batch's data (with " - performance bottleneck on CPU or Disk HDD/SSD" above .1 s once there
    is an average loss); after it ` N: loss, avg avg loss, rate rate, seconds seconds, images images, hours
    hours left`, where hours is the estimate of the iterations before: -1 at first, then an average moving
    by .01 towards `(max_batches - N) * (seconds + S) / 3600`."""

    def __init__(self, max_batches: int, images_per_batch: int) -> None:
        self.max_batches, self.images_per_batch = max_batches, images_per_batch
        self.hours_left = -1.0
        self.load_seconds = 0.0

    def loaded(self, seconds: float, avg_loss: float) -> str:
        self.load_seconds = seconds
        hint = " - performance bottleneck on CPU or Disk HDD/SSD" if seconds > 0.1 and avg_loss > 0 else ""
        return f"Loaded: {seconds:f} seconds{hint}"

    def __call__(self, i: int, loss: float, avg: float, rate: float, seconds: float) -> str:
        line = (f" {i}: {loss:f}, {avg:f} avg loss, {rate:f} rate, {seconds:f} seconds, {i * self.images_per_batch} images, "
                f"{self.hours_left:f} hours left")
        remaining = (self.max_batches - i) * (seconds + self.load_seconds) / 60 / 60
        self.hours_left = remaining if self.hours_left < 0 else 0.01 * remaining + 0.99 * self.hours_left
        return line


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
    max_batches, full_size = run_length(run, net, ranks, resizes=multiscale(net.dialect, head.random))
    base = run.cfg.stem
    start = current_batch(net.seen, opt)
    size_for_batch = detector_sizes(net.dialect, head.random, max_batches, run.seed, (opt.width, opt.height),
                                    opt.resize_step, full_size)
    loader = DetectionLoader(
        paths, size_for_batch, opt.batch // ranks.world_size, head.jitter, opt.hue, opt.saturation, opt.exposure,
        head.max_boxes, run.workers, run.seed, start_batch=start, rank=ranks.rank, classes=head.classes,
        class_map=head.map, class_only=isinstance(head, Region) and head.tree is not None,
        alexeyab=AlexeyabAugment.from_sections(read_cfg(run.cfg)) if net.dialect == "alexeyab" else None,
    )
    checkpoints: Callable[[int, int], list[str]]
    alexeyab_lines = AlexeyabProgress(max_batches, opt.batch) if net.dialect == "alexeyab" else None
    if net.dialect == "alexeyab":  # AlexeyAB's users find and resume from NAME_last.weights
        alexeyab = AlexeyabCheckpoints(base, start, max_batches, data.saveweights, data.savelast)
        checkpoints, resume_name = alexeyab, alexeyab.resume_name
        header = [f"Training as AlexeyAB's {net.training_build.upper()} build computes"
                  + (" (--alexeyab-cpu-build)" if net.training_build == "cpu" else " (--alexeyab-cpu-build for its CPU build's numbers)"),
                  base,
                  f"Weights are saved after: {alexeyab.save_every} iterations. Last weights (*_last.weight) are stored "
                  f"every {alexeyab.last_every} iterations. ",  # src/detector.c's printf, its spelling
                  learning_rate_line(opt)]
    else:
        checkpoints, resume_name = (lambda i, seen: scheduled_names(base, i)), f"{base}.backup"
        header = [base, learning_rate_line(opt)]  # examples/detector.c
    calc_map = None
    if run.calc_map:
        schedule = MapSchedule.for_run(len(paths), opt.mini_batch * opt.subdivisions, opt.burn_in, max_batches, start,
                                       run.map_epochs)
        calc_map = TrainingMap(net, data, schedule, head.classes, quiet=run.quiet or not ranks.main)
    plan = LoopPlan(
        base=base,
        backup_dir=run.backup or data.backup,
        max_batches=max_batches,
        images_per_batch=opt.batch,
        checkpoint_names=checkpoints,
        progress_line=alexeyab_lines or (
            lambda i, loss, avg, rate, secs: f"{i}: {loss:f}, {avg:f} avg, {rate:f} rate, {secs:f} seconds, {i * opt.batch} images"
        ),
        loaded_line=alexeyab_lines.loaded if alexeyab_lines is not None else darknet_loaded_line,
        resize_lines=partial(resize_lines, net.dialect, head.random, size_for_batch, start)
        if multiscale(net.dialect, head.random) else None,
        final_name=f"{base}_final.weights",
        resume_name=resume_name,
        header=header,
        calc_map=calc_map,
        ema_name=f"{base}_ema.weights" if net.dialect == "alexeyab" else None,  # src/detector.c train_detector
    )
    return train_loop(run, net, state, loader, plan, ranks)


def train_loop(run: TrainRun, net: Darknet, state: dict | None, loader: BatchLoader, plan: LoopPlan, ranks: distributed.Ranks) -> Path:
    """Darknet's training loop (see the module doc) until `plan.max_batches`; returns the final weights' path."""
    opt = net.options
    backup_dir = plan.backup_dir
    base = plan.base
    start = current_batch(net.seen, opt)
    training = TrainingState(net, amp=run.amp)  # the momentum and loss scale: the run's, saved in its .backup
    if state is not None:
        try:
            training.load_resume_entries(state)
        except DarknetError as err:
            raise DarknetError(f"{run.weights}: damaged resume state: {err}") from None
    avg_loss = state["avg_loss"] if state is not None else -1.0
    last_good = f"{run.weights} (iteration {start})" if run.weights is not None else "none was saved"
    quiet = run.quiet or not ranks.main
    say = (lambda line, file=sys.stdout: None) if quiet else tqdm.write  # Darknet's lines, around the bar if any

    def save(name: str, i: int) -> None:
        """Save a checkpoint on rank 0; every rank stops together if a rank's weights are not finite or the save fails."""
        nonlocal last_good
        if distributed.any_rank(not _finite(net, training)):  # rolling statistics are per rank without --sync-bn
            raise DarknetError(f"iteration {i}: the weights hold NaN or infinite values: {_DIVERGED}; "
                               f"the last good backup is {last_good}")
        say(f"Saving weights to {backup_dir / name}", file=sys.stderr)  # both Darknets' save_weights, before it writes
        resume = name == plan.resume_name
        distributed.on_main_rank(
            ranks, lambda: save_checkpoint(net, backup_dir / name, _resume_state(net, training, avg_loss, run.seed) if resume else None),
            f"save {backup_dir / name}",
        )
        if resume:
            last_good = f"{backup_dir / name} (iteration {i})"

    for line in plan.header:
        say(line)
    with _backup_folder(plan, ranks):
        log = TrainingLog(backup_dir / f"{base}_log.csv", new_run_id()) if ranks.main else None
        chart = TrainingChart(log.path, run.chart, f"{base} on {run.data.name}", plan.max_batches) \
            if log is not None and run.chart is not None else None
        drawn, stale = start, False  # the iteration of the chart's last drawing; rows logged since
        # the bar only on a terminal: in a log, Darknet's own line per iteration (below) is the progress
        progress = tqdm(total=plan.max_batches, initial=start, unit="batch", disable=quiet or not sys.stderr.isatty(),
                        dynamic_ncols=True)
        # each head's line per mini-batch: pjreddie's printf on stdout, AlexeyAB's [yolo] fprintf on stderr
        lines_to = sys.stderr if net.dialect == "alexeyab" else sys.stdout
        head_line = None if quiet else (lambda line: progress.write(line, file=lines_to))
        net.train()
        try:
            with deferred_stop() as stop:
                waiting = time.perf_counter()
                for batch, images, truth in (loader if start < plan.max_batches else ()):
                    if not quiet:
                        for line in [*(plan.resize_lines(batch) if plan.resize_lines is not None else []),
                                     plan.loaded_line(time.perf_counter() - waiting, avg_loss)]:
                            progress.write(line)
                    width, height = images.shape[3], images.shape[2]
                    if (width, height) != (net.width, net.height):
                        net.resize(width, height)
                    tic = time.perf_counter()
                    images = images.to(ranks.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                    loss = train_network(net, training, images, truth.to(ranks.device, non_blocking=True), head_line)
                    seconds = time.perf_counter() - tic
                    loss, stopping = distributed.agree(loss, stop.is_set())  # every rank stops at the same iteration
                    i = current_batch(net.seen, opt)
                    if math.isfinite(loss):
                        avg_loss = loss if avg_loss < 0 else avg_loss * 0.9 + loss * 0.1
                    elif training.scaler is None:  # under a float16 loss scale an inf/NaN only skips the update
                        raise DarknetError(f"iteration {i}: the loss is {loss}: {_DIVERGED}; the last good backup is {last_good}")
                    rate = learning_rate(opt, i, net.dialect)
                    progress.set_postfix_str(f"loss {loss:.3f} avg {avg_loss:.3f} rate {rate:g} {width}x{height}")
                    progress.update(1)
                    if not quiet:
                        lines = plan.calc_map.status() if plan.calc_map is not None else []  # AlexeyAB's, before its progress line
                        for line in [*lines, plan.progress_line(i, loss, avg_loss, rate, seconds)]:
                            progress.write(line)
                    measured = None
                    if plan.calc_map is not None and plan.calc_map.schedule.due(i):
                        measured, best = _measure_map(plan.calc_map, net, i, ranks, progress.write)
                        if best:
                            save(f"{base}_best.weights", i)
                    if log is not None:
                        log.row(i, f"{loss:f}", f"{avg_loss:f}", f"{rate:g}", f"{seconds:f}", i * plan.images_per_batch,
                                f"{measured:f}" if measured is not None else "")
                        stale = True
                    for name in plan.checkpoint_names(i, net.seen):
                        save(name, i)
                        if name == plan.resume_name and plan.ema_name and training.ema and training.ema.initialized():
                            with training.ema.swapped_in():
                                save(plan.ema_name, i)
                    if chart is not None and (measured is not None or chart.due(i, drawn)):
                        chart.draw()
                        drawn, stale = i, False
                    if stopping:
                        save(plan.resume_name, i)
                        raise StopRequested(stop.signum, f"stopped by {stop.name() or 'another rank'}: saved "
                                            f"{backup_dir / plan.resume_name} at iteration {i}; resume by giving it as WEIGHTS")
                    if i >= plan.max_batches:
                        break
                    waiting = time.perf_counter()
                final = backup_dir / plan.final_name
                save(plan.final_name, current_batch(net.seen, opt))  # a signal now waits for the save
        finally:
            progress.close()
            if log is not None:
                log.close()
            if chart is not None and stale:
                chart.draw()
    return final


def _measure_map(calc_map: TrainingMap, net: Darknet, i: int, ranks: distributed.Ranks,
                 write: Callable[[str], object]) -> tuple[float | None, bool]:
    """AlexeyAB's mAP after iteration `i`, on rank 0 (the others wait for it): (the mAP on rank 0, else None;
    whether every rank is to save NAME_best.weights)."""
    calc_map.schedule.last = i  # iter_map = iteration
    result: list = [None, False]

    def measure() -> None:
        value = calc_map.measure(net)
        best, lines = calc_map.record(value)
        for line in lines:
            write(line)
        result[:] = [value, best]

    distributed.on_main_rank(ranks, measure, "calculate the mAP")
    return result[0], distributed.any_rank(result[1])


_DIVERGED = "training diverged (is the learning rate too high?); stopped without saving"


def _finite(net: Darknet, training: TrainingState) -> bool:
    """Whether every weight, rolling statistic and momentum buffer is finite (else nothing is saved)."""
    tensors = [*net.state_dict().values(), *(slot.updates for slot in training.sgd.slots.values())]
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


def _resume_state(net: Darknet, training: TrainingState, avg_loss: float, seed: int) -> dict:
    """What a .backup carries besides the weights to continue the very same run."""
    entries = training.resume_entries()  # all of them; the keys in the order of earlier versions' .backup
    return {"seen": net.seen, "avg_loss": float(avg_loss), "optimizer": entries.pop("optimizer"), "seed": seed, **entries}


@contextlib.contextmanager
def _backup_folder(plan: LoopPlan, ranks: distributed.Ranks) -> Iterator[None]:
    """Rank 0 holds the checkpoint folder's lock while the block runs; every rank stops if it cannot."""
    with contextlib.ExitStack() as stack:
        distributed.on_main_rank(ranks, lambda: stack.enter_context(hold_backup_folder(plan.backup_dir, plan.base)),
                                 f"take {plan.backup_dir} for its checkpoints")
        yield
