"""[scale_channels]: AlexeyAB's per-channel (or per-pixel) scaling (src/scale_channels_layer.c).

The output has the shape of the `from=` layer (make_scale_channels_layer:
out = from's (C, H, W)); forward_scale_channels_layer multiplies it by the
input: by default the input is (C, 1, 1) and scales each channel
(out[c, y, x] = in[c] * from[c, y, x]); with `scale_wh=1` the input is
(1, H, W) and scales each pixel of every channel (out[c, y, x] = in[y, x] *
from[c, y, x]).  Then the activation, with the scalar `activate_array`
(swish/mish/... are 0 on AlexeyAB's CPU: refused).
"""

from __future__ import annotations

from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.activations import SCALAR_ACTIVATE, read_activation
from pydarknet.layers.base import Layer, Shape
from pydarknet.layers.route import resolve_index


class ScaleChannels(Layer):
    kind = "scale_channels"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        source = resolve_index(section, "from", section.get_int("from"), index)
        super().__init__(section, index, (index - 1, source))
        self.scale_wh = section.get_int("scale_wh", 0)
        self.activation = read_activation(section, "linear", SCALAR_ACTIVATE | {"relu6"})

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        (c, h, w), (fc, fh, fw) = in_shapes
        if self.scale_wh and (c != 1 or (h, w) != (fh, fw)):
            raise self.section.error(f"scale_wh=1 needs a 1 x {fw} x {fh} input (W x H x C), got {w} x {h} x {c}")
        if not self.scale_wh and ((h, w) != (1, 1) or c != fc):
            raise self.section.error(f"[scale_channels] needs a 1 x 1 x {fc} input (W x H x C) to scale layer "
                                     f"{self.sources[1]}, got {w} x {h} x {c}")
        return in_shapes[1]

    def forward(self, x: Tensor, other: Tensor) -> Tensor:
        # scale_wh: in (N, 1, H, W) broadcasts over channels; else in (N, C, 1, 1) over pixels
        return self.activation(x * other)

    def describe(self) -> str:
        return f"{self.sources[1]}{' wh' if self.scale_wh else ''}"
