"""Every `pydarknet ...` command written in README.md and docs/*.md parses with the real CLI parser.

The commands are taken from ```bash/```sh/```console/```shell blocks (a line, or a `&&` / `;` part of
one, that starts with `pydarknet `, `python -m pydarknet ` or `... -m pydarknet ` as torchrun runs
it) and from inline code spans that start with `pydarknet `.  Each is parsed as `pydarknet.cli.main`
parses its arguments (Darknet's spellings rewritten, then argparse), never run.  Shell parts are
dropped: `# comments`, pipes, `<` / `>` redirections.  Placeholders (DATA, CFG, ...) stay strings;
the numeric ones (N, T, W, H, ...) become numbers, `[optional]` brackets are dropped and `a|b` takes
`a`.  An inline span that only names a command (`pydarknet detect`, `pydarknet detector train`,
`pydarknet VERB --help`) is a reference, not a command line, and is skipped.  CUDA is made to look
available, so that `--device cuda` parses on a machine without a GPU.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest
import torch

from pydarknet import cli
from pydarknet.errors import DarknetError

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

SHELL_BLOCK = re.compile(r"^```(bash|sh|console|shell)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
ANY_BLOCK = re.compile(r"^```.*?^```[ \t]*$", re.M | re.S)
INLINE = re.compile(r"(?<!`)`([^`]+)`(?!`)")
# placeholders that stand for a number in the docs' synopses
NUMBERS = {"N": "1", "T": ".5", "W": "416", "H": "416", "WxH": "416x416", "IOU": ".5", "S": "1"}
# command names: a span holding only these after `pydarknet` names a command
GROUPS = ("detector", "classifier")


def parse_command(argv: list[str]) -> None:
    """Parse `pydarknet ARGV` as `pydarknet.cli.main` does, without running it.

    Raises SystemExit (argparse's exit) or DarknetError (a refused Darknet option) when the arguments
    are wrong.  The one place that knows how the CLI parses: adapt it if `build_parser` changes.
    """
    if argv[:1] == ["detector"] and argv[1:] in (["-h"], ["--help"]):
        return  # main prints detector_usage()
    spelled = cli.darknet_spelling(argv)
    cli.build_parser(detector_verb=argv[1] if argv[:1] == ["detector"] else None).parse_args(spelled)


def _shell_parts(line: str) -> list[list[str]]:
    """The simple commands of a shell line: split on && and ;, each cut at a pipe, redirection or comment."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    parts: list[list[str]] = [[]]
    cut = False
    for token in lexer:
        if token in ("&&", ";", "||"):
            parts.append([])
            cut = False
        elif token in ("|", "<", ">", ">>", "2>", "&"):
            cut = True  # a pipe's reader or a redirection's file: not pydarknet's arguments
        elif not cut:
            parts[-1].append(token)
    return [p for p in parts if p]


def _pydarknet_args(words: list[str]) -> list[str] | None:
    """The arguments after `pydarknet` (or `-m pydarknet`) in a simple command, else None."""
    if words[:1] == ["pydarknet"]:
        return words[1:]
    for i in range(len(words) - 1):
        if words[i] == "-m" and words[i + 1] == "pydarknet":
            return words[i + 2:]
    return None


def _concrete(args: list[str]) -> list[str]:
    """Synopsis notation made concrete: [optional] kept without brackets, a|b -> a, numeric placeholders."""
    out = []
    for arg in args:
        arg = arg.strip("[]")
        if not arg or arg == "...":
            continue
        if "|" in arg and not arg.startswith("|"):
            arg = arg.split("|")[0]
        out.append(NUMBERS.get(arg, arg))
    return out


def _names_a_command(args: list[str]) -> bool:
    """`pydarknet detect`, `pydarknet detector train`, `pydarknet VERB --help`: a reference in prose."""
    words = [a for a in args if a not in ("--help", "-h")]
    if "VERB" in words:
        return True
    if words[:1] and words[0] in GROUPS:
        return len(words) <= 2 and args == words
    return len(words) <= 1 and args == words


def doc_commands() -> list[tuple[str, int, str, list[str]]]:
    """(file, line, text, arguments) of every pydarknet command in the docs."""
    found = []
    for path in DOCS:
        text = path.read_text()
        name = str(path.relative_to(ROOT))
        for block in SHELL_BLOCK.finditer(text):
            first = text[: block.start(2)].count("\n") + 1
            lines = block.group(2).split("\n")
            k = 0
            while k < len(lines):
                start, line = k, lines[k]
                while line.rstrip().endswith("\\") and k + 1 < len(lines):  # continuation lines
                    k += 1
                    line = line.rstrip()[:-1] + " " + lines[k]
                k += 1
                line = re.sub(r"^\s*\$ ", "", line)  # a console prompt
                for words in _shell_parts(line):
                    args = _pydarknet_args(words)
                    if args is not None:
                        found.append((name, first + start, line.strip(), _concrete(args)))
        prose = ANY_BLOCK.sub(lambda m: "\n" * m.group(0).count("\n"), text)  # keep line numbers
        for span in INLINE.finditer(prose):
            code = " ".join(span.group(1).split())
            if not code.startswith("pydarknet "):
                continue
            line_no = prose[: span.start()].count("\n") + 1
            for words in _shell_parts(code):
                args = _pydarknet_args(words)
                if args is not None and not _names_a_command(args):
                    found.append((name, line_no, code, _concrete(args)))
    return found


COMMANDS = doc_commands()


def test_the_docs_have_commands() -> None:
    files = {name for name, *_ in COMMANDS}
    assert len(COMMANDS) >= 60 and {"README.md", "docs/cli.md", "docs/training.md"} <= files


@pytest.mark.parametrize(("name", "line", "text", "args"), COMMANDS,
                         ids=[f"{name}:{line}" for name, line, *_ in COMMANDS])
def test_doc_command_parses(name: str, line: int, text: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # the docs' `--device cuda` and `-i 0` are for a machine with GPUs: parse as if on one
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    stderr, stdout = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            parse_command(args)
    except SystemExit as err:
        if err.code not in (0, None):  # --help and --version exit 0
            pytest.fail(f"{name}:{line}: `{text}` does not parse: {stderr.getvalue().strip()}")
    except DarknetError as err:
        pytest.fail(f"{name}:{line}: `{text}` is refused: {err}")
