"""Transliterations of Darknet's C loops that several test modules check layers against."""

from __future__ import annotations

import numpy as np


def reorg_cpu(x: np.ndarray, w: int, h: int, c: int, stride: int, forward: int) -> np.ndarray:
    """src/blas.c:reorg_cpu, batch 1, as written in C."""
    out = np.zeros(x.size, dtype=x.dtype)
    out_c = c // (stride * stride)
    for k in range(c):
        for j in range(h):
            for i in range(w):
                in_index = i + w * (j + h * k)
                c2, offset = k % out_c, k // out_c
                w2, h2 = i * stride + offset % stride, j * stride + offset // stride
                out_index = w2 + w * stride * (h2 + h * stride * c2)
                if forward:
                    out[out_index] = x[in_index]
                else:
                    out[in_index] = x[out_index]
    return out
