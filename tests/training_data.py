"""A tiny detection data set, its cfg, and a real signal mid-training: what the training tests share."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest

import pydarknet.train.trainer as trainer

CFG = Path(__file__).resolve().parent.parent / "cfg"


def make_dataset(root: Path, images: int = 6, valid: bool = False) -> Path:
    """Coloured rectangles on grey, labelled in Darknet's format; returns the .data file.

    Each label file is in labels/ (where pjreddie's Darknet reads it) and beside its image (AlexeyAB's
    training and map read it there).  `valid`: also `valid=` the same images (for `train --map`)."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(images):
        im = np.full((96, 128, 3), 40, np.uint8)
        lines = []
        for _ in range(2):
            w, h = (int(v) for v in rng.integers(20, 50, 2))
            x, y = int(rng.integers(0, 128 - w)), int(rng.integers(0, 96 - h))
            c = int(rng.integers(0, 2))
            cv2.rectangle(im, (x, y), (x + w, y + h), (0, 255, 0) if c else (0, 0, 255), -1)
            lines.append(f"{c} {(x + w / 2) / 128:.6f} {(y + h / 2) / 96:.6f} {w / 128:.6f} {h / 96:.6f}")
        path = root / "images" / f"{i}.png"
        cv2.imwrite(str(path), im)
        (root / "labels" / f"{i}.txt").write_text("\n".join(lines) + "\n")
        (root / "images" / f"{i}.txt").write_text("\n".join(lines) + "\n")
        paths.append(str(path))
    (root / "train.txt").write_text("\n".join(paths) + "\n")
    (root / "t.names").write_text("red\ngreen\n")
    data = root / "t.data"
    data.write_text(f"classes=2\ntrain={root}/train.txt\nbackup={root}/backup\nnames={root}/t.names\n"
                    + (f"valid={root}/train.txt\n" if valid else ""))
    return data


def make_cfg(root: Path, random: int = 0, max_batches: int = 4, alexeyab: bool = False) -> Path:
    """yolov2-tiny-slim for 2 classes at 64x64, batch 2 in 2 subdivisions.

    `alexeyab`: in AlexeyAB's dialect, by `[net] mosaic=0` (its key, at the value with which it trains as
    pjreddie's does), with a [yolo] head of 3 anchors in place of the [region] (which AlexeyAB's dialect
    does not train)."""
    text = (CFG / "yolov2-tiny-slim.cfg").read_text()
    if alexeyab:
        text = text[: text.index("[region]")] + (
            f"[yolo]\nmask=0,1,2\nanchors=10,14, 23,27, 37,58\nclasses=20\nnum=3\njitter=.2\nrandom={random}\n")
    filters = "21" if alexeyab else "35"
    for old, new in (("classes=20", "classes=2"), ("filters=125", f"filters={filters}"), ("random=1", f"random={random}")):
        text = text.replace(old, new)
    lines = []
    for line in text.splitlines():
        key = line.split("=")[0].strip()
        values = {"batch": "2", "subdivisions": "2", "width": "64", "height": "64", "max_batches": str(max_batches), "burn_in": "2"}
        lines.append(f"{key}={values[key]}" if key in values and not line.startswith("#") else line)
    if alexeyab:
        lines.insert(lines.index("[net]") + 1, "mosaic=0")
    cfg = root / "t.cfg"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def interrupt_after(monkeypatch, calls: int, signum: int = signal.SIGINT) -> None:
    """Deliver a real signal (Ctrl-C's SIGINT by default) to ourselves during the trainer's training step number `calls`."""
    real = trainer.train_network
    count = {"n": 0}

    def step(net, state, x, truth, log=None):  # type: ignore[no-untyped-def]
        loss = real(net, state, x, truth, log)
        count["n"] += 1
        if count["n"] == calls:
            os.kill(os.getpid(), signum)
        return loss

    monkeypatch.setattr(trainer, "train_network", step)


def alexeyab_stopped_and_resumed(root: Path, data: Path, cfg: Path, monkeypatch) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """A 6-iteration run of an AlexeyAB-dialect cfg straight (into root/a), and one stopped by Ctrl-C at
    iteration 3 then resumed from the NAME_last.weights it saved (root/b): their final weights' paths."""
    run = dict(data=data, cfg=cfg, workers=0, quiet=True, max_batches=6)
    straight = trainer.train_detector(trainer.TrainRun(**run, backup=root / "a"))
    with monkeypatch.context() as m:
        interrupt_after(m, 3)
        with pytest.raises(KeyboardInterrupt, match="t_last.weights at iteration 3"):
            trainer.train_detector(trainer.TrainRun(**run, backup=root / "b"))
    resumed = trainer.train_detector(trainer.TrainRun(**run, weights=root / "b" / "t_last.weights", backup=root / "b"))
    return straight, resumed

