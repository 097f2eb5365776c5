"""Training-loop parity with AlexeyAB's train_detector (src/detector.c): `-map` on its schedule with
`NAME_best.weights`, AlexeyAB's checkpoint names for a cfg in its dialect, the log appended run after run,
and `--max-batches` below the cfg's scaling the schedule."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from conftest import DEMO_CFG, DEMO_WEIGHTS, set_options
from pydarknet import Darknet
from pydarknet.cfg.net import NetOptions
from pydarknet.cli import main
from pydarknet.data import DataFile
from pydarknet.train.calc_map import MapSchedule, TrainingMap
from pydarknet.train.checkpoints import AlexeyabCheckpoints, load_state
from pydarknet.train.log import LOG_FIELDS, history
from pydarknet.train.multiscale import FULL_SIZE_ITERATIONS, multiscale_size
from pydarknet.train.policy import learning_rate, scaled, shorten_schedule
from pydarknet.train.trainer import TrainRun, train_detector
from pydarknet.weights import read_weights_file
from tools import make_shapes
from training_data import alexeyab_stopped_and_resumed, make_cfg, make_dataset


def log_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def map_iterations(schedule: MapSchedule, start: int, stop: int) -> list[int]:
    """The iterations after which the loop measures the mAP, as train_loop drives the schedule."""
    measured = []
    for i in range(start + 1, stop + 1):
        if schedule.due(i):
            schedule.last = i
            measured.append(i)
    return measured


def test_map_schedule_is_alexeyabs_calc_map_rule():
    # 6 images, batch 2: 4 epochs are 12 iterations, below the floor of 100
    assert map_iterations(MapSchedule.for_run(6, 2, burn_in=2, max_batches=350, start=0), 0, 350) == [100, 200, 300, 350]
    # 4 epochs of 60 images in batches of 2: every 120 iterations, the first not before burn_in 130
    assert map_iterations(MapSchedule.for_run(60, 2, burn_in=130, max_batches=1000, start=0), 0, 400) == [130, 250, 370]
    # C integer division: 4 * 101 / 2 = 202
    assert MapSchedule.for_run(101, 2, 0, 1000, 0).interval == 202
    # a resumed run counts from where it resumes (iter_map = get_current_iteration(net) at the start)
    assert map_iterations(MapSchedule.for_run(6, 2, burn_in=2, max_batches=1000, start=150), 150, 400) == [250, 350]
    assert map_iterations(MapSchedule.for_run(6, 2, burn_in=2, max_batches=3, start=0), 0, 3) == [3]  # the last


def test_detector_train_map_cli_alexeyab_schedule_and_files(tmp_path, one_thread, capsys):
    """`pydarknet detector train DATA CFG -map -dont_show` on a cfg in AlexeyAB's dialect: the mAP lines after
    the iterations the rule gives, AlexeyAB's files, and the same final weights as a run without -map."""
    data = make_dataset(tmp_path / "ds", valid=True)
    cfg = make_cfg(tmp_path, max_batches=210, alexeyab=True)
    assert main(["detector", "train", str(data), str(cfg), "-map", "-dont_show", "--workers", "0"]) == 0
    captured = capsys.readouterr()
    assert "\r" not in captured.err  # no progress bar off a terminal: Darknet's own lines are the progress
    out = captured.out.splitlines()
    assert out[:4] == ["Training as AlexeyAB's GPU build computes (--alexeyab-cpu-build for its CPU build's numbers)",
                       "t",  # then src/detector.c's lines, its spelling and trailing space included
                       "Weights are saved after: 1000 iterations. Last weights (*_last.weight) are stored every 100 iterations. ",
                       "Learning Rate: 0.01, Momentum: 0.9, Decay: 0.0005"]
    saved = [Path(line[len("Saving weights to "):]) for line in captured.err.splitlines() if line.startswith("Saving weights to ")]
    assert {p.parent for p in saved} == {data.parent / "backup"} and saved[-1].name == "t_final.weights"
    assert [p.name for p in saved].count("t_best.weights") == out.count("New best mAP!") > 0  # each save announced

    # interval max(4 * 6 / 2, 100) = 100 from iteration 0, burn_in 2: after 100, 200, and the last, 210
    expected = [100, 200, 210]
    iteration, measured, next_at, best, best_at = 0, [], {}, -1.0, 0
    for number, line in enumerate(out):
        if match := re.match(r" (\d+): [\d.]+, [\d.]+ avg loss, [\d.]+ rate, [\d.]+ seconds, (\d+) images, (-?[\d.]+) hours left$",
                             line):  # AlexeyAB's progress line
            iteration = int(match[1])
            assert int(match[2]) == 2 * iteration and (float(match[3]) == -1) == (iteration == 1)
        elif match := re.match(r"\(next mAP calculation at (\d+) iterations\)$", line):
            next_at[iteration + 1] = int(match[1])  # printed before the progress line of iteration + 1
        elif line.startswith("mean_average_precision (mAP@0.50) = "):
            measured.append(iteration)
            value = float(line.split("= ")[1])
            assert (out[number + 1] == "New best mAP!") == (value >= best)  # >= the best (-1 at first)
            best, best_at = (value, iteration) if value >= best else (best, best_at)
    assert measured == expected
    loaded = [line for line in out if line.startswith("Loaded: ")]  # AlexeyAB's wait for each batch, before its step
    assert len(loaded) == 210 and all(re.fullmatch(r"Loaded: \d+\.\d{6} seconds( - performance bottleneck on CPU or "
                                                   r"Disk HDD/SSD)?", line) for line in loaded)
    assert out.index(loaded[0]) < out.index(next(line for line in out if line.startswith(" 1: ")))
    assert {i: next_at[i] for i in (1, 100, 101, 200, 201, 210)} == {1: 100, 100: 100, 101: 200, 200: 200, 201: 300, 210: 300}
    rows = log_rows(data.parent / "backup" / "t_log.csv")
    assert [int(r["iteration"]) for r in rows if r["map"]] == expected
    assert len(rows) == 210 and len({r["run"] for r in rows}) == 1

    backup = data.parent / "backup"
    assert sorted(p.name for p in backup.iterdir() if not p.name.startswith(".")) == [
        "t_best.weights", "t_final.weights", "t_last.weights", "t_log.csv"]  # no t.backup, no t_1000.weights yet
    assert read_weights_file(backup / "t_best.weights")[0].seen == best_at * 2
    last = backup / "t_last.weights"  # AlexeyAB's every 100 iterations, carrying the resume state
    assert read_weights_file(last)[0].seen == 200 * 2 and load_state(last, 200 * 2)["seen"] == 200 * 2

    without = train_detector(TrainRun(data=data, cfg=cfg, workers=0, quiet=True, backup=tmp_path / "without"))
    assert without.read_bytes() == (backup / "t_final.weights").read_bytes()


def test_training_map_is_the_map_commands(tmp_path, one_thread, capsys):
    """The mAP `train --map` prints (TrainingMap.measure) is `pydarknet map`'s: AlexeyAB's validate_detector_map
    for a network in its dialect (the demo model set to it, on shapes it never trained on), measured at the
    cfg's size whatever multi-scale size the network is at, and the network left as it was."""
    data = make_shapes.make_detection_set(tmp_path / "s", seed=0, n_train=2, n_valid=12)
    cfg = tmp_path / "demo.cfg"
    cfg.write_text(set_options(DEMO_CFG.read_text(), width=320, height=320))
    assert main(["map", str(data), str(cfg), str(DEMO_WEIGHTS), "--dialect", "alexeyab", "--json"]) == 0
    report = capsys.readouterr().out
    assert '"method": "AlexeyAB\'s detector map"' in report
    expected = float(re.search(r'"0": ([\d.]+)', report)[1])

    net = Darknet(cfg)
    net.load_weights(DEMO_WEIGHTS)
    net.set_dialect("alexeyab")
    calc = TrainingMap(net, DataFile.read(data), MapSchedule.for_run(2, 2, 0, 1, 0), classes=6, quiet=True)
    net.train().resize(416, 416)  # a multi-scale size
    assert expected > 0.5 and calc.measure(net) == pytest.approx(expected, abs=1e-6)
    assert (net.width, net.height) == (416, 416) and net.training


def test_training_map_lines(tmp_path):
    data = make_dataset(tmp_path / "ds", valid=True)
    calc = TrainingMap(Darknet(make_cfg(tmp_path)), DataFile.read(data), MapSchedule.for_run(6, 2, 2, 4, 0), classes=2)
    assert calc.status() == ["(next mAP calculation at 100 iterations)"]
    assert calc.record(0.25) == (True, ["mean_average_precision (mAP@0.50) = 0.250000", "New best mAP!"])
    assert calc.record(0.125) == (False, ["mean_average_precision (mAP@0.50) = 0.125000"])
    assert calc.status()[1] == "Last accuracy mAP@0.50 = 12.50 %, best = 25.00 %"


def test_alexeyab_checkpoint_schedule():
    names = AlexeyabCheckpoints("y", start=0, max_batches=6000)
    assert [(i, names(i, 0)) for i in (1, 99, 100, 150, 1000, 2000) if names(i, 0)] == [
        (100, ["y_last.weights"]), (1000, ["y_1000.weights", "y_last.weights"]), (2000, ["y_2000.weights", "y_last.weights"])]
    assert AlexeyabCheckpoints("y", 0, max_batches=10000).save_every == 10000  # (net.max_batches < 10000) ? 1000 : 10000
    assert AlexeyabCheckpoints("y", 0, 6000, saveweights=100)(100, 0) == ["y_100.weights"]  # no _last: 100 > 100 is false
    resumed = AlexeyabCheckpoints("y", start=150, max_batches=6000, savelast=200)
    assert [i for i in range(151, 700) if resumed(i, 0)] == [200, 400, 600]


def test_alexeyab_ctrl_c_saves_last_weights_that_resume_the_same_run(tmp_path, one_thread, monkeypatch):
    data, cfg = make_dataset(tmp_path / "ds"), make_cfg(tmp_path, alexeyab=True)
    straight, resumed = alexeyab_stopped_and_resumed(tmp_path, data, cfg, monkeypatch)
    assert resumed.read_bytes() == straight.read_bytes()


def test_the_log_is_appended_run_after_run(tmp_path, one_thread, capsys):
    data, cfg = make_dataset(tmp_path / "ds", valid=True), make_cfg(tmp_path)  # pjreddie's dialect
    log = data.parent / "backup" / "t_log.csv"
    log.parent.mkdir()
    log.write_text("iteration,loss,avg_loss,rate,seconds,images\n1,2.0,2.0,0.001,0.1,2\n")  # an older pydarknet's
    run = ["train", str(data), str(cfg), "--max-batches", "2", "--map", "--workers", "0", "--quiet", "--chart", str(tmp_path / "chart.png")]
    assert main(run) == 0
    with open(log, "a") as f:
        f.write(f"{log_rows(log)[0]['run']},3,1.0")  # a row cut short by a kill
    assert main(run) == 0
    out, err = capsys.readouterr()
    assert out.count("--max-batches 2 is below the cfg's max_batches=4: its schedule is scaled by 2/4: "
                     "burn_in 2 -> 1, steps 50 -> 25\n") == 2
    assert "not a log of this pydarknet's columns; kept as t_log." in err
    (old,) = [p for p in log.parent.iterdir() if p.name.startswith("t_log.") and p != log]
    assert old.read_text().startswith("iteration,loss")  # moved aside, not overwritten
    rows = log_rows(log)
    assert list(rows[0]) == LOG_FIELDS and log.read_text().count("run,iteration") == 1
    runs = list(dict.fromkeys(r["run"] for r in rows))
    assert len(runs) == 2 and [(runs.index(r["run"]), r["iteration"], bool(r["map"])) for r in rows] == [
        (0, "1", False), (0, "2", True), (0, "3", False), (1, "1", False), (1, "2", True)]
    assert rows[2]["loss"] == "1.0" and rows[2]["map"] is None  # the cut row stays apart
    assert [r["run"] for r in history(log)] == [runs[1]] * 2  # the chart's: the latest run
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"
    assert (data.parent / "backup" / "t_best.weights").is_file() and not (data.parent / "backup" / "t_last.weights").exists()


def test_max_batches_below_the_cfgs_scales_the_schedule():
    cfg = NetOptions(width=416, height=416, channels=3, learning_rate=0.001, policy="steps", burn_in=1000,
                     steps=[32000, 36000], scales=[0.1, 0.1], max_batches=40200)
    short = NetOptions(**vars(cfg))
    short.steps = list(cfg.steps)
    assert shorten_schedule(short, 402) == ["burn_in 1000 -> 10", "steps 32000,36000 -> 320,360"]
    assert (short.burn_in, short.steps, short.max_batches) == (10, [320, 360], 402)
    for i in (1, 5, 10, 319, 320, 359, 360, 402):  # the same rates, 100 times sooner
        assert learning_rate(short, i) == learning_rate(cfg, i * 100)
    poly = NetOptions(width=1, height=1, channels=1, policy="poly", power=4, max_batches=1000)
    assert shorten_schedule(poly, 10) == ["poly's max_batches 1000 -> 10"] and learning_rate(poly, 5) == learning_rate(
        NetOptions(width=1, height=1, channels=1, policy="poly", power=4, max_batches=1000), 500)
    step = NetOptions(width=1, height=1, channels=1, policy="step", step=100, max_batches=1000)
    assert shorten_schedule(step, 5) == ["step 100 -> 1"]  # at least 1: get_current_rate divides by it
    unchanged = NetOptions(**vars(cfg))
    assert shorten_schedule(unchanged, 40200) == [] and shorten_schedule(unchanged, 50000) == []
    assert vars(unchanged) == vars(cfg)  # Darknet's schedule, exactly, when the run is not shorter
    # Darknet's `get_current_batch(net) + 200 > max_batches` as it draws (the last 190 batches at 608x608), in
    # proportion: 2 batches, less than a period (drawn at 400: 400 + 2 > 402 is false, no 608); 20 of 4020: from 4010
    window = scaled(FULL_SIZE_ITERATIONS, 402, 40200)
    assert window == 2 and multiscale_size(401, 402, 0, (416, 416), True, window) == multiscale_size(401, 10**6, 0, (416, 416), True)
    assert [multiscale_size(b, 4020, 0, (416, 416), True, 20) == (608, 608) for b in (4009, 4010, 4019)] == [False, True, True]
    assert all(multiscale_size(b, 402, 7, (416, 416), True, window) == multiscale_size(b, 10**6, 7, (416, 416), True)
               for b in range(390, 401))  # before it, the drawn sizes
