"""Darknet's learning-rate schedule (src/network.c: get_current_batch, get_current_rate).

The batch number is `seen / (mini_batch * subdivisions)` (integer, `size_t`).
Below `burn_in` the rate is `lr * (batch_num / burn_in) ** power`; after it
the cfg's `policy` decides.  Darknet computes the rate in float32 and so do
these functions (the value returned is a float32 rounded to a Python float).

AlexeyAB's get_current_rate (59596d7) is pjreddie's with an `int` batch_num
(policy=sigmoid before `step` is then a rising sigmoid, not pjreddie's
size_t wrap to 0) and policy=sgdr: cosine annealing from learning_rate to
learning_rate_min over cycles of sgdr_cycle iterations, each sgdr_mult
times the previous, counted from 0 (burn_in only replaces the first ones).

`shorten_schedule` is pydarknet's, for `--max-batches` below the cfg's
`max_batches` (a short run): the schedule squeezed into the run.
"""

from __future__ import annotations

import math
import random

import numpy as np

from pydarknet.cfg.net import NetOptions
from pydarknet.errors import DarknetError

SIZE_T = 2**64


def current_batch(seen: int, options: NetOptions) -> int:
    """Darknet's get_current_batch: iterations done, counted from images seen."""
    return seen // (options.mini_batch * options.subdivisions)


def learning_rate(options: NetOptions, batch_num: int, dialect: str = "pjreddie") -> float:
    """Darknet's get_current_rate at iteration `batch_num`, as `dialect`'s Darknet computes it."""
    lr = np.float32(options.learning_rate)
    base = float(lr)  # Darknet: float lr times a double pow(), rounded to float on return
    if batch_num < options.burn_in:
        return float(np.float32(base * math.pow(_f32(np.float32(batch_num) / options.burn_in), _f32(options.power))))
    policy = options.policy
    if policy == "step":
        return float(np.float32(base * math.pow(_f32(options.scale), batch_num // options.step)))
    if policy == "steps":
        rate = lr
        for step, scale in zip(options.steps, options.scales):
            if step > batch_num:
                break
            rate = np.float32(rate * np.float32(scale))
        return float(rate)
    if policy == "exp":
        return float(np.float32(base * math.pow(_f32(options.gamma), batch_num)))
    if policy == "poly":
        return float(np.float32(base * math.pow(_f32(1 - np.float32(batch_num) / options.max_batches), _f32(options.power))))
    if policy == "random":
        return float(np.float32(base * math.pow(random.random(), _f32(options.power))))
    if policy == "sigmoid":
        # pjreddie's: batch_num - step is size_t arithmetic, so before `step` it wraps to ~1.8e19
        # and (for gamma > 0) the rate is 0, not a rising sigmoid; AlexeyAB's batch_num is an int.
        offset = batch_num - options.step if dialect == "alexeyab" else (batch_num - options.step) % SIZE_T
        exponent = float(np.float32(options.gamma) * np.float32(offset))
        return float(np.float32(base * (1.0 / (1.0 + _exp(exponent)))))
    if policy == "sgdr":
        return _sgdr(options, batch_num)
    if policy == "constant":
        return float(lr)
    raise DarknetError(f"policy={policy}: a learning-rate policy pydarknet train does not implement")


def schedule_problem(options: NetOptions) -> str | None:
    """Why Darknet could not run this schedule, or None: policy=sgdr with a cycle or a multiplier under 1
    (AlexeyAB's get_current_rate then loops forever past the first cycle)."""
    if options.policy == "sgdr" and (options.sgdr_cycle < 1 or options.sgdr_mult < 1):
        return (f"policy=sgdr with sgdr_cycle={options.sgdr_cycle} sgdr_mult={options.sgdr_mult}: AlexeyAB's "
                "get_current_rate never returns past the first cycle (it needs sgdr_cycle >= 1, which defaults to "
                "max_batches, and sgdr_mult >= 1)")
    return None


def _sgdr(options: NetOptions, batch_num: int) -> float:
    """AlexeyAB src/network.c get_current_rate, case SGDR: the cycle holding batch_num (a cycle ends on its
    last iteration inclusive: `while ((last_iteration_start + cycle_size) < batch_num)`), then
    lr_min + 0.5 (lr - lr_min) (1 + cos((float)(batch_num - start) * 3.14159265 / cycle_size)): lr - lr_min
    in float, the rest in double, rounded to float."""
    start, cycle = 0, options.sgdr_cycle
    while start + cycle < batch_num:
        start += cycle
        cycle *= options.sgdr_mult
    low = np.float32(options.learning_rate_min)
    span = float(np.float32(options.learning_rate) - low)
    angle = float(np.float32(batch_num - start)) * 3.14159265 / cycle
    return float(np.float32(float(low) + 0.5 * span * (1.0 + math.cos(angle))))


def scaled(iterations: int, max_batches: int, cfg_max_batches: int) -> int:
    """An iteration count of the cfg's schedule in a run of `max_batches` instead of `cfg_max_batches`
    (rounded down); unchanged when the run is not shorter."""
    return iterations * max_batches // cfg_max_batches if max_batches < cfg_max_batches else iterations


def shorten_schedule(options: NetOptions, max_batches: int) -> list[str]:
    """Scale the schedule's iteration counts by `max_batches / options.max_batches`, in place, for a run
    shorter than the cfg's: `burn_in`, `steps` (policy=steps), `step` (step: at least 1; sigmoid), `sgdr_cycle`
    (sgdr: at least 1) and `max_batches` itself (poly's end); returns what changed (`"burn_in 1000 -> 6"`, ...),
    nothing for a run that is
    not shorter (Darknet's schedule, exactly as the cfg gives it)."""
    cfg_max = options.max_batches
    if max_batches >= cfg_max:
        return []
    changes = []

    def scale(name: str, values: list[int], least: int = 0) -> list[int]:
        new = [max(least, scaled(v, max_batches, cfg_max)) for v in values]
        if new != values:
            changes.append(f"{name} {','.join(map(str, values))} -> {','.join(map(str, new))}")
        return new

    options.burn_in = scale("burn_in", [options.burn_in])[0]
    if options.policy == "steps":
        options.steps = scale("steps", options.steps)
    if options.policy in ("step", "sigmoid"):
        options.step = scale("step", [options.step], least=int(options.policy == "step"))[0]  # step divides
    if options.policy == "sgdr":
        options.sgdr_cycle = scale("sgdr_cycle", [options.sgdr_cycle], least=1)[0]
    if options.policy == "poly":
        changes.append(f"poly's max_batches {cfg_max} -> {max_batches}")
    options.max_batches = max_batches
    return changes


def _f32(x: float) -> float:
    """A value as Darknet holds it: a C float."""
    return float(np.float32(x))


def _exp(x: float) -> float:
    """C's exp: inf on overflow instead of Python's OverflowError."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf
