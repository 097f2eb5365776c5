"""Argument types the CLI verbs share: a bad value stops argparse with its one-line error.

Darknet reads such options with atof/atoi and runs on whatever it gets
(`-thresh -1` prints every class of every box at 0%); here they are
checked before any work starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from pydarknet.cfg import read_data_file
from pydarknet.cfg.dialect import CHOICES
from pydarknet.errors import DarknetError, finite_float
from pydarknet.eval.validation import read_valid_list
from pydarknet.image import IMAGE_EXTENSIONS
from pydarknet.infer.precision import PRECISIONS
from pydarknet.infer.quantize import CALIBRATION_IMAGES, Calibration, calibration_sample

if TYPE_CHECKING:
    from pydarknet.infer.engine import InferenceModel
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


def add_precision(p: argparse.ArgumentParser, default_calibration: str) -> None:
    """`--precision fp32|bf16|int8`, `--calibrate LIST|DIR|FILE.json` and `--save-calibration FILE.json`
    (docs/precision.md); `default_calibration` says where int8's calibration images come from without --calibrate."""
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32: Darknet's numbers (default); bf16: bfloat16 trunk (CPUs with AVX-512 BF16 or AMX, CUDA); "
                        "int8: quantised on calibration images, x86 CPUs, needs torchao (pip install 'pydarknet[int8]')")
    p.add_argument("--calibrate", metavar="LIST|DIR|FILE.json",
                   help=f"int8: calibration images, a list file or a folder (up to {CALIBRATION_IMAGES}, spread over it), "
                        f"or a calibration written by --save-calibration (no images needed); default: {default_calibration}")
    p.add_argument("--save-calibration", metavar="FILE.json",
                   help="int8: write the calibration to FILE.json, for --calibrate FILE.json next time")


def precision_options(args: argparse.Namespace, data: str | Path | None) -> dict[str, object]:
    """InferenceModel's `precision` and `calibration` from --precision/--calibrate: for int8, the --calibrate
    images or saved calibration, else the images of the .data file `data` (its train= list, else valid=)."""
    if args.precision != "int8":
        for option in ("calibrate", "save_calibration"):
            if getattr(args, option) is not None:
                raise DarknetError(f"--{option.replace('_', '-')}: only with --precision int8")
        return {"precision": args.precision}
    if args.compile is False:
        raise DarknetError("--no-compile: --precision int8 always compiles (its int8 kernels are inductor's)")
    if args.calibrate is not None:
        return {"precision": "int8", "calibration": _calibration(Path(args.calibrate))}
    if data is None:
        raise DarknetError("--precision int8: pass --calibrate LIST|DIR (images like those to detect) or FILE.json "
                           "(a saved calibration), or --data DATA (its train= or valid= images)")
    return {"precision": "int8", "calibration": _data_images(data)}


def _data_images(data: str | Path) -> list[str]:
    """The calibration images of a .data file: its train= list (the images the network was made for, and not
    those `valid`/`map` score), else its valid= list."""
    section = read_data_file(data)
    for key in ("train", "valid"):
        if section.has(key):
            try:
                path = section.get_path(key)
            except DarknetError:  # a train= list from another machine: try valid=
                continue
            return calibration_sample(read_valid_list(path))
    raise DarknetError(f"{data}: no train= or valid= list found to calibrate int8 on; pass --calibrate LIST|DIR")


def _calibration(path: Path) -> list[str] | Path:
    """--calibrate's images (a folder, or a list file as `valid=`), or the path of a saved calibration (.json)."""
    if path.suffix.lower() == ".json":
        return path
    if path.is_dir():
        images = sorted(str(f) for f in path.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
        if not images:
            raise DarknetError(f"--calibrate {path}: no images in this folder")
        return calibration_sample(images)
    if not path.is_file():
        raise DarknetError(f"--calibrate {path}: no such file or folder")
    return calibration_sample(read_valid_list(path))


def save_calibration(model: InferenceModel, args: argparse.Namespace) -> None:
    """Write the int8 model's calibration where --save-calibration says; an existing file is replaced only when
    it is a calibration too (never a cfg, weights or image given by mistake)."""
    target = getattr(args, "save_calibration", None)
    if target and model.calibration is not None:
        if Path(target).exists():
            try:
                Calibration.load(target)
            except DarknetError:
                raise DarknetError(f"--save-calibration {target}: this file exists and is not an int8 calibration; "
                                   "not replaced") from None
        model.calibration.save(target)
        print(f"wrote the int8 calibration to {target}", file=sys.stderr)
