"""What training keeps beside the network between train_network calls.

Darknet keeps its momentum in the layers (`l.weight_updates`, `l.bias_updates`, ...,
src/convolutional_layer.c update_convolutional_layer); here the network graph holds
only what Darknet's `.weights` hold, and the training floor keeps the rest in a
`TrainingState`: the SGD update buffers (`DarknetSGD`) and the optional mixed-precision
setting with its loss scale (`pydarknet.train.amp`), and in AlexeyAB's dialect with
`[net] ema_alpha` the EMA of the weights (`pydarknet.train.ema`) and always the deltas its CPU
training never zeroes (`pydarknet.train.carried_delta`).  The trainer owns one per
run, and its checkpoint saves it: `resume_entries` are the `optimizer`, `loss_scale`,
`ema` and `carried_deltas` entries of the resume state appended to a `.backup` (pydarknet.train.checkpoints),
restored by `load_resume_entries`, so a resumed run continues bit for bit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from pydarknet.layers.loss_report import BoxCounts
from pydarknet.train.amp import Amp, LossScaler, mixed_precision
from pydarknet.train.carried_delta import CarriedDeltas
from pydarknet.train.ema import WeightsEma
from pydarknet.train.sgd import DarknetSGD

if TYPE_CHECKING:
    from pydarknet.network import Darknet


class TrainingState:
    """Darknet's SGD update buffers for `net`'s parameters, zero to start, and the run's mixed precision.

    Make it once the network is on its device.  `amp`: False trains in float32 (Darknet's
    numbers), True in mixed precision (float16 with a loss scale on CUDA, bfloat16
    elsewhere), or a dtype.
    """

    def __init__(self, net: Darknet, amp: bool | torch.dtype = False) -> None:
        self.sgd = DarknetSGD(net.layers)
        self.amp: Amp | None = None if amp is False else mixed_precision(net, None if amp is True else amp)
        alpha = net.options.ema_alpha
        self.ema: WeightsEma | None = WeightsEma(net, alpha) if net.dialect == "alexeyab" and alpha else None
        self.carried = CarriedDeltas(net)  # AlexeyAB's [route]/[upsample] deltas, never zeroed
        self.box_counts = BoxCounts()  # AlexeyAB's total_bbox, rewritten_bbox: from the run's start, not resumed

    @property
    def scaler(self) -> LossScaler | None:
        """The float16 loss scale, None in float32 or bfloat16."""
        return self.amp.scaler if self.amp is not None else None

    def resume_entries(self) -> dict:
        """The momentum buffers (by parameter name), the loss scale, the EMA and the carried deltas, for the resume state of a `.backup`."""
        return {"optimizer": self.sgd.state_dict(), "loss_scale": self.scaler.state_dict() if self.scaler is not None else None,
                "ema": self.ema.state_dict() if self.ema is not None else None, "carried_deltas": self.carried.state_dict()}

    def load_resume_entries(self, resume: dict) -> None:
        """Restore what `resume_entries` saved (a loss scale or an EMA only when both runs have one)."""
        self.sgd.load_state_dict(resume["optimizer"])
        if self.scaler is not None and resume.get("loss_scale") is not None:
            self.scaler.load_state_dict(resume["loss_scale"])
        if self.ema is not None and resume.get("ema") is not None:
            self.ema.load_state_dict(resume["ema"])
        if resume.get("carried_deltas") is not None:
            self.carried.load_state_dict(resume["carried_deltas"])
