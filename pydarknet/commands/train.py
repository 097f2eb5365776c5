"""`pydarknet train DATA CFG [WEIGHTS]` (also `pydarknet detector train ...`): Darknet's detector training."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pydarknet.commands import verb_parser
from pydarknet.commands.arguments import device, non_negative_int, positive_float, positive_int
from pydarknet.train.calc_map import MAP_EPOCHS
from pydarknet.train.trainer import TrainRun, train_detector


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = verb_parser(
        sub, "train",
        description="Train as Darknet does: batch/subdivisions, the cfg's policy and burn_in, random=1 "
        "multi-scale, checkpoints into the .data's backup folder: pjreddie's NAME.backup every 100 iterations, "
        "NAME_N.weights, NAME_final.weights; for a cfg in AlexeyAB's dialect AlexeyAB's NAME_last.weights every 100 "
        "iterations, NAME_N.weights every 1000 (10000 when max_batches >= 10000; the .data's saveweights=/savelast= "
        "change both), NAME_final.weights. Resume by passing NAME.backup (NAME_last.weights) as WEIGHTS. "
        "The log NAME_log.csv gets a row per iteration, each run's rows appended with its run id.",
    )
    p.add_argument("data", type=Path, help="Darknet .data file (classes, train, backup, names)")
    p.add_argument("cfg", type=Path, help="network .cfg")
    p.add_argument("weights", type=Path, nargs="?", help="initial weights, e.g. darknet19_448.conv.23, or a .backup to resume")
    p.add_argument("--map", dest="calc_map", action="store_true",
                   help="AlexeyAB's -map: mAP@0.50 on the .data's valid= list (train= if none) every 4 epochs of "
                        "iterations, at least 100 apart, not before burn_in, and after the last iteration, as `pydarknet "
                        "map` computes it for the cfg; NAME_best.weights whenever it is the best of the run")
    p.add_argument("--map-epochs", "--mAP_epochs", dest="map_epochs", type=positive_int, default=MAP_EPOCHS,
                   metavar="N", help=f"with --map: every N epochs instead of {MAP_EPOCHS} (AlexeyAB's -mAP_epochs)")
    p.add_argument("--dont-show", "--dont_show", action="store_true",
                   help="accepted for AlexeyAB's command lines (-dont_show); pydarknet opens no window")
    add_training_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    final = train_detector(training_run(args))
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 saves it
        print(f"saved {final}")
    return 0


def add_training_arguments(p: argparse.ArgumentParser) -> None:
    """The options `train` and `classifier train` share (the trainer's TrainRun)."""
    p.add_argument("--clear", action="store_true", help="start counting from 0 (Darknet's -clear): seen, schedule and burn_in restart")
    p.add_argument("--device", type=device, default="cpu", help="cpu, cuda, cuda:1 ... (default cpu); under torchrun `cuda` is GPU LOCAL_RANK")
    p.add_argument("--workers", type=non_negative_int, default=2, help="data loading processes (default 2)")
    p.add_argument("--seed", type=int, help="seed for sampling, augmentation, multi-scale sizes and the initialisation "
                   "(default 0; when resuming a pydarknet .backup, the seed it was trained with)")
    p.add_argument("--max-batches", type=positive_int,
                   help="stop after this many iterations instead of the cfg's max_batches; below it, the schedule "
                        "(burn_in, steps, step, poly's end, the last 608x608 iterations) is scaled in proportion")
    p.add_argument("--backup", type=Path, help="checkpoint folder (default: the .data's backup=)")
    p.add_argument("--chart", type=Path, help="write the chart PNG here (loss, learning rate, --map's mAP), "
                   "redrawn every 100 iterations, after each mAP and at the end")
    p.add_argument("--quiet", action="store_true", help="no per-iteration lines, no progress bar")
    p.add_argument("--sync-bn", action="store_true",
                   help="under torchrun: batch norm over the global mini-batch (default: each rank's share, as Darknet's GPUs)")
    p.add_argument("--dist-timeout", type=positive_float, default=600.0, metavar="SECONDS",
                   help="under torchrun: a rank waiting longer than this for the others stops the job (default 600)")
    p.add_argument("--alexeyab-cpu-build", action="store_true",
                   help="a cfg in AlexeyAB's dialect: train as its CPU build computes (the C goldens: .9/.1 batch norm "
                        "without bias gradients, [route]/[upsample] deltas never zeroed, deltas lost before a "
                        "convolution) instead of its GPU build, as its users train (cuDNN batch norm, every delta "
                        "zeroed; the default)")
    p.add_argument("--amp", action="store_true",
                   help="mixed precision: convolutions in float16 with dynamic loss scaling on CUDA (bfloat16 on the CPU), "
                   "batch norm, the loss and the SGD update in float32; meant for GPUs, not Darknet-exact (default off)")


def training_run(args: argparse.Namespace) -> TrainRun:
    """The TrainRun of parsed `train`/`classifier train` arguments."""
    return TrainRun(
        data=args.data, cfg=args.cfg, weights=args.weights, clear=args.clear, device=args.device,
        workers=args.workers, seed=args.seed, max_batches=args.max_batches, backup=args.backup,
        chart=args.chart, quiet=args.quiet, sync_bn=args.sync_bn, timeout=args.dist_timeout, amp=args.amp,
        training_build="cpu" if args.alexeyab_cpu_build else "gpu",
        calc_map=getattr(args, "calc_map", False), map_epochs=getattr(args, "map_epochs", MAP_EPOCHS),
    )
