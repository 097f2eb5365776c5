"""AlexeyAB's get_current_rate (src/network.c) and its [net] parsing (src/parser.c parse_net_options) against its
C: tests/golden-alexeyab-extra/learning-rate/rates.json (tools/goldens/alexeyab_net_train: `net_train rate`, the
rate at *net.seen = iteration * batch), every policy but `random` (C's rand()): burn_in with power, steps,
step, exp, poly, sigmoid (before `step` too: an int in AlexeyAB's), constant, and sgdr (sgdr_cycle, sgdr_mult,
learning_rate_min, their defaults, cycle boundaries).  Within 2 float32 ulps of the rate (Darknet's -Ofast;
its subnormals are 0)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from pydarknet import Darknet
from pydarknet.errors import DarknetError
from pydarknet.train.options import check_training_cfg
from pydarknet.train.policy import current_batch, learning_rate, shorten_schedule

GOLDEN = ROOT / "tests" / "golden-alexeyab-extra" / "learning-rate" / "rates.json"
CASES = json.loads(GOLDEN.read_text())["cases"]


def build(tmp_path: Path, cfg: str) -> Darknet:
    path = tmp_path / "rate.cfg"
    path.write_text(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the training keys pydarknet reads in training only
        return Darknet(path, dialect="alexeyab")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_rate_matches_alexeyab(tmp_path: Path, case: dict) -> None:
    net = build(tmp_path, case["cfg"])
    opt = net.options
    for iteration, rate in case["rates"]:
        ours = learning_rate(opt, current_batch(iteration * opt.mini_batch * opt.subdivisions, opt), "alexeyab")
        gold = np.float32(rate)
        # -Ofast flushes subnormal floats to 0: sigmoid's 5.5e-43 at 1000 is 0 there
        bound = max(2 * np.spacing(gold), np.finfo(np.float32).tiny)
        assert abs(np.float32(ours) - gold) <= bound, f"{case['name']} iteration {iteration}: {ours} {rate}"


def test_sigmoid_before_step_differs_from_pjreddie(tmp_path: Path) -> None:
    """pjreddie's size_t batch_num - step wraps to ~1.8e19 before `step` (rate 0); AlexeyAB's int does not."""
    case = next(c for c in CASES if c["name"] == "sigmoid_before_step")
    opt = build(tmp_path, case["cfg"]).options
    assert learning_rate(opt, 10, "pjreddie") == 0.0
    assert learning_rate(opt, 10, "alexeyab") == pytest.approx(0.1 / (1 + np.exp(-4)), rel=1e-6)


def test_sgdr_is_trained_and_its_bad_cycles_refused(tmp_path: Path) -> None:
    cfg = next(c for c in CASES if c["name"] == "sgdr_cycle20_mult2")["cfg"]
    path = tmp_path / "sgdr.cfg"
    path.write_text(cfg)
    check_training_cfg(path)  # AlexeyAB's dialect (policy=sgdr): implemented
    for text in (cfg.replace("sgdr_cycle=20", "sgdr_cycle=0"), cfg.replace("sgdr_mult=2", "sgdr_mult=0"),
                 cfg.replace("sgdr_cycle=20\n", "").replace("max_batches=400\n", "")):  # the cycle defaults to max_batches=0
        path.write_text(text)
        build(tmp_path, text)  # inference does not use the schedule
        with pytest.raises(DarknetError, match=r"sgdr.cfg:1: \[net\] policy=sgdr with sgdr_cycle=(0 sgdr_mult=2|20 sgdr_mult=0): AlexeyAB"):
            check_training_cfg(path)


def test_short_run_scales_the_sgdr_cycle(tmp_path: Path) -> None:
    opt = build(tmp_path, next(c for c in CASES if c["name"] == "sgdr_cycle20_mult2")["cfg"]).options
    assert "sgdr_cycle 20 -> 5" in shorten_schedule(opt, 100) and opt.sgdr_cycle == 5
