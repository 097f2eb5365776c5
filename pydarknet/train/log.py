"""The training log `NAME_log.csv` (one row per iteration) — a record, never a reason to lose the run.

Every run appends its rows, each with the run's id (its start time and a
random tag), so the file keeps every run that wrote into the folder: a resumed
run adds its rows after those of the run it continues (iterations that the
older run did after its last checkpoint appear twice, once per run), a fresh
run after an old one adds its rows after the old ones.  `history` reads back
what the current run's chart shows (a row cut short by a kill is left out).
A file with another header (an older pydarknet's log) is moved aside to
`NAME_log.<run id>.csv`, not overwritten.

A log that cannot be opened or written (a full disk, a read-only folder) is
one warning, after which the run trains and saves its checkpoints without it.
"""

from __future__ import annotations

import contextlib
import csv
import secrets
import time
import warnings
from pathlib import Path
from typing import TextIO

LOG_FIELDS = ["run", "iteration", "loss", "avg_loss", "rate", "seconds", "images", "map"]


def new_run_id() -> str:
    """A run's id: when it started, and a random tag for two runs started in the same second."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


class TrainingLog:
    """The CSV log, open for appending the rows of the run `run_id` (see the module doc)."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self.file: TextIO | None = None
        try:
            if path.exists() and _header(path) != LOG_FIELDS:
                aside = path.with_name(f"{path.stem}.{run_id}{path.suffix}")
                path.rename(aside)
                warnings.warn(f"{path}: not a log of this pydarknet's columns; kept as {aside.name}, a new log begins")
            new = not path.exists() or path.stat().st_size == 0
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(path, "a", newline="")
            if new:
                self._write(LOG_FIELDS)
            elif not _ends_a_line(path):  # a run killed while it wrote a row: that row stays apart
                self.file.write("\n")
        except (OSError, UnicodeDecodeError) as err:
            self._give_up(err)

    def row(self, iteration: int, loss: str, avg_loss: str, rate: str, seconds: str, images: int, map: str = "") -> None:
        """One iteration's row (`map`: the mAP measured after it, if any)."""
        self._write([self.run_id, iteration, loss, avg_loss, rate, seconds, images, map])

    def _write(self, values: list[object]) -> None:
        if self.file is None:
            return
        try:
            csv.writer(self.file).writerow(values)
            self.file.flush()
        except OSError as err:
            self._give_up(err)

    def close(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except OSError as err:
                self._give_up(err)
        self.file = None

    def _give_up(self, err: BaseException) -> None:
        warnings.warn(f"{self.path}: cannot write the training log ({getattr(err, 'strerror', None) or err}); training goes on without it")
        if self.file is not None:
            with contextlib.suppress(OSError):  # closing flushes, which fails again on a full disk
                self.file.close()
        self.file = None


def _ends_a_line(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, 2)
        return f.read(1) == b"\n"


def _header(path: Path) -> list[str]:
    with open(path, newline="", errors="replace") as f:
        return next(csv.reader(f), [])


def history(path: Path) -> list[dict[str, str]]:
    """The rows behind the last run's state, one per iteration up to its last: for each iteration the row
    of the latest run that logged it.  A resumed run's own rows then follow the rows of the runs it
    continues up to where it started; a fresh run's replace the older runs' from iteration 1."""
    with open(path, newline="") as f:
        rows = [row for row in csv.DictReader(f)  # a row cut by a kill has fields missing
                if None not in row and None not in row.values() and row["iteration"].isdigit()]
    if not rows:
        return []
    last = int(rows[-1]["iteration"])
    latest = {int(row["iteration"]): row for row in rows}
    return [latest[i] for i in sorted(latest) if i <= last]
