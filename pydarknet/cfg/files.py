"""Reading the text files a user names: cfgs, .data files and the files they name.

Darknet `fopen`s whatever it is given: a FIFO blocks it forever, `/dev/zero`
never ends.  Here only regular files are read: the file is opened without
blocking and refused at once, in one line, when it is anything else (a FIFO,
a device, a folder).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pydarknet.errors import CfgError, DarknetError

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
          (stat.S_ISSOCK, "a socket"))


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    return next((name for test, name in _KINDS if test(mode)), "not a file")


def read_regular_file(path: str | Path, what: str, error: type[DarknetError] = DarknetError) -> bytes:
    """The bytes of `path`; `error` naming `what` if it is missing, unreadable or not a regular file.

    The file is opened non-blocking (a FIFO without a writer would block the
    open) and checked on the open descriptor, so it cannot change in between.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # non-inheritable (PEP 446)
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except OSError as err:
        raise error(f"{path}: cannot read {what}: {err.strerror or err}") from None
    except ValueError:  # a NUL byte (or an unencodable character) in the name
        raise error(f"{path!r}: cannot read {what}: not a possible file name") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{path}: {what} is not a regular file ({file_kind(mode)})")
        with open(fd, "rb", closefd=False) as f:
            return f.read()
    except OSError as err:
        raise error(f"{path}: cannot read {what}: {err.strerror or err}") from None
    finally:
        os.close(fd)


def decode_text(data: bytes, path: str | Path, error: type[DarknetError] = CfgError, errors: str = "strict") -> str:
    """UTF-8 text (a BOM dropped); `error` naming the line of the first byte that is not text.

    A NUL byte is never text; bytes that are not UTF-8 are an error too,
    unless `errors="replace"` (lenient files: names, lists, labels).
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8", errors)
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise error(f"{path}:{line}: not a text file (byte {data[err.start]:#04x} is not UTF-8)") from None
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise error(f"{path}:{line}: not a text file (a NUL byte)")
    return text


def read_text_file(path: str | Path, what: str, error: type[DarknetError] = CfgError) -> str:
    """A regular file's UTF-8 text (see `read_regular_file`, `decode_text`)."""
    return decode_text(read_regular_file(path, what, error), path, error)
