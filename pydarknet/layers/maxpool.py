"""[maxpool]: Darknet's max pooling (src/maxpool_layer.c), and AlexeyAB's [local_avgpool].

Defaults: size = stride, padding = size - 1.  Output size is
(w + padding - size) / stride + 1 and the window starts at -padding/2, so
`size=2 stride=2` gives ceil(w/2) and tiny-yolo's `size=2 stride=1` keeps the
size by reaching one cell past the right and bottom edges.  Darknet ignores
taps outside the image (-FLT_MAX), which is padding with -inf here: not zero
padding (wrong for negative activations), and constant rather than
replicate padding so that it compiles and differentiates everywhere.

AlexeyAB (parse_maxpool, make_maxpool_layer, forward_maxpool_layer):
`stride_x`/`stride_y` (default `stride`; out_w uses stride_x, out_h
stride_y); `maxpool_depth=1` pools across channels instead: output
(out_channels, h, w), channel g the maximum of input channels g, g +
out_channels, g + 2*out_channels, ... (size, stride and padding unused);
`antialiasing` as in [convolutional]: the pooling runs at stride 1 and a
fixed depthwise blur takes the stride (no weights in the file).
`[local_avgpool]` (`[local_avg]`, parse_local_avgpool,
forward_local_avgpool_layer): the same windows, the average of the taps
inside the image (padding not counted).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.base import Layer, Shape
from pydarknet.layers.convolutional import AntialiasingBlur


class Maxpool(Layer):
    kind = "maxpool"
    average = False

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        self.stride = section.get_int("stride", 1)
        self.stride_x = section.get_int("stride_x", self.stride)
        self.stride_y = section.get_int("stride_y", self.stride)
        self.size = section.get_int("size", self.stride)
        self.padding = section.get_int("padding", self.size - 1)
        if self.average:
            self.maxpool_depth, self.out_channels, self.antialiasing = 0, 1, 0
        else:
            self.maxpool_depth = section.get_int("maxpool_depth", 0)
            self.out_channels = section.get_int("out_channels", 1)
            self.antialiasing = section.get_int("antialiasing", 0)
            if section.get_int("maxpool_zero_nonmax", 0):
                raise section.error("maxpool_zero_nonmax=1 (zero the non-maximum inputs) is AlexeyAB's Darknet's; "
                                    "pydarknet does not implement it", "maxpool_zero_nonmax")
        if min(self.stride, self.stride_x, self.stride_y, self.size) < 1 or self.padding < 0:
            raise section.error(f"size={self.size} stride={self.stride_x}x{self.stride_y} padding={self.padding} "
                                "is not a valid window")
        if self.maxpool_depth and self.out_channels < 1:
            raise section.error(f"out_channels={self.out_channels} must be at least 1", "out_channels")
        if self.antialiasing not in (0, 1, 2):
            raise section.error(f"antialiasing={self.antialiasing}: AlexeyAB's Darknet knows 0, 1 and 2", "antialiasing")
        # make_maxpool_layer: with antialiasing the pooling runs at stride 1, the blur takes the stride
        self.pool_stride = (1, 1) if self.antialiasing else (self.stride_y, self.stride_x)
        self.blur = None
        if self.antialiasing:
            c = shapes[index - 1][0]
            self.blur = AntialiasingBlur(self.out_channels if self.maxpool_depth else c, self.antialiasing,
                                         self.stride_x, self.stride_y)
        self.pads = (0, 0, 0, 0)
        self.pool_shape: Shape = (0, 0, 0)

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        c, h, w = in_shapes[0]
        if self.maxpool_depth:
            self.pool_shape = (self.out_channels, h, w)
        else:
            sy, sx = self.pool_stride
            out_h = (h + self.padding - self.size) // sy + 1
            out_w = (w + self.padding - self.size) // sx + 1
            # padding actually read by the windows: left/top padding/2, then
            # whatever the last window reaches past the right/bottom edge.
            lead = self.padding // 2
            self.pads = (
                lead, max(0, (out_w - 1) * sx + self.size - lead - w),
                lead, max(0, (out_h - 1) * sy + self.size - lead - h),
            )
            self.pool_shape = (c, out_h, out_w)
        if self.blur is not None:
            if self.blur.weight.shape[0] != self.pool_shape[0]:
                raise self.section.error(f"antialiasing was built for {self.blur.weight.shape[0]} channels, the input has {c}")
            return (self.pool_shape[0], *self.blur.output_size(*self.pool_shape[1:]))
        return self.pool_shape

    def _pool(self, x: Tensor) -> Tensor:
        if self.maxpool_depth:
            # forward_maxpool_layer, maxpool_depth branch: out[g] = max_k x[k], k = g, g + out_c, ... < c
            c, g = x.shape[1], self.out_channels
            out = []
            for j in range(g):
                taps = x[:, j:c:g]
                out.append(taps.amax(dim=1, keepdim=True) if taps.shape[1] else torch.full_like(x[:, :1], -3.4028234663852886e38))
            return torch.cat(out, dim=1)
        if any(self.pads):
            x = F.pad(x, self.pads, value=float("-inf"))
        return F.max_pool2d(x, self.size, self.pool_stride)

    def forward(self, x: Tensor) -> Tensor:
        y = self._pool(x)
        return self.blur(y) if self.blur is not None else y

    def _alexeyab(self) -> bool:
        return bool(self.maxpool_depth or self.antialiasing or self.stride_x != self.stride_y or self.average)

    def bflops(self) -> float:
        """pjreddie prints none for a max pool: 0 unless an AlexeyAB option is used (then `alexeyab_bflops`)."""
        return self.alexeyab_bflops() if self._alexeyab() else 0.0

    def alexeyab_bflops(self) -> float:
        """AlexeyAB make_maxpool_layer, for every [maxpool] and [local_avgpool]: size*size*c*out_h*out_w."""
        c = self.in_shapes[0][0] if self.in_shapes else 0
        _, h, w = self.pool_shape
        return self.size * self.size * c * h * w / 1e9

    def describe(self) -> str:
        """pjreddie's `size x size / stride`; AlexeyAB's `max-depth`, `sizexsize/sxxsy`, `avg` prefixes when used."""
        if not self._alexeyab():
            return f"      {self.size:2d} x{self.size:2d} /{self.stride:2d}"
        aa = "AA " if self.antialiasing else ""
        name = "avg" if self.average else ("max-depth" if self.maxpool_depth else "max")
        if self.stride_x != self.stride_y:
            return f"{aa}{name} {self.size:2d}x{self.size:2d}/{self.stride_x:2d}x{self.stride_y:2d}"
        return f"{aa}{name} {self.size:2d}x{self.size:2d}/{self.stride_x:2d}"


class LocalAvgpool(Maxpool):
    """AlexeyAB's [local_avgpool] / [local_avg] (maxpool_layer.c forward_local_avgpool_layer)."""

    kind = "local_avgpool"
    average = True

    def _pool(self, x: Tensor) -> Tensor:
        # avg += input over the taps inside the image; output = avg / counter (counter = number of such taps)
        sy, sx = self.pool_stride
        # (avg_pool2d over explicitly zero-padded input divides by size*size: undone; ONNX has no divisor_override)
        area = self.size * self.size
        total = F.avg_pool2d(F.pad(x, self.pads), self.size, (sy, sx)) * area
        ones = torch.ones((1, 1, x.shape[2], x.shape[3]), dtype=x.dtype, device=x.device)
        count = torch.round(F.avg_pool2d(F.pad(ones, self.pads), self.size, (sy, sx)) * area)
        return total / count
