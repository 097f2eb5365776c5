"""cfg text -> sections, through the lark grammar in `grammar.lark`.

Only this module knows about text.  Errors are `CfgError` with
`file:line:column: what was expected`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from pydarknet.cfg.files import read_text_file
from pydarknet.cfg.section import Option, Section
from pydarknet.errors import CfgError

_TERMINAL_WORDS = {
    "NAME": "a section name",
    "KEY": "an option name",
    "ATOM": "a value",
    "EQUAL": "'='",
    "COMMA": "','",
    "LSQB": "'['",
    "RSQB": "']'",
    "_NL": "end of line",
    "$END": "end of file",
}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = (Path(__file__).parent / "grammar.lark").read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True)


def _describe(expected: set[str] | frozenset[str]) -> str:
    words = sorted({_TERMINAL_WORDS.get(name, name) for name in expected})
    return " or ".join(words) if words else "something else"


def _syntax_error(path: str, err: UnexpectedInput) -> CfgError:
    where = f"{path}:{err.line}:{err.column}"
    if isinstance(err, UnexpectedCharacters):
        found = repr(err.char)
        expected = _describe(err.allowed or set())
    elif isinstance(err, UnexpectedToken):
        tok = err.token
        found = "end of file" if tok.type == "$END" else ("end of line" if tok.type == "_NL" else repr(str(tok)))
        expected = _describe(err.expected)
        if tok.type == "_NL" and "ATOM" in err.expected:
            return CfgError(f"{where}: option has no value (Darknet rejects 'key=' lines)")
        if tok.type == "_NL" and "EQUAL" in err.expected:
            return CfgError(f"{where}: expected 'key=value', found a line without '='")
    else:
        found, expected = "end of file", "more input"
    return CfgError(f"{where}: expected {expected}, found {found}")


def parse_cfg(text: str, path: str = "<cfg>") -> tuple[Section, list[Section]]:
    """Parse cfg text into (options before any section, sections in order).

    The first part is the body of a `.data` file; in a network cfg it must be
    empty.
    """
    try:
        tree = _parser().parse(text + "\n")
    except UnexpectedInput as err:
        raise _syntax_error(path, err) from None
    except LarkError as err:  # defensive: lark's own failures stay one line
        raise CfgError(f"{path}: cannot parse: {err}".splitlines()[0]) from None
    preamble = Section(kind="", path=path, line=1)
    sections: list[Section] = []
    for node in tree.children:
        assert isinstance(node, Tree)
        if node.data == "header":
            name: Token = node.children[0]  # type: ignore[assignment]
            sections.append(Section(kind=str(name).lower(), path=path, line=name.line))
        else:
            key: Token = node.children[0]  # type: ignore[assignment]
            value_tree: Tree = node.children[1]  # type: ignore[assignment]
            first = value_tree.children[0].children[0]  # type: ignore[union-attr]
            last = value_tree.children[-1].children[-1]  # type: ignore[union-attr]
            # Darknet's strip(): the pieces of an item are joined, whitespace dropped.
            value = ",".join("".join(str(t) for t in item.children) for item in value_tree.children)  # type: ignore[union-attr]
            raw = text[first.start_pos : last.end_pos]  # type: ignore[union-attr]
            opt = Option(key=str(key), value=value, line=key.line, column=first.column, raw=raw)
            (sections[-1] if sections else preamble).add(opt)
    return preamble, sections


def read_cfg(path: str | Path) -> list[Section]:
    """Read a network cfg: its sections, the first being `[net]`/`[network]`."""
    preamble, sections = parse_cfg(read_text_file(path, "cfg"), str(path))
    if preamble.options:
        first = next(iter(preamble.options.values()))
        raise CfgError(f"{path}:{first.line}:{first.column}: option '{first.key}' outside any section")
    if not sections:
        raise CfgError(f"{path}: no sections: a cfg starts with [net]")
    if sections[0].kind not in ("net", "network"):
        raise CfgError(f"{path}:{sections[0].line}: first section must be [net] or [network], not [{sections[0].kind}]")
    return sections


def read_data_file(path: str | Path) -> Section:
    """Read a Darknet `.data` file (`classes=`, `train=`, `names=`...)."""
    preamble, sections = parse_cfg(read_text_file(path, ".data file"), str(path))
    if sections:
        raise CfgError(f"{path}:{sections[0].line}: a .data file has no [sections]")
    preamble.kind = "data"
    return preamble
