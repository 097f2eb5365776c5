"""[contrastive]: AlexeyAB's supervised contrastive loss (src/softmax_layer.c), as it is at inference.

The layer only computes a loss: the CPU `forward_contrastive_layer` returns at
once when `!state.train`, so at inference its output is the zeros
`make_contrastive_layer` allocated (`l.output = xcalloc(inputs * batch)`; the
GPU build copies its input there first).  Nothing may read it: the layer
leaves `out_w`, `out_h`, `out_c` at 0, so a layer after it that reads it is
refused.  The `[yolo]` boxes do not depend on it (the embeddings feed
`detector demo`'s tracking only).  Its options are the loss's;
`pydarknet train` refuses the section.

What AlexeyAB's `parse_contrastive` / `make_contrastive_layer` check, refused
here too: `yolo_layer=` names a `[yolo]` layer ("[contrastive] layer should
point to the [yolo] layer"; without the key it dereferences a NULL layer),
and this layer's embedding size, `inputs / (n*h*w)` with `n` the [yolo]'s
anchors, equals the [yolo]'s, `le.n / n` for its `embedding_layer=`
convolution `le` (0 without one).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.base import Layer, Shape
from pydarknet.layers.route import resolve_index


class Contrastive(Layer):
    kind = "contrastive"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        target = section.get_int("yolo_layer", 0)
        if target == 0:
            raise section.error("needs yolo_layer= (a [yolo] layer): AlexeyAB's parse_contrastive crashes without it")
        self.yolo_index = resolve_index(section, "yolo_layer", target, index)

    def link(self, layers: Sequence[Layer]) -> None:
        yolo = layers[self.yolo_index]
        if yolo.kind != "yolo":
            raise self.section.error(f"yolo_layer: layer {self.yolo_index} is [{yolo.section.kind}], "
                                     "not a [yolo] layer (AlexeyAB's parse_contrastive stops here too)", "yolo_layer")
        anchors = yolo.num  # type: ignore[attr-defined]
        ours, theirs = self.in_shapes[0][0] // anchors, _embedding_size(yolo, anchors, layers)
        if ours != theirs:
            raise self.section.error(
                f"embedding size {ours} ({self.in_shapes[0][0]} input channels / {anchors} anchors) but the [yolo] "
                f"layer {self.yolo_index}'s is {theirs} (its embedding_layer's filters / anchors); AlexeyAB's "
                "make_contrastive_layer stops here too", "yolo_layer")
        readers = [layer.index for layer in layers if self.index in layer.sources]
        if readers:
            raise layers[readers[0]].section.error(
                f"reads layer {self.index}, a [contrastive], whose output AlexeyAB's Darknet leaves without a shape "
                "(out_w = out_h = out_c = 0)")

    def forward(self, x: Tensor) -> Tensor:
        return torch.zeros_like(x)

    def describe(self) -> str:
        return f"{self.yolo_index}"


def _embedding_size(yolo: Layer, anchors: int, layers: Sequence[Layer]) -> int:
    """AlexeyAB parse_yolo: `l.embedding_size = le.n / l.n` for `embedding_layer=` (relative when negative), else 0."""
    value = yolo.section.get_int("embedding_layer", 999999)
    if value == 999999:
        return 0
    index = resolve_index(yolo.section, "embedding_layer", value, yolo.index)
    if layers[index].kind != "convolutional":
        raise yolo.section.error(f"embedding_layer: layer {index} is [{layers[index].section.kind}]; the embeddings "
                                 "come from a [convolutional] layer", "embedding_layer")
    return layers[index].filters // anchors  # type: ignore[attr-defined]
