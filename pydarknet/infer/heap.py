"""The C heap under CPU inference (glibc's malloc; elsewhere these do nothing).

PyTorch's CPU tensors come from malloc, and glibc serves a block larger than
its mmap threshold (at most 32 MiB by its own adjustment) with a fresh
mmap: every page of it faults and is zeroed again at each forward.  yolov2
at 608 writes a 45 MiB first activation: its convolution took 13.8 ms per
image that way against 2.4 ms in reused memory, the gap to ONNX Runtime,
which keeps its own arena (tools/BENCHMARKS.md, session 10).
`keep_freed_blocks` raises both thresholds once per process so that freed
activations stay in the heap for the next forward (the InferenceModel calls
it at its second forward: a one-image run keeps glibc's defaults, whose
peak RSS is lower: yolov2's detect, 60 MiB); `release_freed_memory`
gives the heap's free pages back to the OS after a one-off freeing.
"""

from __future__ import annotations

import ctypes
import functools
import os

# blocks up to this size come from the heap (yolov2 at 1024: a 128 MiB first activation)
MMAP_THRESHOLD = 256 << 20
# free memory at the heap's top kept for reuse, not returned to the OS
TRIM_THRESHOLD = 512 << 20
# mallopt's parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    libc = ctypes.CDLL(None)
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def _user_tuned() -> bool:
    """Whether the environment already tunes glibc's malloc (its own variables or tunables): theirs stands."""
    return any(name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")) \
        or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "")


@functools.cache
def keep_freed_blocks() -> None:
    """Let freed blocks up to MMAP_THRESHOLD stay in the heap for reuse (process-wide, once): the CPU
    InferenceModel's activations are then allocated from memory already mapped."""
    libc = _glibc()
    if libc is not None and not _user_tuned():
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)


def release_freed_memory() -> None:
    """Give the heap's free pages back to the OS (malloc_trim).

    Prepacking a layer frees its unpacked weights, and glibc, having raised its
    mmap threshold as large blocks came and went, keeps such blocks in its heap:
    yolov2's `detect` peaked 95 MiB higher without this.
    """
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
