"""`pydarknet partial CFG WEIGHTS OUT N`: Darknet's `partial` (examples/darknet.c).

Darknet loads the network with `clear=1` (so `seen` becomes 0) and calls
`save_weights_upto(net, out, N)`: the first N layers, header 0.2.0 with a
64-bit `seen` of 0, whatever version the input had.  This is how
`darknet19_448.conv.23` is made from `darknet19_448.weights`.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from pydarknet.commands.arguments import non_negative_int
from pydarknet.convert import OUTPUT_FORMATS
from pydarknet.errors import DarknetError
from pydarknet.network import Darknet
from pydarknet.weights import WeightsHeader, save_weights


def partial(cfg: str | Path, weights: str | Path, out: str | Path, layers: int, force: bool = False) -> Darknet:
    """Write the first `layers` layers of `weights` to `out` as Darknet's `partial` does."""
    if layers < 0:
        raise DarknetError(f"N={layers}: the number of layers to keep must not be negative")
    if OUTPUT_FORMATS.get(Path(out).suffix.lower(), "weights") != "weights":
        raise DarknetError(f"{out}: partial writes Darknet weights; name it e.g. NAME.conv.{layers}, then `pydarknet convert` it")
    if Path(out).exists() and not force:
        raise DarknetError(f"{out}: already exists; pass --force to overwrite it")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(cfg)
    net.load_weights(weights, cutoff=layers)
    net.seen = 0  # Darknet: load_network(cfg, weights, clear=1)
    save_weights(net, out, cutoff=layers, header=WeightsHeader(0, 2, 0, 0))  # Darknet: save_weights_upto writes 0.2.0
    return net


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("partial", help="keep the first N layers of a weights file (Darknet's partial)")
    p.add_argument("cfg", help="Darknet .cfg file")
    p.add_argument("weights", help=".weights file to cut")
    p.add_argument("output", help="weights file to write, e.g. darknet19_448.conv.23")
    p.add_argument("layers", type=non_negative_int, metavar="N", help="number of layers to keep (layers 0..N-1)")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    net = partial(args.cfg, args.weights, args.output, args.layers, args.force)
    kept = min(args.layers, len(net.layers))
    print(f"{args.output}: layers 0..{kept - 1} of {args.cfg}, seen 0")
    return 0
