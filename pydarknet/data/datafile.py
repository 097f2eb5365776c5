"""Darknet's `.data` file, its list files and its names file.

A `.data` file (`cfg/coco.data`) is `key=value` lines that Darknet reads with
`read_data_cfg` and `option_find_*` in `examples/detector.c`: `classes`,
`train` and `valid` (list files, one image path a line), `names` (one class
name a line), `backup` (the folder for weights files), and, in some files,
`labels`, `top`, `eval`, `map`, `results`; AlexeyAB's train_detector also
reads `saveweights` and `savelast` (its checkpoint periods).

Darknet opens every path as written, i.e. against the working directory, so
its own `.data` files only work from Darknet's root.  Here a relative path is
tried as written, then against the `.data` file's folder, then against that
folder's parent (so `names=data/coco.names` in `cfg/coco.data` is found from
anywhere); a file that cannot be found is a one-line error naming the key and
every path tried.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydarknet.cfg import Section, read_data_file
from pydarknet.cfg.files import decode_text, read_regular_file
from pydarknet.errors import CfgError, DarknetError

# Darknet's train_detector default is "/backup/", a folder at the file-system
# root nobody can write to; a relative "backup" is what its own .data files use.
DEFAULT_BACKUP = "backup"

LAZY_FILE_KEYS = ("train", "valid", "labels", "map")


@dataclass
class DataFile:
    """The options of one `.data` file, paths resolved (see the module doc)."""

    path: Path
    classes: int
    train: Path | None
    valid: Path | None
    names: list[str] | None = field(repr=False)
    names_path: Path | None
    backup: Path
    eval: str | None
    labels: Path | None
    top: int | None
    map: Path | None
    results: Path | None
    saveweights: int | None = None  # AlexeyAB: NAME_N.weights every this many iterations
    savelast: int | None = None  # AlexeyAB: NAME_last.weights every this many iterations

    @classmethod
    def read(cls, path: str | Path, need: Iterable[str] = ()) -> DataFile:
        """Read a `.data` file.

        `names` is read at once when the key is there.  Other file keys
        (`train`, `valid`, `labels`, `map`) are resolved when the file is
        found and kept as written when not, so `detect` can use a `.data`
        whose `train=` names another machine's path; the keys in `need`
        (e.g. `("train",)` for training) must be present and found, or
        `read` fails with a line naming the key and the paths tried.
        """
        section = read_data_file(path)
        need = set(need)
        unknown = need - {*LAZY_FILE_KEYS, "names"}
        if unknown:
            raise ValueError(f"DataFile.read: need names unknown keys {sorted(unknown)}")
        files = {key: _file(section, key, key in need) for key in LAZY_FILE_KEYS}
        names_path = section.get_path("names") if "names" in need else section.get_path("names", None)
        data = cls(
            path=Path(path),
            classes=section.get_int("classes", 20),  # Darknet: option_find_int(options, "classes", 20)
            train=files["train"],
            valid=files["valid"],
            names=read_names(names_path) if names_path else None,
            names_path=names_path,
            backup=_folder(section, "backup", DEFAULT_BACKUP),
            eval=section.get_str("eval", None),
            labels=files["labels"],
            top=section.get_int("top", None),
            map=files["map"],
            results=_folder(section, "results", None) if section.has("results") else None,
            saveweights=section.get_int("saveweights", None),
            savelast=section.get_int("savelast", None),
        )
        if data.classes < 1:
            raise section.error(f"classes={data.classes}: must be at least 1", "classes")
        for key in ("saveweights", "savelast"):
            if getattr(data, key) is not None and getattr(data, key) < 1:
                raise section.error(f"{key}={getattr(data, key)}: must be at least 1 (AlexeyAB divides by it)", key)
        if data.names is not None and len(data.names) < data.classes:
            default = "" if section.has("classes") else " (Darknet's default: the file sets no classes=)"
            raise section.error(
                f"names={section.get_str('names')}: {len(data.names)} names for classes={data.classes}{default}", "names"
            )
        return data

    def class_labels(self) -> list[str]:
        """The `labels=` file's lines (a classifier's classes, matched in image paths): at least `classes` of them."""
        if self.labels is None:
            raise CfgError(f"{self.path}: needs 'labels='")
        labels = read_names(self.labels)
        if len(labels) < self.classes:
            raise DarknetError(f"{self.labels}: {len(labels)} labels for classes={self.classes}")
        return labels


def _file(section: Section, key: str, required: bool) -> Path | None:
    """The file named by `key`: found (see module doc), or as written if not required."""
    if not section.has(key):
        if required:
            raise CfgError(f"{section.path}: needs '{key}='")
        return None
    try:
        return section.get_path(key)
    except CfgError:
        if required:
            raise
        return Path(os.path.expanduser(section.get_path_text(key)))


def _folder(section: Section, key: str, default: str | None) -> Path:
    """A folder named by `key` (spaces kept, see Section.get_path_text): the first existing candidate, else as written (made later)."""
    written = Path(os.path.expanduser(section.get_path_text(key, default)))
    if written.is_absolute():
        return written
    here = Path(section.path).resolve().parent
    for candidate in (written, here / written, here.parent / written):
        if candidate.is_dir():
            return candidate
    return written


def read_lines(path: str | Path, what: str) -> list[str]:
    """The lines of a text file (UTF-8, a BOM and \\r dropped); a missing or unreadable file is one line naming `what`.

    Only a regular file is read (a FIFO or a device is refused at once,
    `read_regular_file`); a NUL byte, the mark of a binary file, is an error
    naming its line.  Other bytes that are not UTF-8 are replaced.
    """
    text = decode_text(read_regular_file(path, what), path, DarknetError, errors="replace")
    return [line.rstrip("\r") for line in text.split("\n")]


def read_list(path: str | Path) -> list[Path]:
    """A list file (Darknet's `get_paths`): one image path a line, as written.

    Blank lines, which Darknet would try to open as images, are skipped;
    surrounding spaces and Windows line ends are dropped.
    """
    paths = [Path(line.strip()) for line in read_lines(path, "list file") if line.strip()]
    if not paths:
        raise DarknetError(f"{path}: list file has no image paths")
    return paths


def read_names(path: str | Path) -> list[str]:
    """A names file (Darknet's `get_labels`): one class name a line, in class order."""
    lines = read_lines(path, "names file")
    if lines and lines[-1] == "":
        lines.pop()  # the newline ending the last name
    if not lines:
        raise DarknetError(f"{path}: names file is empty")
    return lines
