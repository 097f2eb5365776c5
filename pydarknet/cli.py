"""The `pydarknet` command: one verb per module in `pydarknet/commands/`.

Also accepts Darknet's own spellings: `detector test|train|valid|map|calc_anchors`
and single-dash options (`-thresh .3`, `-clear`).  Bad input ends with one
line `pydarknet: <what and where>` and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from pydarknet.commands import COMMANDS
from pydarknet.errors import DarknetError, StopRequested, first_line

# `darknet detector <verb> ...` -> `pydarknet <verb> ...`; test takes the .data first.
DETECTOR_VERBS = {"test": "detect", "train": "train", "valid": "valid", "map": "map", "calc_anchors": "anchors"}


def darknet_spelling(argv: list[str]) -> list[str]:
    """Rewrite Darknet's command forms into pydarknet's."""
    argv = [("-" + a) if a.startswith("-") and not a.startswith("--") and len(a) > 2 and a[1].isalpha() else a for a in argv]
    if argv and argv[0] == "detector":
        if len(argv) == 2 and argv[1] in ("-h", "--help"):
            return ["--help"]  # the verbs are pydarknet's own commands, listed there
        if len(argv) < 2 or argv[1] not in DETECTOR_VERBS:
            given = f"'{argv[1]}'" if len(argv) > 1 else "no verb"
            raise DarknetError(f"detector: {given}; Darknet's detector verbs here are {', '.join(DETECTOR_VERBS)}")
        verb = DETECTOR_VERBS[argv[1]]
        rest = argv[2:]
        if verb == "detect" and rest and not rest[0].startswith("-"):
            rest = ["--data", rest[0], *rest[1:]]
        if verb == "anchors" and not {"--units", "--cfg", "--write"} & {a.split("=", 1)[0] for a in rest}:
            # AlexeyAB's calc_anchors prints the anchors in pixels of -width x -height (-width 13: grid cells)
            rest = [*rest, "--units", "pixels"]
        return [verb, *rest]
    return argv


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its errors on one line (`pydarknet: <command>: <error>`, exit status 2) instead of usage text."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("pydarknet").strip()
        self.exit(2, f"pydarknet: {command + ': ' if command else ''}{message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
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


def _out_of_memory(err: BaseException) -> bool:
    """numpy's MemoryError, or PyTorch's allocator failure (a RuntimeError)."""
    return isinstance(err, MemoryError) or "can't allocate memory" in str(err) or "out of memory" in str(err)


def main(argv: Sequence[str] | None = None) -> int:
    # FFmpeg (OpenCV's video backend) prints its own lines for a broken video; ours names the file
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read when OpenCV first opens a video
    try:
        spelled = darknet_spelling(list(sys.argv[1:] if argv is None else argv))
    except DarknetError as err:
        print(f"pydarknet: {err}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(spelled)
    warnings.showwarning = _show_warning
    try:
        return int(args.run(args) or 0)
    except DarknetError as err:
        print(f"pydarknet: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the output's reader went away (`pydarknet ... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as err:  # a file or folder the command could not read or write
        where = f"{err.filename}: " if err.filename else ""
        print(f"pydarknet: {where}{err.strerror or err}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError) as err:
        if not _out_of_memory(err):
            raise
        detail = first_line(err) or type(err).__name__
        print(f"pydarknet: out of memory ({detail}); is the cfg, the image or --size too large?", file=sys.stderr)
        return 1
    except StopRequested as err:  # a training run that saved its backup on a signal
        print(f"pydarknet: {err}", file=sys.stderr)
        return 128 + (err.signum or signal.SIGINT)
    except KeyboardInterrupt:
        print("pydarknet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
