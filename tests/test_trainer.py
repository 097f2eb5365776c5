"""The training loop: Darknet's multi-scale and checkpoint schedules, atomic
saves under a real kill, Ctrl-C, and resuming into the very same run."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from conftest import CFG, ROOT, run_cli
from pydarknet import Darknet
from pydarknet.train.checkpoints import scheduled_names
from pydarknet.train.log import history
from pydarknet.train.multiscale import multiscale_size
from pydarknet.train.trainer import TrainRun, train_detector
from pydarknet.weights import read_weights_file
from training_data import interrupt_after, make_cfg, make_dataset


def test_multiscale_sizes_period_and_last_200():
    sizes = [multiscale_size(b, 10000, seed=3, cfg_size=(416, 416), random=True) for b in range(2000)]
    assert {w for w, _ in sizes} <= {320 + 32 * k for k in range(10)}
    assert all(w == h for w, h in sizes)
    assert len({w for w, _ in sizes}) == 10  # every Darknet size shows up
    for period in range(200):  # a new size only every 10 batches
        assert len(set(sizes[period * 10 : period * 10 + 10])) == 1
    # Darknet: get_current_batch(net) + 200 > max_batches as it draws, the batches done before the period's first
    assert sizes[:2000] == [multiscale_size(b, 10000, 3, (416, 416), True) for b in range(2000)]
    assert [multiscale_size(b, 10000, 3, (416, 416), True) for b in range(9790, 9810)].count((608, 608)) < 20
    assert all(multiscale_size(b, 10000, 3, (416, 416), True) == (608, 608) for b in range(9810, 10000))
    at_1005 = [multiscale_size(b, 1005, 3, (416, 416), True) for b in (800, 806, 809, 810)]  # drawn at 800: 1000 > 1005?
    assert at_1005[0] == at_1005[1] == at_1005[2] != (608, 608) and at_1005[3] == (608, 608)
    assert multiscale_size(5, 10000, 3, (416, 320), False) == (416, 320)


def test_checkpoint_schedule_is_darknets():
    assert scheduled_names("yolo", 100) == ["yolo.backup", "yolo_100.weights"]
    assert scheduled_names("yolo", 900) == ["yolo.backup", "yolo_900.weights"]
    assert scheduled_names("yolo", 1100) == ["yolo.backup"]
    assert scheduled_names("yolo", 20000) == ["yolo.backup", "yolo_20000.weights"]
    assert scheduled_names("yolo", 150) == []


@pytest.fixture
def dataset(tmp_path):
    return make_dataset(tmp_path / "ds"), make_cfg(tmp_path)


def test_trains_logs_and_saves_final(dataset, tmp_path):
    data, cfg = dataset
    final = train_detector(TrainRun(data=data, cfg=cfg, workers=0, quiet=True, chart=tmp_path / "chart.png"))
    assert final.name == "t_final.weights"
    header, _ = read_weights_file(final)
    assert header.seen == 4 * 2
    log = (final.parent / "t_log.csv").read_text().splitlines()
    assert log[0] == "run,iteration,loss,avg_loss,rate,seconds,images,map" and len(log) == 5
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"


def test_prints_darknets_lines_around_a_step(tmp_path, capsys):
    """pjreddie's train_detector with random=1 (examples/detector.c): the cfg's name and its learning rate,
    momentum and decay; at each iteration `Resizing` and the side as it draws one, `Loaded: S seconds` once the
    batch is there, then the iteration's line; `Saving weights to PATH` (stderr) as it saves."""
    data, cfg = make_dataset(tmp_path / "ds"), make_cfg(tmp_path, random=1, max_batches=2)
    cfg.write_text(cfg.read_text().replace("decay=", "decay=0.00005\n#"))
    final = train_detector(TrainRun(data=data, cfg=cfg, workers=0))
    printed = capsys.readouterr()
    out = [line for line in printed.out.splitlines() if not line.startswith("Region")]
    assert out[:4] == ["t", "Learning Rate: 0.01, Momentum: 0.9, Decay: 5e-05", "Resizing", "608"]  # 608: the last 200
    assert re.fullmatch(r"Loaded: \d+\.\d{6} seconds", out[4]) and out[5].startswith("1: ")
    assert re.fullmatch(r"Loaded: \d+\.\d{6} seconds", out[6]) and out[7].startswith("2: ")
    assert printed.err.splitlines() == [f"Saving weights to {final}"]


def test_ctrl_c_saves_a_backup_and_resume_is_the_same_run(dataset, tmp_path, monkeypatch):
    data, cfg = dataset
    straight = train_detector(TrainRun(data=data, cfg=cfg, workers=0, quiet=True, backup=tmp_path / "a", max_batches=6))

    with monkeypatch.context() as m:
        interrupt_after(m, 3)
        with pytest.raises(KeyboardInterrupt):
            train_detector(TrainRun(data=data, cfg=cfg, workers=0, quiet=True, backup=tmp_path / "b", max_batches=6))
    backup = tmp_path / "b" / "t.backup"
    assert read_weights_file(backup)[0].seen == 3 * 2
    log = tmp_path / "b" / "t_log.csv"
    first = log.read_text().splitlines()[1].split(",")[0]
    with open(log, "a") as f:  # as if the run had gone on past its last backup
        f.write(f"{first},4,1.0,1.0,0.001,0.1,8,\n{first},5,1.0,1.0,0.001,0.1,10,\n")
    resumed = train_detector(TrainRun(data=data, cfg=cfg, weights=backup, workers=0, quiet=True, backup=tmp_path / "b", max_batches=6))
    assert resumed.read_bytes() == straight.read_bytes()
    rows = [row.split(",")[:2] for row in log.read_text().splitlines()[1:]]  # appended: both runs' rows kept
    second = rows[-1][0]
    assert second != first and rows == [[first, str(i)] for i in range(1, 6)] + [[second, str(i)] for i in range(4, 7)]
    # the chart's rows: the resumed run's from where it resumed, the first run's before
    assert [(row["run"], row["iteration"]) for row in history(log)] == [(first, "1"), (first, "2"), (first, "3")] + [
        (second, str(i)) for i in range(4, 7)]


def test_clear_restarts_seen(dataset, tmp_path):
    data, cfg = dataset
    first = train_detector(TrainRun(data=data, cfg=cfg, workers=0, quiet=True, max_batches=2))
    again = train_detector(TrainRun(data=data, cfg=cfg, weights=first, clear=True, workers=0, quiet=True, max_batches=1))
    assert read_weights_file(again)[0].seen == 2


SAVER = """
import sys, warnings
sys.path.insert(0, {root!r})
from pydarknet import Darknet
warnings.simplefilter("ignore")
net = Darknet({cfg!r})
while True:
    net.seen += 1
    net.save_weights({target!r})
    if net.seen == 1:
        print("ready", flush=True)  # a whole file exists: a kill from now on may land anywhere
"""


def test_a_kill_during_save_leaves_the_previous_file_intact(tmp_path):
    target = tmp_path / "net.weights"
    cfg = str(CFG / "yolov2-slim.cfg")
    code = SAVER.format(root=str(ROOT), cfg=cfg, target=str(target))
    for delay in (0.3, 0.55, 0.8):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.kill()
        proc.wait()
        net = Darknet(cfg)
        net.load_weights(target)  # complete and well-formed, whatever moment the kill hit
        assert net.seen >= 1


def test_cli_train_bad_inputs_are_one_line(dataset, tmp_path):
    data, cfg = dataset
    for args, words in (
        (("train", tmp_path / "nope.data", cfg), "nope.data"),
        (("train", data, tmp_path / "nope.cfg"), "nope.cfg"),
        (("train", data, CFG / "yolov2-tiny-slim.cfg"), "classes=2"),
    ):
        out = run_cli(*args, "--workers", "0", "--quiet")
        assert out.returncode == 1, out.stderr
        assert out.stderr.startswith("pydarknet: ") and words in out.stderr and out.stderr.count("\n") == 1, out.stderr
