"""[convolutional]: Darknet's conv + optional batch norm + activation.

src/parser.c:parse_convolutional and src/convolutional_layer.c.  `pad=1`
means padding = size/2 (so a 1x1 conv with pad=1 has no padding) and
overrides `padding`.  With batch_normalize the conv has no bias: Darknet's
`biases` are the batch norm's shift.  Weights file order:
biases, [scales, rolling_mean, rolling_variance], weights.

AlexeyAB's `share_index=` (TridentNet): the layer computes with another
earlier [convolutional]'s weights, biases and batch norm (make_convolutional_layer
points `l.weights`, `l.biases`, `l.scales`, `l.rolling_*` at the shared layer's),
with its own stride, padding, dilation and activation, and has nothing of
its own in the weights file (load_weights_upto/save_weights_upto skip
`l.share_layer != NULL`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pydarknet.cfg.section import Section
from pydarknet.layers.activations import read_activation
from pydarknet.layers.base import Layer, Shape, uninitialised
from pydarknet.layers.batchnorm import BatchNorm
from pydarknet.layers.route import resolve_index


class Convolutional(Layer):
    kind = "convolutional"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        c = shapes[index - 1][0]
        self.filters = section.get_int("filters", 1)
        self.size = section.get_int("size", 1)
        # AlexeyAB parse_convolutional: stride_x/stride_y, each falling back on `stride` when missing (or < 1).
        self.stride = section.get_int("stride", 1)
        stride_x = section.get_int("stride_x", -1)
        stride_y = section.get_int("stride_y", -1)
        self.stride_x = stride_x if stride_x >= 1 else self.stride
        self.stride_y = stride_y if stride_y >= 1 else self.stride
        # AlexeyAB: `if (size == 1) dilation = 1;`; im2col_cpu_ext pads by pad*dilation.
        self.dilation = section.get_int("dilation", 1)
        if self.size == 1:
            self.dilation = 1
        self.antialiasing = section.get_int("antialiasing", 0)
        pad = section.get_int("pad", 0)
        padding = section.get_int("padding", 0)
        self.groups = section.get_int("groups", 1)
        self.padding = self.size // 2 if pad else padding
        self.activation = read_activation(section, "logistic")
        self.batch_normalize = section.get_int("batch_normalize", 0)
        self.flipped = section.get_int("flipped", 0)
        section.get_int("dot", 0)
        # AlexeyAB parse_convolutional: share_index >= 0 is absolute, other values (but the default) relative.
        share = section.get_int("share_index", _NO_SHARE)
        self.share_index = None if share == _NO_SHARE else resolve_index(section, "share_index", share, index)
        _refuse_alexeyab_only(section)
        for key, value in (
            ("filters", self.filters), ("size", self.size), ("stride", self.stride), ("stride_x", self.stride_x),
            ("stride_y", self.stride_y), ("groups", self.groups), ("dilation", self.dilation),
        ):
            if value < 1:
                raise section.error(f"{key}={value} must be at least 1", key)
        if self.antialiasing not in (0, 1, 2):
            raise section.error(f"antialiasing={self.antialiasing}: AlexeyAB's Darknet knows 0, 1 (3x3 blur) and 2 (2x2 blur)",
                                "antialiasing")
        if self.padding < 0:
            raise section.error(f"padding={self.padding} must not be negative", "padding")
        if c % self.groups or self.filters % self.groups:
            raise section.error(
                f"groups={self.groups} must divide the input channels ({c}) and filters ({self.filters})", "groups"
            )
        # With antialiasing the convolution runs at stride 1 and a fixed depthwise blur
        # (make_convolutional_layer's l.input_layer) takes the stride.
        conv_stride = (1, 1) if self.antialiasing else (self.stride_y, self.stride_x)
        self.conv = uninitialised(nn.Conv2d(
            c, self.filters, self.size, conv_stride, self.padding * self.dilation, dilation=self.dilation,
            groups=self.groups, bias=not self.batch_normalize, device="meta",
        ))
        self.bn = BatchNorm(self.filters) if self.batch_normalize else None
        self.blur = AntialiasingBlur(self.filters, self.antialiasing, self.stride_x, self.stride_y) if self.antialiasing else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Darknet's init: weights ~ N(0, 2/fan_in), biases 0 (make_convolutional_layer)."""
        fan_in = self.conv.in_channels // self.groups * self.size * self.size
        with torch.no_grad():
            self.conv.weight.normal_(0.0, math.sqrt(2.0 / fan_in))
            if self.conv.bias is not None:
                self.conv.bias.zero_()

    def link(self, layers: Sequence[Layer]) -> None:
        """share_index: take the shared layer's parameters (make_convolutional_layer's pointers)."""
        if self.share_index is None:
            return
        owner = layers[self.share_index]
        if not isinstance(owner, Convolutional):
            raise self.section.error(f"share_index: layer {self.share_index} is [{owner.section.kind}], not a "
                                     "[convolutional] layer", "share_index")
        if (owner.size, owner.conv.in_channels, owner.filters, owner.groups) != (
                self.size, self.conv.in_channels, self.filters, self.groups):
            raise self.section.error(f"share_index: layer {self.share_index} has other size, channels, filters or groups "
                                     "(AlexeyAB: \"Layer size, nweights, channels or filters don't match for the "
                                     "share_layer\")", "share_index")
        if owner.batch_normalize != self.batch_normalize:
            # AlexeyAB then computes one thing unfused (this layer's own batch_normalize flag on the shared
            # biases) and another after fuse_conv_batchnorm (the shared layer's folded weights).
            raise self.section.error(f"share_index: batch_normalize={self.batch_normalize} but layer {self.share_index} "
                                     f"has batch_normalize={owner.batch_normalize}; AlexeyAB's Darknet gives different "
                                     "numbers with and without fusing then, so it is refused", "share_index")
        self.conv.weight = owner.conv.weight
        self.conv.bias = owner.conv.bias
        self.bn = owner.bn

    def conv_shape(self, h: int, w: int) -> tuple[int, int]:
        """convolutional_layer.c convolutional_out_height/width: (h + 2*pad - size)/stride_y + 1 (stride 1 with antialiasing).

        The formula ignores `dilation`, while im2col_cpu_ext fills (h + 2*pad*dilation - (dilation*(size-1) + 1))/stride + 1
        rows: when the two differ the C's gemm reads the im2col buffer with the wrong width, so that is refused.
        """
        sy, sx = self.conv.stride
        out_h = (h + 2 * self.padding - self.size) // sy + 1
        out_w = (w + 2 * self.padding - self.size) // sx + 1
        if self.dilation > 1:
            span = self.dilation * (self.size - 1) + 1
            col_h = (h + 2 * self.padding * self.dilation - span) // sy + 1
            col_w = (w + 2 * self.padding * self.dilation - span) // sx + 1
            if (col_h, col_w) != (out_h, out_w):
                raise self.section.error(
                    f"dilation={self.dilation} with size={self.size} padding={self.padding}: AlexeyAB's Darknet sizes the output "
                    f"{out_w}x{out_h} but its im2col fills {col_w}x{col_h} (only padding = (size-1)/2, e.g. pad=1 with an odd "
                    "size, is consistent)", "dilation",
                )
        return out_h, out_w

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        _, h, w = in_shapes[0]
        out_h, out_w = self.conv_shape(h, w)
        if self.blur is not None:
            out_h, out_w = self.blur.output_size(out_h, out_w)
        return (self.filters, out_h, out_w)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        if self.bn is not None:
            y = self.bn(y)
        y = self.activation(y)
        return self.blur(y) if self.blur is not None else y

    def biases(self) -> Tensor:
        return self.bn.bias if self.bn is not None else self.conv.bias  # type: ignore[return-value]

    def darknet_tensors(self, transpose: bool = False, loading: bool = False) -> list[Tensor]:
        if self.share_index is not None:
            return []
        n = self.numload if (loading and self.numload) else self.filters
        weight = self.conv.weight[:n]
        if self.flipped:  # stored as a (c*size*size) x n matrix
            weight = weight.reshape(n, -1).t()
        tensors = [self.biases()[:n]]
        if self.bn is not None and not (loading and self.dontloadscales):
            tensors += [self.bn.weight[:n], self.bn.running_mean[:n], self.bn.running_var[:n]]
        return tensors + [weight]

    def bflops(self) -> float:
        """make_convolutional_layer: 2 * nweights * out_h * out_w, nweights = (c/groups)*n*size*size; with
        antialiasing out_h/out_w are the stride-1 convolution's (the blur's own BFLOPs are not counted)."""
        h, w = self.conv_shape(*self.in_shapes[0][1:]) if self.in_shapes else self.out_shape[1:]
        return 2.0 * self.filters * self.size * self.size * (self.conv.in_channels // self.groups) * h * w / 1e9

    def describe(self) -> str:
        """pjreddie's `filters size x size / stride`; AlexeyAB's `filters/groups`, `size/stride_x x stride_y`,
        `(dilation)` and `AA` (make_convolutional_layer's fprintf) when those options are used."""
        if self.groups == 1 and self.dilation == 1 and self.stride_x == self.stride_y and not self.antialiasing:
            return f"{self.filters:5d} {self.size:2d} x{self.size:2d} /{self.stride_x:2d}"
        filters = f"{self.filters:5d}/{self.groups:<3d}" if self.groups > 1 else f"{self.filters:5d}    "
        if self.stride_x != self.stride_y:
            window = f"{self.size:2d}x{self.size:2d}/{self.stride_x:2d}x{self.stride_y:2d}"
        elif self.dilation > 1:
            window = f"{self.size:2d} x{self.size:2d}/{self.stride_x:2d}({self.dilation})"
        else:
            window = f"{self.size:2d} x{self.size:2d}/{self.stride_x:2d}"
        return f"{'AA ' if self.antialiasing else ''}{filters} {window}"


class AntialiasingBlur(nn.Module):
    """AlexeyAB's antialiasing: a fixed depthwise blur after the layer (make_convolutional_layer / make_maxpool_layer).

    `antialiasing=1`: 3x3 kernel [1 2 1; 2 4 2; 1 2 1]/16, padding 1; `antialiasing=2`: 2x2 of 1/4, padding 0;
    stride (stride_y, stride_x) of the host layer, which itself runs at stride 1; bias 0, linear.  Its
    weights are set at build time and are not in the .weights file (load_weights_upto reads only the host's).
    """

    def __init__(self, channels: int, antialiasing: int, stride_x: int, stride_y: int) -> None:
        super().__init__()
        self.size, self.pad = (2, 0) if antialiasing == 2 else (3, 1)
        self.stride = (stride_y, stride_x)
        if self.size == 2:
            kernel = torch.full((2, 2), 1 / 4.0)
        else:
            kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16.0
        self.register_buffer("weight", kernel.expand(channels, 1, self.size, self.size).clone(), persistent=False)

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        """convolutional_out_height/width of the blur layer."""
        return (h + 2 * self.pad - self.size) // self.stride[0] + 1, (w + 2 * self.pad - self.size) // self.stride[1] + 1

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight.to(x.dtype), None, self.stride, self.pad, 1, x.shape[1])


_NO_SHARE = -1000000000  # AlexeyAB parse_convolutional: share_index's default

# AlexeyAB's parse_convolutional options that change the numbers and that pydarknet does not implement.
_ALEXEYAB_REFUSED = (
    ("binary", "binary weights (XNOR nets)"), ("xnor", "XNOR nets"), ("bin_output", "binary outputs (XNOR nets)"),
    ("assisted_excitation", "assisted excitation"), ("coordconv", "coordconv"),
    ("sway", "sway (deformable) convolution"),
    ("rotate", "rotate (deformable) convolution"), ("stretch", "stretch (deformable) convolution"),
    ("stretch_sway", "stretch_sway (deformable) convolution"), ("cbn", "cross-iteration batch norm"),
)


_WHICH = {"binary": "pjreddie's and AlexeyAB's", "xnor": "pjreddie's and AlexeyAB's"}


def _refuse_alexeyab_only(section: Section) -> None:
    """Refuse the [convolutional] options of AlexeyAB's Darknet that pydarknet does not implement."""
    for key, what in _ALEXEYAB_REFUSED:
        if key in section.options:
            value = (section.get_str(key, "") or "").strip()
            if value not in ("0", "0.0"):
                which = _WHICH.get(key, "AlexeyAB's")
                raise section.error(f"{key}={value} ({what}) is in {which} Darknet; pydarknet does not implement it", key)
