"""CLI verbs: `VERBS` names each verb's module in this package and its one-line help.

A verb's module is imported only when that verb runs (or its --help is asked for): `pydarknet --help`
and `pydarknet --version` load neither PyTorch nor OpenCV.  Each module has `add_parser(subparsers)`,
which makes its verbs with `verb_parser` and adds their arguments; a parser's `run(args)` does the work.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType
from typing import Any, NamedTuple


class Verb(NamedTuple):
    module: str  # in pydarknet.commands
    help: str  # the line `pydarknet --help` shows


VERBS = {
    "detect": Verb("detect", "detect objects in images, folders, image lists or videos"),
    "demo": Verb("demo", "detect objects in a camera, video, stream URL or images, frame by frame (AlexeyAB's detector demo)"),
    "train": Verb("train", "train a detector from a .data file and a cfg, as `darknet detector train`"),
    "valid": Verb("evaluate", "write Darknet's detector-valid result files (VOC comp4 / COCO json)"),
    "map": Verb("evaluate", "mAP of a network on the valid list (VOC AP, P/R/F1, COCO via pycocotools)"),
    "recall": Verb("evaluate", "Darknet's detector recall: proposals per image, mean best IoU and recall of the valid "
                               "list's label boxes"),
    "anchors": Verb("anchors", "k-means (d = 1 - IoU) anchors from a data set's training boxes"),
    "convert": Verb("convert", "convert a checkpoint: .weights, .pt, .h5 (lossless) or .onnx (export), by extension"),
    "partial": Verb("partial", "keep the first N layers of a weights file (Darknet's partial)"),
    "summary": Verb("summary", "print a cfg's layer table (and a weights file's header)"),
    "classifier": Verb("classifier", "train, validate or run a classifier, as `darknet classifier ...`"),
}


def verb_module(verb: str) -> ModuleType:
    """The module that defines `verb` (imported now)."""
    return importlib.import_module(f"pydarknet.commands.{VERBS[verb].module}")


def verb_parser(sub: argparse._SubParsersAction, verb: str, **options: Any) -> argparse.ArgumentParser:
    """`verb`'s parser, listed with its `VERBS` help; that help is also its --help description unless
    `options` give one."""
    options.setdefault("description", VERBS[verb].help)
    return sub.add_parser(verb, help=VERBS[verb].help, **options)
