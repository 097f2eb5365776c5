"""Darknet's multi-scale training schedule (`random=1` in the last layer).

examples/detector.c:train_detector: every 10 iterations a new square size
`(rand() % 10 + 10) * 32`, i.e. 320..608, and 608 once the current batch is
within 200 of `max_batches`; `random=0` keeps the cfg size.  (A run shortened
by `--max-batches` has that last window shortened in proportion,
pydarknet.train.policy.scaled.)

Darknet counts the 10 iterations from the start of the process and draws
from C's rand(); here the size of batch `b` is drawn from a generator seeded
by (seed, b // 10), so a run resumed at any batch continues with exactly the
sizes the uninterrupted run would have used, and every process of a
distributed run agrees without communicating.
"""

from __future__ import annotations

import numpy as np

PERIOD = 10
FULL_SIZE_ITERATIONS = 200  # the last iterations, all at 608x608


def multiscale_size(batch: int, max_batches: int, seed: int, cfg_size: tuple[int, int], random: bool,
                    full_size: int = FULL_SIZE_ITERATIONS) -> tuple[int, int]:
    """(width, height) of the images of training batch `batch` (0-based); the last `full_size` at 608x608."""
    if not random:
        return cfg_size
    if batch + full_size > max_batches:  # Darknet: get_current_batch(net) + 200 > net->max_batches
        return (608, 608)
    period = batch // PERIOD
    draw = int(np.random.Generator(np.random.PCG64([seed, period])).integers(0, 10))
    dim = (draw + 10) * 32
    return (dim, dim)


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
