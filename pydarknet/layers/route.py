"""[route]: concatenate earlier layers' outputs along channels (src/route_layer.c).

`layers=` indices are absolute, or relative to this layer when negative.
AlexeyAB's `groups`/`group_id` (route_layer.c forward_route_layer) take from
each input the group_id-th of `groups` equal contiguous parts of its flat
(C, H, W) output, i.e. channels [k*C/G, (k+1)*C/G); C_out = sum(C)/G.  An
input whose C is not divisible by G would split inside a channel: refused.
Darknet silently makes a 0x0x0 output when the inputs' sizes differ; that
is an error here.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.base import Layer, Shape


def resolve_index(section: Section, key: str, value: int, index: int) -> int:
    """Darknet's layer reference: negative means relative to this layer."""
    absolute = index + value if value < 0 else value
    if not 0 <= absolute < index:
        raise section.error(f"{key}: layer {value} (= {absolute}) is not an earlier layer of layer {index}", key)
    return absolute


class Route(Layer):
    kind = "route"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        sources = tuple(resolve_index(section, "layers", v, index) for v in section.get_ints("layers"))
        super().__init__(section, index, sources)
        self.groups = section.get_int("groups", 1)
        self.group_id = section.get_int("group_id", 0)
        if self.groups < 1 or not 0 <= self.group_id < self.groups:
            raise section.error(f"groups={self.groups} group_id={self.group_id}: need 0 <= group_id < groups", "groups")
        self.slices: list[tuple[int, int]] = []

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        _, h, w = in_shapes[0]
        for src, (c, hh, ww) in zip(self.sources, in_shapes):
            if (hh, ww) != (h, w):
                raise self.section.error(
                    f"layer {src} is {hh}x{ww} but layer {self.sources[0]} is {h}x{w}: routed layers must have the same size"
                )
        self.slices = []
        for c, _, _ in in_shapes:
            if c % self.groups:
                raise self.section.error(f"groups={self.groups} does not divide {c} channels", "groups")
            part = c // self.groups
            self.slices.append((part * self.group_id, part * (self.group_id + 1)))
        return (sum(b - a for a, b in self.slices), h, w)

    def forward(self, *xs: Tensor) -> Tensor:
        if self.groups > 1:
            xs = tuple(x[:, a:b] for x, (a, b) in zip(xs, self.slices))
        return xs[0] if len(xs) == 1 else torch.cat(xs, dim=1)

    def describe(self) -> str:
        """The sources; AlexeyAB's parse_route also prints `group_id/groups` when groups > 1."""
        text = " ".join(str(s) for s in self.sources)
        return f"{text}  {self.group_id}/{self.groups}" if self.groups > 1 else text
