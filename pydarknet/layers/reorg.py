"""[reorg]: Darknet's passthrough reorganisation (src/reorg_layer.c, blas.c:reorg_cpu).

Not a standard space-to-depth.  `forward_reorg_layer` calls `reorg_cpu` with
the *input* sizes and forward=0, so it reads the input memory (C, H, W) as
(C/s², H·s, W·s), applies a space-to-depth to that, and the result laid out
as (C, H, W) is the output (C·s², H/s, W/s).  Ports that use
`pixel_unshuffle`/`space_to_depth` give different numbers on every Darknet
YOLOv2 checkpoint.  `reverse=1` is the exact inverse mapping.
"""

from __future__ import annotations

from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.base import Layer, Shape


def space_to_depth(x: Tensor, s: int) -> Tensor:
    """(N, C, H, W) -> (N, s*s*C, H/s, W/s), channel (dy*s + dx)*C + c (reorg_cpu forward=0 on output sizes)."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h // s, s, w // s, s).permute(0, 3, 5, 1, 2, 4).reshape(b, s * s * c, h // s, w // s)


def depth_to_space(x: Tensor, s: int) -> Tensor:
    """The inverse of `space_to_depth`: (N, s*s*C, H, W) -> (N, C, H*s, W*s)."""
    b, c, h, w = x.shape
    return x.reshape(b, s, s, c // (s * s), h, w).permute(0, 3, 4, 1, 5, 2).reshape(b, c // (s * s), h * s, w * s)


class Reorg(Layer):
    kind = "reorg"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        self.stride = section.get_int("stride", 1)
        self.reverse = section.get_int("reverse", 0)
        for unsupported in ("flatten", "extra"):
            if section.get_int(unsupported, 0):
                raise section.error(f"{unsupported}=1 is not supported", unsupported)
        if self.stride < 1:
            raise section.error(f"stride={self.stride} must be at least 1", "stride")

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        c, h, w = in_shapes[0]
        s = self.stride
        if self.reverse:
            if c % (s * s):
                raise self.section.error(f"reverse needs channels ({c}) divisible by {s * s}")
            return (c // (s * s), h * s, w * s)
        if h % s or w % s or c % (s * s):
            raise self.section.error(
                f"stride={s} needs height and width divisible by {s} and channels by {s * s} (input is {c}x{h}x{w})"
            )
        return (c * s * s, h // s, w // s)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        s = self.stride
        if self.reverse:
            # Darknet reorg_cpu(forward=1): out[out_index] = x[in_index]
            return depth_to_space(x, s)
        # Darknet reorg_cpu(forward=0) on the input sizes: the input read as (C/s², H s, W s), space-to-depth'ed,
        # the result read back as (C s², H/s, W/s)
        return space_to_depth(x.reshape(b, c // (s * s), h * s, w * s), s).reshape(b, c * s * s, h // s, w // s)

    def describe(self) -> str:
        return f"            / {self.stride}"
