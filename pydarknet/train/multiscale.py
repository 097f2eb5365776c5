"""Darknet's multi-scale training schedule (`random` in the last layer).

pjreddie's examples/detector.c:train_detector: every 10 iterations a new
square size `(rand() % 10 + 10) * 32`, i.e. 320..608, and 608 once the
batch at which it draws is within 200 of `max_batches` (not before: the
test is made as it draws); `random=0` keeps the cfg size.

AlexeyAB's src/detector.c:train_detector (59596d7) scales the cfg's own size
every 10 iterations by a draw `rand_scale(coef)` (coef = 1.4 for random=1,
else the value of `random`: a float), rounded to `[net] resize_step`
(`alexeyab_size`: the C's lines, its rounding and its quirks), and uses the
largest size, coef times the cfg's, for the first 10 iterations and once the
iteration is past `max_batches - 100`.  The draw (`rand_scale`) is separate
from the rule.

(A run shortened by `--max-batches` has the last window shortened in
proportion, pydarknet.train.policy.scaled.)  Darknet counts the 10
iterations from the start of the process and draws from C's rand(); here the
draw for batch `b` comes from a generator seeded by (seed, b // 10), so a
run resumed at any batch continues with exactly the sizes the uninterrupted
run would have used (AlexeyAB's would start again with 10 iterations at the
largest size), and every process of a distributed run agrees without
communicating.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np

PERIOD = 10
FULL_SIZE_ITERATIONS = 200  # pjreddie's: the last iterations, all at 608x608
ALEXEYAB_LARGEST_ITERATIONS = 100  # AlexeyAB's: the last iterations at the largest size
ALEXEYAB_COEF = 1.4  # AlexeyAB's rand_coef for random=1


def multiscale_size(batch: int, max_batches: int, seed: int, cfg_size: tuple[int, int], random: bool,
                    full_size: int = FULL_SIZE_ITERATIONS) -> tuple[int, int]:
    """(width, height) of the images of training batch `batch` (0-based); 608x608 from the first period drawn
    within `full_size` of the end."""
    if not random:
        return cfg_size
    period = batch // PERIOD
    if period * PERIOD + full_size > max_batches:  # Darknet, as it draws: get_current_batch(net) + 200 > max_batches
        return (608, 608)
    draw = int(np.random.Generator(np.random.PCG64([seed, period])).integers(0, 10))
    dim = (draw + 10) * 32
    return (dim, dim)


def alexeyab_coef(random: float) -> np.float32:
    """train_detector's `float rand_coef = 1.4; if (l.random != 1.0) rand_coef = l.random;`."""
    return np.float32(ALEXEYAB_COEF if np.float32(random) == 1 else random)


def rand_scale(rng: np.random.Generator, coef: np.float32) -> np.float32:
    """AlexeyAB src/utils.c rand_scale: `rand_uniform_strong(1, s)` (float), its reciprocal half the time
    (`1./scale` in double, returned as float); drawn from `rng`, not C's rand()."""
    scale = np.float32(np.float32(rng.random()) * np.float32(coef - np.float32(1)) + np.float32(1))
    return scale if rng.integers(0, 2) else np.float32(1.0 / float(scale))


def alexeyab_size(random_val: np.float32, init: tuple[int, int], resize_step: float, random: float, iteration: int,
                  max_batches: int, first: bool, last: int = ALEXEYAB_LARGEST_ITERATIONS) -> tuple[int, int]:
    """(width, height) of AlexeyAB's train_detector after the draw `random_val` (src/detector.c, 59596d7, the
    lines after `if (l.random && count++ % 10 == 0)`), at iteration `iteration`; `first`: the process's first
    resize (`avg_loss < 0`); `last`: its 100 (`iteration > max_batches - 100`).

        dim = roundl(random_val*init / resize_step + 1) * resize_step    (float arithmetic, round half away, int)
        a draw under 1 that makes either side larger than the cfg's: the cfg's size
        first resize, or iteration > max_batches - last: roundl(coef*init / resize_step + 1) * resize_step
        at least resize_step
    """
    step = np.float32(resize_step)

    def rounded(factor: np.float32, side: int) -> int:
        x = np.float32(np.float32(np.float32(factor * np.float32(side)) / step) + np.float32(1))
        return int(math.copysign(math.floor(abs(float(x)) + 0.5), float(x)) * float(step))  # roundl, then (int)

    w, h = rounded(random_val, init[0]), rounded(random_val, init[1])
    if random_val < 1 and (w > init[0] or h > init[1]):
        w, h = init
    if first or iteration > max_batches - last:
        coef = alexeyab_coef(random)
        w, h = rounded(coef, init[0]), rounded(coef, init[1])
    least = int(step)  # `if (dim_w < net.resize_step) dim_w = net.resize_step;` into an int
    return max(w, least), max(h, least)


def alexeyab_multiscale_size(batch: int, max_batches: int, seed: int, cfg_size: tuple[int, int], random: float,
                             resize_step: float, last: int = ALEXEYAB_LARGEST_ITERATIONS) -> tuple[int, int]:
    """(width, height) of training batch `batch` (0-based) with AlexeyAB's `random` (0: the cfg's size)."""
    if not random:
        return cfg_size
    period = batch // PERIOD
    draw = rand_scale(np.random.Generator(np.random.PCG64([seed, period])), alexeyab_coef(random))
    return alexeyab_size(draw, cfg_size, resize_step, random, period * PERIOD, max_batches, period == 0, last)


def resize_step_problem(resize_step: float) -> str | None:
    """Why AlexeyAB's train_detector could not size with `[net] resize_step`, or None: it divides by it."""
    if resize_step <= 0:
        return f"resize_step={resize_step:g}: AlexeyAB's train_detector divides the sizes by it; it must be above 0"
    return None


def random_problem(random: float) -> str | None:
    """Why AlexeyAB's train_detector could not size with the last layer's `random`, or None: below 0 its
    rand_scale(random) draws scales from [random, 1], near 0 too, whose reciprocals are sizes without bound."""
    if random < 0:
        return f"random={random:g}: AlexeyAB's rand_scale({random:g}) draws scales near 0, sizes without bound"
    return None


def multiscale(dialect: str, random: float) -> bool:
    """Whether the last layer's `random` turns multi-scale on: AlexeyAB's float, pjreddie's atoi of it."""
    return bool(random) if dialect == "alexeyab" else bool(int(random))


def last_window(dialect: str) -> tuple[int, str]:
    """(iterations, what): the end of a run at one size, pjreddie's 608x608 or AlexeyAB's largest."""
    return (ALEXEYAB_LARGEST_ITERATIONS, "the largest size") if dialect == "alexeyab" else (FULL_SIZE_ITERATIONS, "608x608")


def detector_sizes(dialect: str, random: float, max_batches: int, seed: int, cfg_size: tuple[int, int],
                   resize_step: float, last: int) -> Callable[[int], tuple[int, int]]:
    """The (width, height) of each training batch as the dialect's train_detector sizes it; `last`: the
    iterations at the end at one size (`last_window`, scaled in a short run)."""
    if dialect == "alexeyab":
        return partial(alexeyab_multiscale_size, max_batches=max_batches, seed=seed, cfg_size=cfg_size, random=random,
                       resize_step=resize_step, last=last)
    return partial(multiscale_size, max_batches=max_batches, seed=seed, cfg_size=cfg_size,
                   random=multiscale(dialect, random), full_size=last)


def resize_lines(dialect: str, random: float, size_for_batch: Callable[[int], tuple[int, int]], start: int,
                 batch: int) -> list[str]:
    """What train_detector prints as it draws a size, at a run's first batch (`start`) and where a new one is
    drawn here (every PERIOD batches: the module doc): pjreddie's `Resizing` and the side (examples/detector.c),
    AlexeyAB's `Resizing, random_coef = %.2f ` and, after a blank line, ` W x H ` (src/detector.c)."""
    if batch % PERIOD and batch != start:
        return []
    width, height = size_for_batch(batch)
    if dialect == "alexeyab":
        return [f"Resizing, random_coef = {alexeyab_coef(random):.2f} ", "", f" {width} x {height} "]
    return ["Resizing", str(width)]


CLASSIFIER_PERIOD = 40


def classifier_multiscale_size(batch: int, seed: int, cfg_size: tuple[int, int], random: bool) -> tuple[int, int]:
    """(width, height) of classifier batch `batch` (0-based): `[net] random=1` in train_classifier.

    Darknet: `if(net->random && count++%40 == 0) dim = (rand() % 11 + 4) * 32`,
    i.e. 128..448 square, a new size every 40 iterations from the first;
    drawn per period from (seed, period) as for the detector.
    """
    if not random:
        return cfg_size
    period = batch // CLASSIFIER_PERIOD
    draw = int(np.random.Generator(np.random.PCG64([seed, period, CLASSIFIER_PERIOD])).integers(0, 11))
    dim = (draw + 4) * 32
    return (dim, dim)


def classifier_resize_lines(size_for_batch: Callable[[int], tuple[int, int]], min_ratio: float, max_ratio: float,
                            start: int, batch: int) -> list[str]:
    """What pjreddie's train_classifier prints as it draws a size (examples/classifier.c), at a run's first batch
    and every CLASSIFIER_PERIOD batches: `Resizing`, the side, and the crop bounds `args.min args.max`."""
    if batch % CLASSIFIER_PERIOD and batch != start:
        return []
    dim = size_for_batch(batch)[0]
    return ["Resizing", str(dim), f"{int(min_ratio * dim)} {int(max_ratio * dim)}"]  # as data.classification crops
