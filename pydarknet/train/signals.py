"""What a training run does when it is told to stop: save a backup that resumes exactly, then exit.

Ctrl-C (SIGINT), SIGTERM (what `kill`, schedulers and container runtimes
send before SIGKILL), SIGHUP (the terminal went away) and SIGUSR1 (Slurm's
`--signal=USR1@SECONDS` warning) all do the same: the current iteration
finishes, `NAME.backup` is saved with its resume state, and the run raises
`pydarknet.errors.StopRequested`, which the CLI turns into exit status 128 + the signal's
number (130, as for Ctrl-C, when another rank received it).  A second signal stops at once (the previous backup is whole: saves
are atomic).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1") if hasattr(signal, name))


class StopFlag:
    """The first stop signal received (None until one arrives)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def is_set(self) -> bool:
        return self.signum is not None

    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


@contextlib.contextmanager
def deferred_stop() -> Iterator[StopFlag]:
    """While training: the first stop signal sets the flag (checked between iterations), the second interrupts."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):  # type: ignore[no-untyped-def]
        if flag.is_set():
            raise KeyboardInterrupt
        flag.signum = signum

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield flag
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)
