"""`pydarknet summary CFG [WEIGHTS]`: Darknet's layer table, BFLOPs, weights header."""

from __future__ import annotations

import argparse

from pydarknet.commands import verb_parser
from pydarknet.commands.arguments import add_dialect, apply_dialect
from pydarknet.network import Darknet
from pydarknet.weights import load_weights


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = verb_parser(sub, "summary")
    p.add_argument("cfg", help="Darknet .cfg file")
    p.add_argument("weights", nargs="?", help="optional .weights (or converted .pt/.h5) file: loaded, and its header printed")
    p.add_argument("--size", metavar="WxH", help="input size, e.g. 608x608 (default: the cfg's)")
    p.add_argument("--strict", action="store_true", help="unknown cfg options are errors, not warnings")
    add_dialect(p)
    p.set_defaults(run=run)


def parse_size(text: str | None) -> tuple[int | None, int | None]:
    """`--size 544x320` -> (544, 320); `--size 416` -> (416, 416)."""
    from pydarknet.errors import DarknetError

    if not text:
        return None, None
    parts = text.lower().split("x")
    try:
        w, h = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (0, 0)
    except ValueError:
        w = h = 0
    if w < 1 or h < 1:
        raise DarknetError(f"--size {text}: expected WIDTHxHEIGHT, e.g. 416x416")
    return w, h


def run(args: argparse.Namespace) -> int:
    from pydarknet.convert import input_format, load_checkpoint

    width, height = parse_size(args.size)
    net = Darknet(args.cfg, width, height, strict=args.strict, dialect=args.dialect)
    if args.weights:
        if input_format(args.weights) == "weights":
            load_weights(net, args.weights)  # the cfg was built with --strict's rule, so not network_with_weights
        else:
            net = apply_dialect(load_checkpoint(args.cfg, args.weights, width, height), args)
        header = net.header  # as read from the file
        print(f"{args.weights}: version {header.major}.{header.minor}.{header.revision}, "
              f"seen {header.seen} ({header.seen_bytes}-byte), transpose {int(header.transpose)}")
    print(net.summary())
    return 0
