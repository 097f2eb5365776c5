"""Argument types the CLI verbs share: a bad value stops argparse with its one-line error.

Darknet reads such options with atof/atoi and runs on whatever it gets
(`-thresh -1` prints every class of every box at 0%); here they are
checked before any work starts.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import torch

from pydarknet.cfg.dialect import CHOICES
from pydarknet.errors import finite_float

if TYPE_CHECKING:
    from pydarknet.network import Darknet


def probability(text: str) -> float:
    """A threshold or IoU: a number from 0 to 1."""
    value = finite_float(text)
    if value is None or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number from 0 to 1")
    return value


def _int_at_least(text: str, low: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{value}: must be {what}")
    return value


def positive_int(text: str) -> int:
    """A count of at least 1 (a batch, iterations, layers)."""
    return _int_at_least(text, 1, "at least 1")


def non_negative_int(text: str) -> int:
    """A count that may be 0 (loader workers)."""
    return _int_at_least(text, 0, "0 or more")


def positive_float(text: str) -> float:
    """A duration or size above 0."""
    value = finite_float(text)
    if value is None or value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number above 0")
    return value


def device(text: str) -> str:
    """`cpu`, `cuda` or `cuda:N`, checked to exist on this machine."""
    try:
        parsed = torch.device(text)
    except RuntimeError:
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"'{text}': expected cpu, cuda or cuda:N")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"'{text}': CUDA is not available on this machine")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"'{text}': this machine has {torch.cuda.device_count()} CUDA devices")
    return text


def add_dialect(p: argparse.ArgumentParser, inference: bool = False) -> None:
    """`--dialect auto|pjreddie|alexeyab` on a verb; on the verbs that run the network (`inference`) also
    AlexeyAB's `-letter_box` as `--letter-box` and `--cpu-tree-softmax`."""
    p.add_argument("--dialect", choices=CHOICES, default="auto",
                   help="whose Darknet's numbers to reproduce where pjreddie's and AlexeyAB's differ: preprocessing, "
                        "batch norm, box correction, NMS (default auto: AlexeyAB's when the cfg uses anything only it reads)")
    if inference:
        p.add_argument("--letter-box", "--letter_box", dest="letter_box", action="store_true",
                       help="letterbox the images (AlexeyAB's -letter_box; pjreddie's dialect always does)")
        p.add_argument("--cpu-tree-softmax", action="store_true",
                       help="YOLO9000 trees: reproduce pjreddie's CPU build's broken tree softmax (NaN outputs) instead "
                            "of the GPU build's per-group softmax Darknet trains with (the default)")


def apply_dialect(net: Darknet, args: argparse.Namespace) -> Darknet:
    """Set the verb's --dialect, --letter-box and --cpu-tree-softmax on `net` (`pydarknet summary` says which
    dialect runs and why)."""
    net.set_dialect(getattr(args, "dialect", "auto"))
    if getattr(args, "letter_box", False):
        net.options.letter_box = 1
    net.set_cpu_tree_quirk(getattr(args, "cpu_tree_softmax", False))
    return net
