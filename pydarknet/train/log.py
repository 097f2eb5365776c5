"""The training log `NAME_log.csv` (one row per iteration) — a record, never a reason to lose the run.

A log that cannot be opened or written (a full disk, a read-only folder) is
one warning, after which the run trains and saves its checkpoints without it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import warnings
from pathlib import Path
from typing import TextIO

from pydarknet.weights import write_atomic

LOG_FIELDS = ["iteration", "loss", "avg_loss", "rate", "seconds", "images"]


class TrainingLog:
    """The CSV log, open for appending: new at iteration 0; when resuming at `start`, its rows up to `start` kept.

    A run that went on past its last backup logged iterations that now run
    again: their rows are dropped rather than written twice.
    """

    def __init__(self, path: Path, start: int) -> None:
        self.path = path
        self.file: TextIO | None = None
        try:
            rows = [LOG_FIELDS]
            if start > 0 and path.exists():
                with open(path, newline="") as f:
                    rows += [row for row in list(csv.reader(f))[1:] if row and row[0].isdigit() and int(row[0]) <= start]
            text = io.StringIO()
            csv.writer(text).writerows(rows)
            write_atomic(path, text.getvalue().encode())
            self.file = open(path, "a", newline="")
        except (OSError, UnicodeDecodeError) as err:
            self._give_up(err)

    def row(self, *values: object) -> None:
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
