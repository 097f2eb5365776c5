"""[shortcut]: out = activation(input + from...) (src/shortcut_layer.c).

pjreddie: one `from`, out = activation(alpha * input + beta * from); when the
two sizes differ `shortcut_cpu` samples the larger one with a stride and adds
over the common channels; that is reproduced.

AlexeyAB (shortcut_layer.c forward_shortcut_layer, blas.c
shortcut_multilayer_cpu): `from=` may list several layers, all of the same
width and height as the input (parse_shortcut asserts it); with
`weights_type=per_feature` (or `per_layer`) one weight per input
(`nweights` = n + 1: the input's first, then one per `from` layer), with
`per_channel` one per input and channel (`nweights` = (n + 1) * C, laid out
[input's C, first from's C, ...]), initialised to 1 and stored in the
.weights file after the layer's predecessors (load_shortcut_weights).
`weights_normalization=relu` (or `avg_relu`) uses relu(w_i) / (eps + sum_j
relu(w_j)), `softmax` exp(w_i - max) / (eps + sum_j exp(w_j - max)), eps =
0.0001, over the n + 1 weights of the same channel; `none` the raw weights.
out = in * w_0 + sum_i from_i * w_{i+1}, added in `from` order; a `from`
layer with fewer channels adds its channels only (flat index < its outputs),
one with more adds its first C.  AlexeyAB computes `activation=` swish and
mish itself and every other name with the scalar `activate()`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pydarknet.cfg.section import Section
from pydarknet.layers.activations import SCALAR_ACTIVATE, read_activation
from pydarknet.layers.base import Layer, Shape
from pydarknet.layers.route import resolve_index

WEIGHTS_TYPES = {"none": "none", "per_feature": "per_feature", "per_layer": "per_feature", "per_channel": "per_channel"}
WEIGHTS_NORMALIZATIONS = {"none": "none", "relu": "relu", "avg_relu": "relu", "softmax": "softmax"}
_EPS = 0.0001  # blas.c shortcut_multilayer_cpu


class Shortcut(Layer):
    kind = "shortcut"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        froms = tuple(resolve_index(section, "from", v, index) for v in section.get_ints("from"))
        super().__init__(section, index, (index - 1, *froms))
        self.activation = read_activation(section, "linear", SCALAR_ACTIVATE | {"swish", "mish", "relu6"})
        self.alpha = section.get_float("alpha", 1.0)
        self.beta = section.get_float("beta", 1.0)
        wt = section.get_str("weights_type", "none")
        wn = section.get_str("weights_normalization", "none")
        if wt not in WEIGHTS_TYPES:
            raise section.error(f"weights_type={wt}: AlexeyAB's Darknet knows none, per_feature, per_channel", "weights_type")
        if wn not in WEIGHTS_NORMALIZATIONS:
            raise section.error(f"weights_normalization={wn}: AlexeyAB's Darknet knows none, relu, softmax",
                                "weights_normalization")
        self.weights_type = WEIGHTS_TYPES[wt]
        self.weights_normalization = WEIGHTS_NORMALIZATIONS[wn]
        if self.weights_type != "none" and self.weights_normalization == "none":
            # parse_shortcut tests weights_type_str (not the normalization's) against "none": an error in AlexeyAB's Darknet
            raise section.error(f"weights_type={wt} needs weights_normalization=relu, avg_relu or softmax: AlexeyAB's "
                                "Darknet stops with 'Incorrect weights_normalization = none'", "weights_normalization")
        if (self.alpha, self.beta) != (1.0, 1.0) and (len(froms) > 1 or self.weights_type != "none"):
            raise section.error("alpha/beta are pjreddie's (one `from`, no weights_type); AlexeyAB's Darknet does not read them")
        c = shapes[index - 1][0]
        n = len(froms)
        self.weights: nn.Parameter | None = None
        if self.weights_type != "none":
            count = (n + 1) * (c if self.weights_type == "per_channel" else 1)
            # make_shortcut_layer: every weight starts at 1
            self.weights = nn.Parameter(torch.ones(count))

    @property
    def froms(self) -> tuple[int, ...]:
        return self.sources[1:]

    @property
    def multilayer(self) -> bool:
        """Whether the layer uses AlexeyAB's multilayer form (several `from`, or weights)."""
        return len(self.froms) > 1 or self.weights is not None

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        c, h, w = in_shapes[0]
        if self.weights is not None and self.weights_type == "per_channel" and self.weights.numel() != (len(self.froms) + 1) * c:
            raise self.section.error(f"per_channel weights were made for {self.weights.numel() // (len(self.froms) + 1)} channels, "
                                     f"the input now has {c}")
        if self.multilayer:
            for src, (_, hh, ww) in zip(self.froms, in_shapes[1:]):
                if (hh, ww) != (h, w):  # AlexeyAB parse_shortcut: assert(params.w == out_w && params.h == out_h)
                    raise self.section.error(f"layer {src} is {hh}x{ww} but the input is {h}x{w}: AlexeyAB's multi-input "
                                             "[shortcut] needs the same width and height")
        return in_shapes[0]

    def _weights(self, c: int) -> list[Tensor]:
        """The n + 1 weights after weights_normalization, each a scalar or (1, C, 1, 1) (shortcut_multilayer_cpu)."""
        assert self.weights is not None
        n1 = len(self.froms) + 1
        w = self.weights.view(n1, -1)
        if self.weights_normalization == "relu":
            r = torch.relu(w)
            w = r / (_EPS + r.sum(dim=0, keepdim=True))
        elif self.weights_normalization == "softmax":
            e = torch.exp(w - w.amax(dim=0, keepdim=True))
            w = e / (_EPS + e.sum(dim=0, keepdim=True))
        if self.weights_type == "per_channel":
            return [w[i].view(1, c, 1, 1) for i in range(n1)]
        return [w[i].view(()) for i in range(n1)]

    def forward(self, x: Tensor, *adds: Tensor) -> Tensor:
        if not self.multilayer:
            return self.activation(self._pjreddie(x, adds[0]))
        c = x.shape[1]
        ws = self._weights(c) if self.weights is not None else None
        out = x * ws[0] if ws is not None else x
        for i, add in enumerate(adds):
            k = min(c, add.shape[1])
            term = add[:, :k]
            if ws is not None:
                term = term * (ws[i + 1][:, :k] if ws[i + 1].dim() else ws[i + 1])
            out = out + term if k == c else torch.cat([out[:, :k] + term, out[:, k:]], dim=1)
        return self.activation(out)

    def _pjreddie(self, x: Tensor, add: Tensor) -> Tensor:
        if x.shape == add.shape:
            return x * self.alpha + add * self.beta if (self.alpha, self.beta) != (1.0, 1.0) else x + add
        # Darknet shortcut_cpu: stride = w_from / w_out, sample = w_out / w_from (each at least 1)
        stride = max(1, add.shape[3] // x.shape[3])
        sample = max(1, x.shape[3] // add.shape[3])
        c = min(x.shape[1], add.shape[1])
        h = min(x.shape[2], add.shape[2])
        w = min(x.shape[3], add.shape[3])
        src = add[:, :c, ::stride, ::stride][:, :, :h, :w]
        out = x * self.alpha
        out[:, :c, : h * sample : sample, : w * sample : sample] += self.beta * src
        return out

    def fuse_normalization(self) -> None:
        """AlexeyAB network.c fuse_conv_batchnorm on a [shortcut] with weights: normalise the stored weights once, then
        weights_normalization = none.  Its `relu` there is lrelu(w) = w > 0.001 ? w : 0.001 (not the forward's relu), the
        sum starting at eps 0.0001; softmax as in the forward.  `test_detector` runs it before predicting."""
        if self.weights is None or self.weights_normalization == "none":
            return
        with torch.no_grad():
            w = self.weights.view(len(self.froms) + 1, -1)
            if self.weights_normalization == "relu":
                r = torch.where(w > 0.001, w, torch.full_like(w, 0.001))
                w.copy_(r / (_EPS + r.sum(dim=0, keepdim=True)))
            else:
                e = torch.exp(w - w.amax(dim=0, keepdim=True))
                w.copy_(e / (_EPS + e.sum(dim=0, keepdim=True)))
        self.weights_normalization = "none"

    def darknet_tensors(self, transpose: bool = False, loading: bool = False) -> list[Tensor]:
        """AlexeyAB load_shortcut_weights: the `nweights` floats, when weights_type is set."""
        return [self.weights] if self.weights is not None else []

    def bflops(self) -> float:
        """0 in pjreddie's form, which prints none; AlexeyAB's multilayer form counts `alexeyab_bflops`."""
        return self.alexeyab_bflops() if self.multilayer else 0.0

    def alexeyab_bflops(self) -> float:
        """AlexeyAB make_shortcut_layer, for every [shortcut]: out_w*out_h*out_c*n (x2 with weights)."""
        c, h, w = self.out_shape
        return c * h * w * len(self.froms) * (2 if self.weights is not None else 1) / 1e9

    def describe(self) -> str:
        text = ", ".join(str(s) for s in self.froms)
        if self.weights is not None:
            text += f" wt={self.weights_type} wn={self.weights_normalization}"
        return text
