"""The `pydarknet` command: one verb per module in `pydarknet/commands/`.

Also accepts Darknet's own spellings: `detector test|train|valid|map|calc_anchors`
and single-dash options (`-thresh .3`, `-clear`).  Bad input ends with one
line `pydarknet: <what and where>` and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from pydarknet.commands import COMMANDS
from pydarknet.errors import DarknetError

# `darknet detector <verb> ...` -> `pydarknet <verb> ...`; test takes the .data first.
DETECTOR_VERBS = {"test": "detect", "train": "train", "valid": "valid", "map": "map", "calc_anchors": "anchors"}


def darknet_spelling(argv: list[str]) -> list[str]:
    """Rewrite Darknet's command forms into pydarknet's."""
    argv = [("-" + a) if a.startswith("-") and not a.startswith("--") and len(a) > 2 and a[1].isalpha() else a for a in argv]
    if len(argv) >= 2 and argv[0] == "detector" and argv[1] in DETECTOR_VERBS:
        verb = DETECTOR_VERBS[argv[1]]
        rest = argv[2:]
        if verb == "detect" and rest and not rest[0].startswith("-"):
            rest = ["--data", rest[0], *rest[1:]]
        return [verb, *rest]
    return argv


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pydarknet",
        description="Darknet's YOLOv2 in PyTorch: Darknet cfgs, .weights and datasets, Darknet's numbers.",
        epilog="Darknet's forms work too: `pydarknet detector test DATA CFG WEIGHTS IMAGE`, `-thresh .3`.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # type: ignore[no-untyped-def]
    print(f"pydarknet: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(darknet_spelling(list(sys.argv[1:] if argv is None else argv)))
    warnings.showwarning = _show_warning
    try:
        return int(args.run(args) or 0)
    except DarknetError as err:
        print(f"pydarknet: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pydarknet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
