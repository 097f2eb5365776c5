"""The `pydarknet` command: one verb per module in `pydarknet/commands/`.

Also accepts Darknet's own spellings (docs/cli.md): `detector test|train|valid|map|recall|calc_anchors|demo`
and single-dash options (`-thresh .3`, `-clear`), AlexeyAB's included: `-dont_show` and `-nogpu` are
accepted with no effect (pydarknet opens no window, runs on the CPU unless told), `-i N` and `-gpus`
choose CUDA devices, `detector test`'s `-out FILE` is its JSON result file, and the AlexeyAB options
pydarknet does not implement are refused by name.  Bad input ends with one line
`pydarknet: <what and where>` and exit status 1 (2 for bad arguments), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import warnings
from collections.abc import Collection, Sequence
from typing import NoReturn

from pydarknet import __version__
from pydarknet.commands import VERBS, verb_module, verb_parser
from pydarknet.errors import DarknetError, StopRequested, first_line

# `darknet detector <verb> ...` -> `pydarknet <verb> ...`; test takes the .data first.
DETECTOR_VERBS = {"test": "detect", "train": "train", "valid": "valid", "map": "map", "recall": "recall",
                  "calc_anchors": "anchors", "demo": "demo"}

# The usage of each `detector` form (the pydarknet verb's options follow it in its --help).
DETECTOR_USAGE = {
    "test": "DATA CFG WEIGHTS [IMAGE ...] [-thresh T] [-ext_output] [-out RESULT.json] [-save_labels] [options]",
    "train": "DATA CFG [WEIGHTS] [-clear] [options]",
    "valid": "DATA CFG WEIGHTS [-out PREFIX] [options]",
    "map": "DATA CFG WEIGHTS [-thresh T] [-iou_thresh IOU] [-points 0|11|101] [options]",
    "recall": "DATA CFG WEIGHTS [options]",
    "calc_anchors": "DATA [-num_of_clusters N] [-width W] [-height H] [options]",
    "demo": "DATA CFG WEIGHTS [VIDEO] [options]",
}

# AlexeyAB's options (src/darknet.c main, src/detector.c run_detector) that pydarknet does not implement:
# refused by name rather than left to a generic "unrecognized arguments" (docs/cli.md has the table).
UNSUPPORTED = {
    "-benchmark": "per-frame timing of detector demo",
    "-benchmark_layers": "per-layer timing (tools/bench.py times pydarknet)",
    "-http_port": "an HTTP server", "-mjpeg_port": "an MJPEG stream server", "-json_port": "a JSON stream server",
    "-http_post_host": "posting detections over HTTP", "-dontdraw_bbox": "demo without boxes",
    "-time_limit_sec": "demo's time limit", "-json_file_output": "demo's JSON file",
    "-show_imgs": "showing and saving augmented training images", "-show": "showing the anchors in a window",
    "-cuda_debug_sync": "CUDA debugging",
}
IGNORED = ("-dont_show", "-nogpu")  # no window ever opens; the CPU is the default


def darknet_spelling(argv: list[str]) -> list[str]:
    """Rewrite Darknet's command forms into pydarknet's."""
    detector_form = bool(argv) and argv[0] == "detector"
    if argv[:1] == ["version"]:
        return ["--version"]
    argv = _alexeyab_options(argv)
    argv = [("-" + a) if a.startswith("-") and not a.startswith("--") and len(a) > 2 and a[1].isalpha() else a for a in argv]
    if detector_form:
        if len(argv) < 2 or argv[1] not in DETECTOR_VERBS:
            given = f"'{argv[1]}'" if len(argv) > 1 else "no verb"
            raise DarknetError(f"detector: {given}; Darknet's detector verbs here are {', '.join(DETECTOR_VERBS)}")
        verb = DETECTOR_VERBS[argv[1]]
        rest = argv[2:]
        if verb in ("detect", "demo") and rest and not rest[0].startswith("-"):
            rest = ["--data", rest[0], *rest[1:]]
        if verb == "anchors" and not {"--units", "--cfg", "--write"} & {a.split("=", 1)[0] for a in rest}:
            # AlexeyAB's calc_anchors prints the anchors in pixels of -width x -height (-width 13: grid cells)
            rest = [*rest, "--units", "pixels"]
        return [verb, *rest]
    return argv


def _alexeyab_options(argv: list[str]) -> list[str]:
    """AlexeyAB's single-dash options that are not a pydarknet option's single-dash spelling.

    `-dont_show`, `-nogpu`: dropped.  `-i N` (src/darknet.c gpu_index) and `-gpus N`: `--device cuda:N`;
    `-gpus 0,1`: refused with the torchrun command that trains on those GPUs.  `detector test`'s
    `-out FILE`: `--json-out FILE` (pydarknet's `--out` is the folder of annotated images).  The options
    of `UNSUPPORTED`: refused.  The demo verb takes `-dont_show` itself (it says once that no window opens).
    """
    demo = argv[:2] == ["detector", "demo"] or argv[:1] == ["demo"]
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg, value = argv[i], (argv[i + 1] if i + 1 < len(argv) else None)
        if arg in UNSUPPORTED:
            raise DarknetError(f"{arg}: AlexeyAB's Darknet option for {UNSUPPORTED[arg]}; pydarknet does not support it "
                               "(docs/cli.md lists the options)")
        if arg in IGNORED and not (demo and arg == "-dont_show"):
            i += 1
            continue
        if arg in ("-i", "-gpus") and value is not None:
            out += ["--device", _cuda_device(arg, value, argv)]
            i += 2
            continue
        if arg == "-out" and argv[:2] == ["detector", "test"]:
            arg = "--json-out"
        out.append(arg)
        i += 1
    return out


def _cuda_device(option: str, value: str, argv: list[str]) -> str:
    """`--device` for AlexeyAB's `-i N` or `-gpus N[,M...]`."""
    gpus = value.split(",")
    if not all(g.strip().isdigit() for g in gpus):
        raise DarknetError(f"{option} {value}: expected GPU numbers such as 0 or 0,1")
    if len(gpus) > 1:
        rest = [a for j, a in enumerate(argv) if a != option and not (j and argv[j - 1] == option)]
        command = shlex.join(["torchrun", "--standalone", "--nproc_per_node", str(len(gpus)), "-m", "pydarknet", *rest,
                              "--device", "cuda"])
        raise DarknetError(f"{option} {value}: pydarknet trains on several GPUs under torchrun, one process per GPU "
                           f"(the cfg's batch stays the global batch, see docs/training.md): CUDA_VISIBLE_DEVICES={value} {command}")
    import torch  # here, not at the top: `pydarknet --help` and `--version` load no PyTorch

    if not torch.cuda.is_available():
        raise DarknetError(f"{option} {value}: CUDA is not available on this machine (leave {option} out to run on the CPU)")
    return f"cuda:{int(gpus[0])}"


def detector_usage() -> str:
    """`pydarknet detector --help`: the usage of each `detector` form."""
    forms = [f"pydarknet detector {verb} {DETECTOR_USAGE[verb]}" for verb in DETECTOR_VERBS]
    return ("usage: " + "\n       ".join(forms) + "\n\nDarknet's detector forms; each runs the pydarknet verb "
            + ", ".join(f"{verb} = {DETECTOR_VERBS[verb]}" for verb in DETECTOR_VERBS)
            + ". Options in either spelling (-thresh .3 or --thresh .3); `pydarknet detector VERB --help` lists a "
            "verb's options, docs/cli.md AlexeyAB's flags.\n")


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its errors on one line (`pydarknet: <command>: <error>`, exit status 2) instead of usage text."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("pydarknet").strip()
        self.exit(2, f"pydarknet: {command + ': ' if command else ''}{message} (see --help)\n")


def build_parser(verbs: Collection[str] | None = None, detector_verb: str | None = None) -> argparse.ArgumentParser:
    """The parser of the `verbs` (default: every verb) with their arguments; the other verbs are listed with
    their help only, so that their modules are not imported.  With `detector_verb` (e.g. "test") that verb's
    parser is named and used as `pydarknet detector <verb>` in its usage and errors."""
    parser = OneLineParser(
        prog="pydarknet",
        description="Darknet's YOLOv2 in PyTorch: Darknet cfgs, .weights and datasets, Darknet's numbers.",
        epilog="Darknet's forms work too: `pydarknet detector test DATA CFG WEIGHTS IMAGE -thresh .3` "
               "(`pydarknet detector --help`, docs/cli.md).",
    )
    parser.add_argument("--version", action="version", version=f"pydarknet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = {VERBS[verb].module for verb in (VERBS if verbs is None else verbs)}
    for verb in VERBS:
        if VERBS[verb].module not in modules:
            verb_parser(sub, verb)
        elif verb not in sub.choices:  # a module adds all its verbs at once (evaluate: valid, map, recall)
            verb_module(verb).add_parser(sub)
    if detector_verb is not None:
        verb = sub.choices[DETECTOR_VERBS[detector_verb]]
        verb.prog = f"pydarknet detector {detector_verb}"
        verb.usage = f"{verb.prog} {DETECTOR_USAGE[detector_verb]}"
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # type: ignore[no-untyped-def]
    print(f"pydarknet: warning: {message}", file=sys.stderr)


def _out_of_memory(err: BaseException) -> bool:
    """numpy's MemoryError, or PyTorch's allocator failure (a RuntimeError)."""
    return isinstance(err, MemoryError) or "can't allocate memory" in str(err) or "out of memory" in str(err)


def main(argv: Sequence[str] | None = None) -> int:
    # FFmpeg (OpenCV's video backend) prints its own lines for a broken video; ours names the file
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read when OpenCV first opens a video
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["detector"] and given[1:] in (["-h"], ["--help"]):
        print(detector_usage(), end="")
        return 0
    try:
        spelled = darknet_spelling(given)
    except DarknetError as err:
        print(f"pydarknet: {err}", file=sys.stderr)
        return 2
    verb = spelled[:1] if spelled[:1] and spelled[0] in VERBS else []
    args = build_parser(verb, given[1] if given[:1] == ["detector"] else None).parse_args(spelled)
    try:
        with warnings.catch_warnings():  # our one-line warnings, for this command only
            warnings.showwarning = _show_warning
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
