"""One training at a time per checkpoint name and folder, and what a killed save left behind.

Two runs writing `NAME.backup` (`NAME_last.weights`), `NAME_N.weights` and `NAME_log.csv` into the
same folder would overwrite each other's files in turn.  A run holds an
exclusive lock on `FOLDER/.NAME.lock` for as long as it trains: a POSIX
record lock (lockf), which the kernel releases when the process ends however
it ends, and which the data-loading workers forked from it do not share (a
flock would stay held by them after a SIGKILL of the trainer); the file holds
its pid, which a second run names when it refuses to start.  Runs with other
cfg names share a folder freely, as Darknet's `backup/` is shared.

Every save goes to a temporary `.FILE.XXXXXXXX.tmp` renamed over FILE
(pydarknet.weights.write_atomic); a SIGKILL during a save leaves that
temporary file.  Once the lock is held, the temporary files of this NAME are
removed: no other process can be writing them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Iterator
from pathlib import Path

from pydarknet.errors import DarknetError

try:
    import fcntl
except ImportError:  # Windows: no lockf; runs are not locked there
    fcntl = None  # type: ignore[assignment]


def _temporaries(folder: Path, base: str) -> list[Path]:
    """The leftover temporary files of this checkpoint name's saves (backups, weights, log)."""
    own = re.compile(rf"^\.{re.escape(base)}(\.backup(\.state)?|_(\d+|final|last|best)\.weights|\.weights|_log\.csv)\.\w+\.tmp$")
    return [path for path in folder.iterdir() if own.match(path.name)]


@contextlib.contextmanager
def hold_backup_folder(folder: Path, base: str) -> Iterator[None]:
    """Lock `folder` for the checkpoints named `base` while the block runs, after removing stale temporaries."""
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / f".{base}.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno not in (errno.EACCES, errno.EAGAIN):
                    raise
                other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                raise DarknetError(
                    f"{folder}: another training (pid {other}) is writing {base}'s checkpoints into this folder; "
                    f"wait for it to end, or give this one --backup ANOTHER_FOLDER"
                ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        for path in _temporaries(folder, base):
            path.unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)  # releases the lock
