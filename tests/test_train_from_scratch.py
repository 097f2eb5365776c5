"""The shipped shapes cfg trained from scratch (random init, no pretrained backbone) on a
small generated set: the loss falls and the held-out mAP rises above a floor.

A scaled-down run of weights/README.md's recipe so that it fits CI (about 1.5 minutes on one
core): 300 training images, 160x160 input with random=0 (random=1 would train at 320..608),
batch 8, 600 iterations.  Measured on this machine: mAP@0.5 (11-point) about 0.05 at
iteration 600 against 0.00 for the untrained start; the floor below leaves a margin for
other platforms' float rounding."""

from __future__ import annotations

import json

import pytest

from conftest import CFG, set_options
from pydarknet.cli import main
from pydarknet.train.trainer import TrainRun, train_detector
from tools.make_shapes import make_detection_set

MAP_FLOOR = 0.02
ITERATIONS = 600


def mean_ap(data, cfg, weights, capsys) -> float:
    """`pydarknet detector map --json` in this process (and its one torch thread): the 11-point mAP."""
    assert main(["detector", "map", str(data), str(cfg), str(weights), "--json", "--no-compile"]) == 0
    return json.loads(capsys.readouterr().out)["map"]["11"]


@pytest.mark.slow
def test_loss_falls_and_map_rises(tmp_path, one_thread, capsys):
    data = make_detection_set(tmp_path / "set", seed=1, n_train=300, n_valid=60, size_range=(96, 192))
    cfg = tmp_path / "shapes-160.cfg"
    cfg.write_text(set_options((CFG / "yolov2-tiny-shapes.cfg").read_text(), batch=8, width=160, height=160,
                               burn_in=50, max_batches=ITERATIONS, steps="450,540", random=0))
    backup = tmp_path / "backup"
    final = train_detector(TrainRun(data=data, cfg=cfg, workers=0, quiet=True, backup=backup))

    rows = [line.split(",") for line in (backup / "shapes-160_log.csv").read_text().splitlines()[1:]]
    losses = [float(row[2]) for row in rows]
    assert len(losses) == ITERATIONS
    first, last = sum(losses[:10]) / 10, sum(losses[-50:]) / 50
    assert last < first / 4, (first, last)

    capsys.readouterr()  # the trainer's own output
    early = mean_ap(data, cfg, backup / "shapes-160_100.weights", capsys)
    trained = mean_ap(data, cfg, final, capsys)
    print(f"loss {first:.1f} -> {last:.1f}; mAP@0.5 {early:.4f} at iteration 100, {trained:.4f} at {ITERATIONS}")
    assert trained > early
    assert trained >= MAP_FLOOR
