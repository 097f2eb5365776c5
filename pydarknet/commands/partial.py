"""`pydarknet partial CFG WEIGHTS OUT N`: Darknet's `partial` (examples/darknet.c).

Darknet loads the network with `clear=1` (so `seen` becomes 0) and calls
`save_weights_upto(net, out, N)`: the first N layers, a 64-bit `seen` of 0,
whatever version the input had, under the writer's own version: 0.2.0 in
pjreddie's Darknet, 0.2.5 in AlexeyAB's (src/version.h; src/darknet.c
partial sets seen and cur_iteration to 0).  This is how
`darknet19_448.conv.23` is made from `darknet19_448.weights`.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from pydarknet.commands import verb_parser
from pydarknet.commands.arguments import add_dialect, non_negative_int
from pydarknet.convert import OUTPUT_FORMATS
from pydarknet.errors import DarknetError
from pydarknet.network import Darknet
from pydarknet.weights import WeightsHeader, load_weights, save_weights


# save_weights_upto's header version: pjreddie's src/parser.c writes 0.2.0, AlexeyAB's its version.h 0.2.5.
HEADERS = {"pjreddie": WeightsHeader(0, 2, 0, 0), "alexeyab": WeightsHeader(0, 2, 5, 0)}


def partial(cfg: str | Path, weights: str | Path, out: str | Path, layers: int, force: bool = False,
            dialect: str = "auto") -> Darknet:
    """Write the first `layers` layers of `weights` to `out` as `dialect`'s Darknet's `partial` does."""
    if layers < 0:
        raise DarknetError(f"N={layers}: the number of layers to keep must not be negative")
    if OUTPUT_FORMATS.get(Path(out).suffix.lower(), "weights") != "weights":
        raise DarknetError(f"{out}: partial writes Darknet weights; name it e.g. NAME.conv.{layers}, then `pydarknet convert` it")
    if Path(out).exists() and not force:
        raise DarknetError(f"{out}: already exists; pass --force to overwrite it")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(cfg, dialect=dialect)
    load_weights(net, weights, cutoff=layers)
    net.seen = 0  # Darknet: load_network(cfg, weights, clear=1)
    save_weights(net, out, cutoff=layers, header=HEADERS[net.dialect])
    return net


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = verb_parser(sub, "partial")
    p.add_argument("cfg", help="Darknet .cfg file")
    p.add_argument("weights", help=".weights file to cut")
    p.add_argument("output", help="weights file to write, e.g. darknet19_448.conv.23")
    p.add_argument("layers", type=non_negative_int, metavar="N", help="number of layers to keep (layers 0..N-1)")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    add_dialect(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    net = partial(args.cfg, args.weights, args.output, args.layers, args.force, args.dialect)
    kept = min(args.layers, len(net.layers))
    header = HEADERS[net.dialect]
    print(f"{args.output}: layers 0..{kept - 1} of {args.cfg}, version {header.major}.{header.minor}.{header.revision} "
          f"({net.dialect}'s Darknet), seen 0")
    return 0
