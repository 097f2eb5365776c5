"""AlexeyAB's exponential moving average of the weights, `[net] ema_alpha` (src/network.c, 59596d7:
train_network_waitkey, ema_update, ema_apply, is_ema_initialized; src/detector.c train_detector).

After each iteration's update, with `cur` the iterations done (`*net.cur_iteration`), from
`cur >= max_batches / 2`: the first time (while no EMA weight is nonzero, `is_ema_initialized`) the EMA
becomes the weights (`ema_update(net, 0)`); then at `cur == max_batches - 1000` the weights become the EMA
(`ema_apply`), and before that the EMA moves, `ema = alpha * ema + (1 - alpha) * w` in float
(`ema_update(net, ema_alpha)`); after it the EMA stays.  Only `[convolutional]` layers: their weights,
biases and (batch_normalize) scales, not the rolling statistics.  When `max_batches - 1000` is below
`max_batches / 2` the EMA is made once and never moves nor applied.  train_detector saves
`NAME_ema.weights` (the EMA in place of those tensors, the rest as `NAME_last.weights`) whenever it saves
`NAME_last.weights` and the EMA exists.  AlexeyAB's EMA starts anew when a run resumes; pydarknet's rides
in the resume state, so a resumed run is the uninterrupted one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from pydarknet.errors import DarknetError
from pydarknet.layers.convolutional import Convolutional

if TYPE_CHECKING:
    from pydarknet.network import Darknet

APPLY_BEFORE_END = 1000  # ema_apply_point = net.max_batches - 1000


def _averaged(net: Darknet) -> dict[str, Tensor]:
    """The tensors ema_update averages, by name: each [convolutional]'s weights, biases, scales."""
    tensors = {}
    for layer in net.layers:
        if isinstance(layer, Convolutional):
            tensors[f"layers.{layer.index}.weights"] = layer.conv.weight
            if layer.bn is not None:
                tensors[f"layers.{layer.index}.biases"] = layer.bn.bias
                tensors[f"layers.{layer.index}.scales"] = layer.bn.weight
            else:
                tensors[f"layers.{layer.index}.biases"] = layer.conv.bias
    return tensors


class WeightsEma:
    """The EMA of `net`'s [convolutional] tensors (zero until made), with `alpha` = `[net] ema_alpha`."""

    def __init__(self, net: Darknet, alpha: float) -> None:
        self.alpha = float(np.float32(alpha))
        self.keep = float(np.float32(1) - np.float32(alpha))  # (1 - ema_alpha) in float
        self.tensors = _averaged(net)
        self.ema = {name: torch.zeros_like(t, memory_format=torch.contiguous_format) for name, t in self.tensors.items()}

    def initialized(self) -> bool:
        """is_ema_initialized: some [convolutional] weight's EMA is nonzero (biases and scales are not looked at)."""
        return any(bool(ema.any()) for name, ema in self.ema.items() if name.endswith(".weights"))

    @torch.no_grad()
    def after_update(self, iteration: int, max_batches: int) -> None:
        """train_network_waitkey's lines after update_network, `iteration` = *net.cur_iteration."""
        if iteration < max_batches // 2:
            return
        apply_at = max_batches - APPLY_BEFORE_END
        if not self.initialized():
            for name, tensor in self.tensors.items():  # ema_update(net, 0): 0 * ema + 1 * w
                self.ema[name].copy_(tensor)
        if iteration == apply_at:
            for name, tensor in self.tensors.items():
                tensor.copy_(self.ema[name])
        elif iteration < apply_at:
            for name, tensor in self.tensors.items():
                self.ema[name].mul_(self.alpha).add_(tensor * self.keep)

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The network holds the EMA in place of its [convolutional] tensors while the block runs
        (save_weights_upto with save_ema: `NAME_ema.weights`)."""
        with torch.no_grad():
            kept = {name: tensor.clone() for name, tensor in self.tensors.items()}
            try:
                for name, tensor in self.tensors.items():
                    tensor.copy_(self.ema[name])
                yield
            finally:
                for name, tensor in self.tensors.items():
                    tensor.copy_(kept[name])

    def state_dict(self) -> dict[str, Tensor]:
        return {name: ema.detach().clone() for name, ema in self.ema.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if set(state) != set(self.ema) or any(tuple(state[k].shape) != tuple(v.shape) for k, v in self.ema.items()):
            raise DarknetError("EMA state does not fit this network")
        for name, ema in self.ema.items():
            ema.copy_(state[name])
