"""A cfg section and its options, read with types and Darknet's defaults.

Each layer module asks its section for the options Darknet's `parse_*`
function reads (`src/parser.c`), with the same defaults; the section records
which keys were asked for, so the keys nobody read can be reported the way
Darknet's `option_unused` does ("Unused field").  Like Darknet's
`option_find`, the first of several equal keys wins.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydarknet.cfg.files import file_kind
from pydarknet.errors import CfgError, DarknetError, finite_float

T = TypeVar("T")

REQUIRED = object()  # default meaning "Darknet stops if the option is missing"


@dataclass(frozen=True)
class Option:
    """One `key=value` line: value as Darknet's strip() leaves it, and as written."""

    key: str
    value: str
    line: int
    column: int  # column of the value (1-based)
    raw: str  # the value as written: spaces inside kept (outer ones and a trailing comment dropped)


@dataclass
class Section:
    """One `[kind]` section of a cfg (or the option list of a .data file)."""

    kind: str
    path: str
    line: int
    options: dict[str, Option] = field(default_factory=dict)
    duplicates: list[Option] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def add(self, option: Option) -> None:
        if option.key in self.options:
            self.duplicates.append(option)  # Darknet: option_find returns the first
        else:
            self.options[option.key] = option

    def where(self, option: Option | None = None) -> str:
        if option is None:
            return f"{self.path}:{self.line}"
        return f"{self.path}:{option.line}:{option.column}"

    def error(self, message: str, key: str | None = None) -> CfgError:
        opt = self.options.get(key) if key else None
        return CfgError(f"{self.where(opt)}: [{self.kind}] {message}")

    def has(self, key: str) -> bool:
        return key in self.options

    def _raw(self, key: str, default: object) -> Option | None:
        self.used.add(key)
        opt = self.options.get(key)
        if opt is None and default is REQUIRED:
            raise CfgError(f"{self.where()}: [{self.kind}] needs option '{key}'")
        return opt

    def get_str(self, key: str, default: object = REQUIRED) -> str | None:
        opt = self._raw(key, default)
        return default if opt is None else opt.value  # type: ignore[return-value]

    def get_int(self, key: str, default: object = REQUIRED) -> int:
        opt = self._raw(key, default)
        return default if opt is None else _to_int(self, opt, opt.value)  # type: ignore[return-value]

    def get_float(self, key: str, default: object = REQUIRED) -> float:
        opt = self._raw(key, default)
        return default if opt is None else _to_float(self, opt, opt.value)  # type: ignore[return-value]

    def get_ints(self, key: str, default: object = REQUIRED) -> list[int]:
        opt = self._raw(key, default)
        if opt is None:
            return default  # type: ignore[return-value]
        return [_to_int(self, opt, item) for item in opt.value.split(",")]

    def get_floats(self, key: str, default: object = REQUIRED) -> list[float]:
        opt = self._raw(key, default)
        if opt is None:
            return default  # type: ignore[return-value]
        return [_to_float(self, opt, item) for item in opt.value.split(",")]

    def get_path_text(self, key: str, default: object = REQUIRED) -> str | None:
        """A path option as written, spaces inside kept.

        Darknet's strip() (src/option_list.c read_option/read_data_cfg) drops
        every space of a line, so its `backup=my backups` is `mybackups`, a
        folder nobody named; a path here keeps them (`Option.raw`).
        """
        opt = self._raw(key, default)
        return default if opt is None else opt.raw  # type: ignore[return-value]

    def get_path(self, key: str, default: object = REQUIRED) -> Path | None:
        """A file named by the option, found as Darknet finds it and then some.

        Darknet opens the path as written, i.e. against the working directory
        (`tree=data/9k.tree` assumes you run from Darknet's root); if that
        fails, try the cfg's folder and then its parent.  The first candidate
        that is a regular file is taken (never a FIFO, a device or a folder).
        """
        value = self.get_path_text(key, default)
        if value is None or value is default:
            return value  # type: ignore[return-value]
        written = Path(os.path.expanduser(value))
        cfg_dir = Path(self.path).resolve().parent
        tried = [written] if written.is_absolute() else [written, cfg_dir / written, cfg_dir.parent / written]
        for candidate in tried:
            if candidate.is_file():
                return candidate
        where = f"{self.where(self.options[key])}: [{self.kind}] {key}={value}"
        odd = next((candidate for candidate in tried if candidate.exists()), None)
        if odd is not None:
            raise CfgError(f"{where}: {odd} is not a regular file ({file_kind(odd.stat().st_mode)})")
        raise CfgError(f"{where}: file not found (tried {', '.join(str(t) for t in tried)})")

    def read_file(self, key: str, reader: Callable[[Path], T]) -> T | None:
        """`reader(path)` of the file the option names (see get_path), or None without the option.

        The reader's errors (a file that is not text, a bad line) are prefixed
        with the option, `cfg:line:column: [region] map=...: `.
        """
        path = self.get_path(key, None)
        if path is None:
            return None
        try:
            return reader(path)
        except DarknetError as err:
            raise CfgError(f"{self.where(self.options[key])}: [{self.kind}] {key}={self.options[key].raw}: {err}") from None

    def unused(self) -> list[Option]:
        return [o for k, o in self.options.items() if k not in self.used]


def _to_int(section: Section, opt: Option, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise CfgError(f"{section.where(opt)}: [{section.kind}] {opt.key}: '{text}' is not a whole number") from None
    if not -(2**31) <= value < 2**31:  # Darknet reads a C int (atoi)
        raise CfgError(f"{section.where(opt)}: [{section.kind}] {opt.key}: {text} is out of range")
    return value


def _to_float(section: Section, opt: Option, text: str) -> float:
    value = finite_float(text)
    if value is None:
        raise CfgError(f"{section.where(opt)}: [{section.kind}] {opt.key}: '{text}' is not a number")
    return value
