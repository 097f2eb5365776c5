"""`pydarknet convert CFG INPUT OUTPUT`: .weights <-> .pt <-> .h5, and ONNX export."""

from __future__ import annotations

import argparse

from pydarknet.commands import verb_parser
from pydarknet.commands.arguments import add_dialect
from pydarknet.commands.summary import parse_size


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = verb_parser(
        sub, "convert",
        description="Formats by extension: .weights (Darknet), .pt/.pth (PyTorch), .h5/.hdf5 (HDF5), .onnx (export). "
                    "A .pt/.h5 input embeds its cfg: pass '-' as CFG to use it.",
    )
    p.add_argument("cfg", help="Darknet .cfg file, or '-' for the cfg embedded in a .pt/.h5 INPUT")
    p.add_argument("input", help=".weights, .pt or .h5 file")
    p.add_argument("output", help=".weights, .pt, .h5 or .onnx file to write")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.add_argument("--fuse", action="store_true", help="ONNX: fold batch norm into the convolutions")
    p.add_argument("--decode", action="store_true", help="ONNX: add an output with the decoded boxes")
    p.add_argument("--size", metavar="WxH", help="ONNX: input size, e.g. 416x416 (default: the cfg's)")
    add_dialect(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pydarknet.convert import convert

    width, height = parse_size(args.size)
    size = (width, height) if width and height else None
    net = convert(None if args.cfg == "-" else args.cfg, args.input, args.output,  # the dialect: the batch norm an ONNX file computes
                  force=args.force, fuse=args.fuse, decode=args.decode, size=size, dialect=args.dialect)
    print(f"{args.output}: {len(net.layers)} layers, {net.width}x{net.height}, seen {net.seen}")
    return 0
