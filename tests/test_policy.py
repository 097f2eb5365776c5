"""Darknet's get_current_rate / get_current_batch (src/network.c) at chosen batches.

The `steps` values at the train goldens' `seen` are the rates Darknet itself
printed (manifest `log`); the others are Darknet's formulas evaluated in C
float arithmetic by hand."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

from conftest import GOLDEN, MANIFEST
from pydarknet import Darknet
from pydarknet.cfg.net import NetOptions
from pydarknet.train.policy import current_batch, learning_rate


def options(**values) -> NetOptions:
    o = NetOptions(width=416, height=416, channels=3, learning_rate=0.001)
    for key, value in values.items():
        setattr(o, key, value)
    return o


def f32(x: float) -> float:
    return float(np.float32(x))


@pytest.mark.parametrize("case", MANIFEST["train"], ids=[c["name"] for c in MANIFEST["train"]])
def test_steps_rate_is_what_darknet_printed(case: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(GOLDEN / "train" / case["name"] / case["cfg"])
    for seen, rate in re.findall(r"seen (\d+) rate ([0-9.e-]+)", case["log"]):
        assert learning_rate(net.options, current_batch(int(seen), net.options)) == f32(float(rate))


def test_current_batch_counts_full_batches() -> None:
    o = options(batch=64, subdivisions=8)
    assert [current_batch(s, o) for s in (0, 63, 64, 640, 6399)] == [0, 0, 1, 10, 99]


def test_burn_in_then_policy() -> None:
    o = options(burn_in=1000, power=4.0, learning_rate=0.001)
    assert learning_rate(o, 0) == 0.0
    assert learning_rate(o, 500) == f32(0.001 * 0.5**4)
    assert learning_rate(o, 999) == f32(f32(0.001) * f32(999 / 1000) ** 4)
    assert learning_rate(o, 1000) == f32(0.001)


def test_constant_step_exp_poly() -> None:
    assert learning_rate(options(), 123456) == f32(0.001)
    step = options(policy="step", step=100, scale=0.5)
    assert [learning_rate(step, b) for b in (99, 100, 250)] == [f32(0.001), f32(0.0005), f32(0.001 * 0.25)]
    exp = options(policy="exp", gamma=0.99)
    assert learning_rate(exp, 10) == f32(f32(0.001) * f32(0.99) ** 10)
    poly = options(policy="poly", power=4.0, max_batches=1000)
    assert learning_rate(poly, 250) == f32(f32(0.001) * 0.75**4)
    assert learning_rate(poly, 1000) == 0.0


def test_steps_multiply_up_to_the_first_future_step() -> None:
    o = options(policy="steps", steps=[100, 200, 150], scales=[0.1, 0.1, 10.0])
    lr, a = np.float32(0.001), np.float32(0.1)
    # Darknet stops at the first steps[i] > batch_num, even if a later step is smaller
    assert [learning_rate(o, b) for b in (99, 100, 199, 200)] == [float(lr), float(lr * a), float(lr * a), float(lr * a * a * np.float32(10))]


def test_sigmoid_is_zero_before_step_because_of_size_t() -> None:
    o = options(policy="sigmoid", gamma=0.5, step=100)
    assert learning_rate(o, 0) == 0.0 and learning_rate(o, 99) == 0.0
    assert learning_rate(o, 100) == f32(0.001 / 2)
    assert learning_rate(o, 110) == f32(f32(0.001) / (1 + math.exp(0.5 * 10)))


def test_random_is_lr_times_uniform_to_the_power() -> None:
    o = options(policy="random", power=2.0)
    rates = [learning_rate(o, 5) for _ in range(200)]
    assert all(0.0 <= r <= f32(0.001) for r in rates) and len(set(rates)) > 100
