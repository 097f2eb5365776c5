"""[shortcut]: out = activation(alpha * input + beta * from) (src/shortcut_layer.c).

When the two sizes differ Darknet's `shortcut_cpu` samples the larger one
with a stride and adds over the common channels; that is reproduced.
AlexeyAB's `activation=` is read (pjreddie reads it too, default linear).
"""

from __future__ import annotations

from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.activations import read_activation
from pydarknet.layers.base import Layer, Shape
from pydarknet.layers.route import resolve_index


class Shortcut(Layer):
    kind = "shortcut"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        source = resolve_index(section, "from", section.get_int("from"), index)
        super().__init__(section, index, (index - 1, source))
        self.activation = read_activation(section, "linear")
        self.alpha = section.get_float("alpha", 1.0)
        self.beta = section.get_float("beta", 1.0)

    def forward(self, x: Tensor, add: Tensor) -> Tensor:
        if x.shape == add.shape:
            out = x * self.alpha + add * self.beta if (self.alpha, self.beta) != (1.0, 1.0) else x + add
            return self.activation(out)
        # Darknet shortcut_cpu: stride = w_from / w_out, sample = w_out / w_from (each at least 1)
        stride = max(1, add.shape[3] // x.shape[3])
        sample = max(1, x.shape[3] // add.shape[3])
        c = min(x.shape[1], add.shape[1])
        h = min(x.shape[2], add.shape[2])
        w = min(x.shape[3], add.shape[3])
        src = add[:, :c, ::stride, ::stride][:, :, :h, :w]
        out = x * self.alpha
        out[:, :c, : h * sample : sample, : w * sample : sample] += self.beta * src
        return self.activation(out)

    def describe(self) -> str:
        return f"{self.sources[1]}"
