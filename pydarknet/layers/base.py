"""What every Darknet layer has: its section, its inputs, its shape rule.

Darknet's `parse_network_cfg` reads a few options for every layer after the
layer's own parser (`dontload`, `dontsave`, `stopbackward`, `learning_rate`,
...); `Layer.__init__` reads them here, so each layer module only reads its
own.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pydarknet.cfg.section import Section

Shape = tuple[int, int, int]  # (channels, height, width), as Darknet's out_c, out_h, out_w


class Layer(nn.Module):
    """Base of all layers: `sources` are the indices of the layers it reads.

    Index -1 stands for the network input.  `out_shape` is set by the network
    (and again by `Darknet.resize`) from `output_shape`.
    """

    kind: str = "layer"

    def __init__(self, section: Section, index: int, sources: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.index = index
        self.section = section  # for error messages: file, line, option positions
        self.sources: tuple[int, ...] = (index - 1,) if sources is None else sources
        self.in_shapes: list[Shape] = []
        self.out_shape: Shape = (0, 0, 0)
        # src/parser.c parse_network_cfg: options common to every layer.
        section.get_int("truth", 0)
        self.onlyforward = section.get_int("onlyforward", 0)
        self.stopbackward = section.get_int("stopbackward", 0)
        self.dontsave = section.get_int("dontsave", 0)
        self.dontload = section.get_int("dontload", 0)
        self.numload = section.get_int("numload", 0)
        self.dontloadscales = section.get_int("dontloadscales", 0)
        self.learning_rate_scale = section.get_float("learning_rate", 1.0)
        section.get_float("smooth", 0.0)

    def output_shape(self, in_shapes: list[Shape]) -> Shape:
        """Darknet's shape rule (make_*_layer / resize_*_layer)."""
        return in_shapes[0]

    def set_input_shapes(self, in_shapes: list[Shape]) -> None:
        self.in_shapes = list(in_shapes)
        self.out_shape = self.output_shape(self.in_shapes)
        if min(self.out_shape) < 1:
            c, h, w = self.out_shape
            raise self.section.error(f"output would be empty ({c}x{h}x{w}); the input is too small")

    def link(self, layers: Sequence[Layer]) -> None:
        """Resolve what the layer takes from other layers' objects (not their outputs) once all are built."""

    def darknet_tensors(self, transpose: bool = False, loading: bool = False) -> list[torch.Tensor]:
        """The tensors this layer stores in a .weights file, in file order.

        Each tensor's row-major flattening is the file's order of its floats
        (views: copying into them loads the layer).  `transpose` is the
        header's flag for connected weights; `loading` applies the layer's
        `numload`/`dontloadscales`, which Darknet honours only when loading.
        """
        return []

    def bflops(self) -> float:
        return 0.0

    def alexeyab_bflops(self) -> float:
        """The `l.bflops` AlexeyAB's make_*_layer sets, printed as `BF` and summed into `Total BFLOPS`
        (src/parser.c parse_network_cfg_custom): pjreddie's count unless the layer's differs."""
        return self.bflops()

    def describe(self) -> str:
        """The middle column of Darknet's layer table."""
        return ""


def uninitialised(module: nn.Module) -> nn.Module:
    """`module`, made on the meta device (no memory, no random initialisation), given empty parameters on the
    default device; its layer sets them (Darknet's initialisation, then a weights file).  Not `to_empty`: its first
    call imports PyTorch's symbolic-shape machinery (sympy), 0.4 s of every start."""
    for name, p in list(module.named_parameters(recurse=False)):
        empty = torch.empty(p.shape, dtype=p.dtype, device=torch.get_default_device())
        setattr(module, name, nn.Parameter(empty, requires_grad=p.requires_grad))
    return module
