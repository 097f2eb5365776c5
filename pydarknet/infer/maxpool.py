"""The inference model's 2x2 max pool: Darknet's `size=2 stride=2` [maxpool] as two elementwise maxima.

PyTorch's CPU max_pool2d always computes the argmax indices too (int64, twice
the output's bytes), which inference never reads: yolov2-tiny's first pool
at 608 took 2.5 ms against ONNX Runtime's 1.0.  On a channels_last input an
image's row pairs and then column pairs are plain strided views, so
`max(max(rows), max(columns))` reads the input once and writes half of it
once: 0.3-0.8x max_pool2d's time on yolov2's and yolov2-tiny's pools
(tools/BENCHMARKS.md, session 10), the same values (a maximum is exact).
For inference only: its gradient would split ties where Darknet's backward
picks one index.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pydarknet.layers.maxpool import Maxpool


def suits(layer: Maxpool) -> bool:
    """A plain `size=2 stride=2` max pool whose windows need no padding (even input sides)."""
    _, h, w = layer.in_shapes[0]
    return (type(layer) is Maxpool and not layer.maxpool_depth and layer.blur is None and layer.size == 2
            and layer.pool_stride == (2, 2) and not any(layer.pads) and h % 2 == 0 and w % 2 == 0)


def max_pool_2x2(x: Tensor) -> Tensor:
    """F.max_pool2d(x, 2, 2) for even-sided x, channels_last in and out (other layouts work, slower)."""
    n, c, h, w = x.shape
    pairs = x.permute(0, 2, 3, 1).reshape(n, h // 2, 2, w // 2, 2 * c)  # (row pair, column pair x channel)
    rows = torch.maximum(pairs[:, :, 0], pairs[:, :, 1])
    return torch.maximum(rows[..., :c], rows[..., c:]).permute(0, 3, 1, 2)
