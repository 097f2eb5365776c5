"""Darknet's SGD update (src/convolutional_layer.c:update_convolutional_layer;
update_connected_layer and update_local_layer are the same shape).

Darknet keeps an `*_updates` buffer per parameter.  Backward adds to it
(Darknet's deltas are -dL/d(output), so it adds -gradient), over every
mini-batch of an iteration; then update_network, with `batch` the full
batch (mini_batch * subdivisions) and `lr` the current rate times the
layer's `learning_rate` scale, does for biases and batch-norm scales

    param += lr / batch * updates;  updates *= momentum

and for weights (the only decayed tensors)

    updates += -decay * batch * weights;  weights += lr / batch * updates;  updates *= momentum

so `updates` is also the momentum buffer.  `DarknetSGD.state_dict()` /
`load_state_dict()` save and restore these buffers (keys are the network's
parameter names).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from pydarknet.errors import DarknetError
from pydarknet.layers.batchnorm import BatchNorm


@dataclass
class _Slot:
    param: Tensor
    updates: Tensor
    decayed: bool
    rate_scale: float


class DarknetSGD:
    """The `*_updates` buffers of a network's layers and Darknet's update rule."""

    def __init__(self, layers: nn.ModuleList) -> None:
        self.slots: dict[str, _Slot] = {}
        for layer in layers:
            for module_name, module in layer.named_modules():
                for name, param in module.named_parameters(recurse=False):
                    key = ".".join(filter(None, ("layers", str(layer.index), module_name, name)))
                    # Darknet: decay on l.weights only, never on biases or batch-norm scales
                    decayed = name == "weight" and not isinstance(module, BatchNorm)
                    self.slots[key] = _Slot(param, torch.zeros_like(param), decayed, float(layer.learning_rate_scale))

    def accumulate(self) -> None:
        """Move the parameters' gradients into Darknet's updates (updates -= grad)."""
        for slot in self.slots.values():
            if slot.param.grad is not None:
                slot.updates.sub_(slot.param.grad)
                slot.param.grad = None

    def discard(self) -> None:
        """Drop the parameters' gradients unused (an update skipped for an inf/NaN gradient under amp)."""
        for slot in self.slots.values():
            slot.param.grad = None

    @torch.no_grad()
    def update(self, learning_rate: float, momentum: float, decay: float, batch: int) -> None:
        """Darknet's update_network: every layer's update with args (lr, momentum, decay, batch)."""
        f32 = np.float32
        for slot in self.slots.values():
            lr = f32(learning_rate) * f32(slot.rate_scale)
            if slot.decayed:
                slot.updates.add_(slot.param, alpha=float(-f32(decay) * f32(batch)))
            slot.param.add_(slot.updates, alpha=float(lr / f32(batch)))
            slot.updates.mul_(float(f32(momentum)))

    def state_dict(self) -> dict[str, Tensor]:
        return {key: slot.updates.detach().clone() for key, slot in self.slots.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if set(state) != set(self.slots):
            missing = sorted(set(self.slots) ^ set(state))[:3]
            raise DarknetError(f"optimizer state does not fit this network (differs at {', '.join(missing)})")
        for key, slot in self.slots.items():
            if tuple(state[key].shape) != tuple(slot.updates.shape):
                raise DarknetError(f"optimizer state {key}: shape {tuple(state[key].shape)}, network has {tuple(slot.updates.shape)}")
            slot.updates.copy_(state[key])
