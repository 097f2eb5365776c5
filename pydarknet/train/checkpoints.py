"""Darknet's checkpoint schedule and files, written atomically.

examples/detector.c:train_detector saves `backup/NAME.backup` every 100
iterations, `backup/NAME_N.weights` when N % 10000 == 0 or (N < 1000 and
N % 100 == 0), and `backup/NAME_final.weights` at the end (NAME = the cfg's
file name without extension).  All are plain Darknet .weights files that the
C Darknet loads.

Darknet's .weights do not hold the momentum buffers, the running average
loss or the random state, so a Darknet resume is not the same run.  Beside
each `.backup` pydarknet also writes `NAME.backup.state` (torch.save of the
optimizer state and loop counters); resuming from a `.backup` with its
state file continues the very same run.  Both are written to a temporary
file and renamed, the state first, so a kill at any moment leaves the
previous pair usable.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from pydarknet.weights import weights_bytes, write_atomic


def scheduled_names(base: str, batch: int) -> list[str]:
    """The checkpoint file names Darknet writes after iteration `batch` (1-based count)."""
    names = []
    if batch % 100 == 0:
        names.append(f"{base}.backup")
    if batch % 10000 == 0 or (batch < 1000 and batch % 100 == 0):
        names.append(f"{base}_{batch}.weights")
    return names


def state_path(backup: Path) -> Path:
    return backup.with_name(backup.name + ".state")


def save_checkpoint(net, path: Path, state: dict | None = None) -> None:  # type: ignore[no-untyped-def]
    """Write `net` as Darknet weights at `path` (and the resume state beside a .backup)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if state is not None:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        write_atomic(state_path(path), buffer.getvalue())
    write_atomic(path, weights_bytes(net))


def load_state(backup: Path) -> dict | None:
    """The resume state saved beside a .backup, if it is there."""
    path = state_path(backup)
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)
