"""The deltas AlexeyAB's CPU training never zeroes (src/network.c forward_network, 59596d78).

Its GPU build (forward_network_gpu zeroes every layer's delta; Darknet.set_training_build) carries none.

forward_network zeroes a layer's `l.delta` before its forward only `if(l.delta && state.train && l.train)`,
and only the makers of the convolutional, maxpool, shortcut, batchnorm and recurrent layers set `l.train`
(make_route_layer and make_upsample_layer leave it 0).  So the delta of a [route] or an [upsample] keeps
what every earlier backward of the run added to it (the layers reading it add: axpy_cpu, upsample_cpu,
backward_maxpool_layer's `+=`), and backward_route_layer / backward_upsample_layer pass that whole sum down,
each train_network_datum.  Unless the next layer is a [convolutional]: its backward zeroes the delta first
(col2im_cpu_ext, see Darknet._plan) and writes only its own, so nothing is carried there.

`CarriedDeltas` reproduces this: each such layer's output goes through `_Carry`, whose backward adds the
gradient it passed down last time to the one arriving and keeps the sum.  A run starts with none carried, as
Darknet does (the sums ride in pydarknet's resume state, so that a resumed run goes on as one that was not
stopped; Darknet's restart starts them again); a batch of another shape (a new network size) starts its
layer's sum again (Darknet's resize_network reallocates the delta, keeping no defined values).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from pydarknet.layers.convolutional import Convolutional
from pydarknet.layers.route import Route
from pydarknet.layers.upsample import Upsample

if TYPE_CHECKING:
    from pydarknet.network import Darknet


class CarriedDeltas:
    """The summed gradients of `net`'s [route] and [upsample] outputs in AlexeyAB's dialect trained as its CPU
    build (none in pjreddie's, none as AlexeyAB's GPU build)."""

    def __init__(self, net: Darknet) -> None:
        layers = net.layers
        self.indices = set() if net.dialect != "alexeyab" or net.training_build != "cpu" else {
            layer.index for layer in layers if isinstance(layer, (Route, Upsample))
            and not (layer.index + 1 < len(layers) and isinstance(layers[layer.index + 1], Convolutional))}
        self.deltas: dict[int, Tensor] = {}

    def state_dict(self) -> dict[str, Tensor]:
        return {str(index): delta.clone() for index, delta in self.deltas.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """What state_dict gave (of another network: only what fits this one's layers)."""
        self.deltas = {int(index): delta.clone() for index, delta in state.items() if index.isdigit() and int(index) in self.indices}

    def __call__(self, index: int, output: Tensor) -> Tensor:
        """Layer `index`'s output, for Darknet.forward_layers' `output_hook`."""
        if index not in self.indices or not output.requires_grad:
            return output
        return _Carry.apply(output, self, index)


class _Carry(torch.autograd.Function):
    """Identity forward; backward passes the arriving gradient plus what this layer passed last time."""

    @staticmethod
    def forward(ctx, output: Tensor, carried: CarriedDeltas, index: int) -> Tensor:  # type: ignore[override]
        ctx.carried, ctx.index = carried, index
        return output.view_as(output)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        previous = ctx.carried.deltas.get(ctx.index)
        if previous is not None and previous.shape == grad.shape and previous.dtype == grad.dtype:
            grad = grad + previous
        ctx.carried.deltas[ctx.index] = grad.detach()
        return grad, None, None
