"""Progress of a long loop on stderr: tqdm's bar on a terminal, plain lines in a log.

A bar redrawn with carriage returns is noise in a file or a CI log, so when
stderr is not a terminal the progress is a line `valid: 1200/5000 img (24%)`
every `PLAIN_INTERVAL` seconds (none for a loop that ends sooner).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from tqdm import tqdm

PLAIN_INTERVAL = 10.0  # seconds between two plain lines


class PlainProgress:
    """tqdm's `update` counting, reported as a plain line every `interval` seconds."""

    def __init__(self, total: int | None, desc: str, unit: str, *, interval: float = PLAIN_INTERVAL,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.stream = stream or sys.stderr
        self.clock = clock
        self.count = 0
        self.last = clock()

    def update(self, n: int = 1) -> None:
        self.count += n
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            of = f"/{self.total} {self.unit} ({100 * self.count / self.total:.0f}%)" if self.total else f" {self.unit}"
            print(f"{self.desc}: {self.count}{of}", file=self.stream, flush=True)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        return None


def progress(total: int | None, desc: str | None, unit: str) -> tqdm | PlainProgress:
    """A progress counter (`with progress(...) as bar: bar.update(n)`): tqdm when stderr is a terminal, else plain
    lines; nothing shown when `desc` is None."""
    if desc is None or sys.stderr.isatty():
        return tqdm(total=total, desc=desc, unit=unit, disable=desc is None)
    return PlainProgress(total, desc, unit)
