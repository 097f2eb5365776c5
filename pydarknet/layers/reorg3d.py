"""[reorg3d]: AlexeyAB's REORG layer (src/reorg_layer.c; AlexeyAB's `[reorg]` is REORG_OLD, reorg_old_layer.c).

Both call blas.c reorg_cpu, the same function as pjreddie's (parameters
renamed), but with different sizes.  AlexeyAB's `[reorg]` (REORG_OLD)
passes the layer's input sizes, exactly as pjreddie's forward_reorg_layer:
pydarknet's `Reorg` is both.  `[reorg3d]` (forward_reorg_layer) passes the
*output* sizes, which makes it a true space-to-depth:

- forward (reverse=0, reorg_cpu forward=0): output (C*s*s, H/s, W/s),
  out[(dy*s + dx)*C + c, j, i] = in[c, j*s + dy, i*s + dx] (the offset is
  the slow channel index: not pixel_unshuffle's c*s*s + dy*s + dx);
- reverse=1 (reorg_cpu forward=1 with output sizes (W*s, H*s, C/(s*s))):
  the input read as (C/s², H*s, W*s), written as if the output were
  (C/s⁴, H*s², W*s²) by the inverse of the map above, i.e. the forward
  reorg3d's inverse applied to views of the buffers, then read back as
  (C/s², H*s, W*s).  It needs C divisible by s⁴.

make_reorg_layer: out = (w/s, h/s, c*s*s), or (w*s, h*s, c/(s*s)) reversed;
sizes that do not divide would make reorg_cpu read with the wrong row
length: refused.
"""

from __future__ import annotations

from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.base import Layer, Shape
from pydarknet.layers.reorg import depth_to_space, space_to_depth


class Reorg3d(Layer):
    kind = "reorg3d"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        self.stride = section.get_int("stride", 1)
        self.reverse = section.get_int("reverse", 0)
        if self.stride < 1:
            raise section.error(f"stride={self.stride} must be at least 1", "stride")

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        c, h, w = in_shapes[0]
        s = self.stride
        if self.reverse:
            if c % (s**4):
                raise self.section.error(f"reverse=1 with stride={s} needs channels ({c}) divisible by {s**4} "
                                         "(reorg_cpu reads the buffers as C/s^4 planes)")
            return (c // (s * s), h * s, w * s)
        if h % s or w % s:
            raise self.section.error(f"stride={s} needs height and width divisible by {s} (input is {c}x{h}x{w})")
        return (c * s * s, h // s, w // s)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        s = self.stride
        if not self.reverse:
            return space_to_depth(x, s)
        # reorg_cpu(forward=1, out sizes): out viewed (C/s^4, H s^2, W s^2) = depth_to_space(in viewed (C/s^2, H s, W s))
        y = depth_to_space(x.reshape(b, c // (s * s), h * s, w * s), s)
        return y.reshape(b, c // (s * s), h * s, w * s)

    def describe(self) -> str:
        return f"            /{self.stride:2d}"
