"""Optional mixed precision for train_network (`pydarknet train --amp`).

Off by default: Darknet trains in float32 and the golden tests compare
with it.  With `TrainingState(net, amp=True)` (pydarknet.train.state) the forward
of each mini-batch runs under `torch.autocast` — float16 on CUDA, bfloat16
elsewhere — so the convolutions run in reduced precision, while

- batch norm casts its input back to float32 under autocast (Darknet's own forward and
  backward, pydarknet.layers.batchnorm, and its rolling statistics stay
  float32),
- the heads' inputs are cast to float32 before the loss math (deltas and
  costs of [region], [yolo], [softmax], [cost]) and the backward is started
  outside autocast,
- the parameters, their gradients and Darknet's SGD stay float32.

float16 gradients underflow, so with float16 the gradients injected at the
heads are multiplied by a dynamic loss scale (`LossScaler`,
torch.amp.GradScaler's policy): the parameter gradients stay in `.grad`
over the iteration's mini-batches and are unscaled just before Darknet's
SGD takes them; an inf/NaN anywhere skips that iteration's update and
halves the scale, and `growth_interval` good iterations in a row double
it.  Darknet's deltas are summed, not averaged, so from GradScaler's
starting 2**16 the first few iterations are usually skipped while the scale
backs off (seen and the schedule still advance, as with GradScaler and an
LR scheduler).  bfloat16 has float32's range and needs no scaling.  The scaler belongs to
the TrainingState, whose resume entries the trainer appends to its `.backup`, so a resumed run keeps it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn



@dataclass
class LossScaler:
    """A dynamic loss scale with torch.amp.GradScaler's defaults and update policy."""

    scale: float = 2.0**16
    growth_factor: float = 2.0
    backoff_factor: float = 0.5
    growth_interval: int = 2000
    good_steps: int = 0  # finite iterations since the scale last changed (GradScaler's growth tracker)

    def scaled(self, grads: list[Tensor]) -> list[Tensor]:
        """The gradients to inject at the heads, times the scale."""
        return [grad * self.scale for grad in grads]

    @torch.no_grad()
    def unscale_and_update(self, params: Iterable[Tensor]) -> bool:
        """Divide the parameters' gradients by the scale in place, then update the scale; True if all are finite."""
        grads = [param.grad for param in params if param.grad is not None]
        finite = not grads or bool(torch.stack([torch.isfinite(grad).all() for grad in grads]).all())  # one sync
        if finite:
            for grad in grads:
                grad.mul_(1.0 / self.scale)  # a power of two: exact
        self.update(finite)
        return finite

    def update(self, finite: bool) -> None:
        """GradScaler.update: back off after an inf/NaN, grow after `growth_interval` finite iterations in a row."""
        if not finite:
            self.scale *= self.backoff_factor
            self.good_steps = 0
            return
        self.good_steps += 1
        if self.good_steps == self.growth_interval:
            self.scale *= self.growth_factor
            self.good_steps = 0

    def state_dict(self) -> dict[str, float]:
        """The scale and the growth count (the policy's constants come from the code)."""
        return {"scale": self.scale, "good_steps": self.good_steps}

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Restore what `state_dict` returned."""
        self.scale = float(state["scale"])
        self.good_steps = int(state["good_steps"])


@dataclass
class Amp:
    """A training run's mixed-precision setting (`TrainingState.amp`): the autocast dtype, and a loss scaler for float16."""

    dtype: torch.dtype
    scaler: LossScaler | None = None


def mixed_precision(net: nn.Module, dtype: torch.dtype | None = None) -> Amp:
    """Mixed precision for training `net` (on its device): float16 with loss scaling on CUDA, bfloat16 elsewhere, or `dtype`."""
    if dtype is None:
        dtype = torch.float16 if next(net.parameters()).device.type == "cuda" else torch.bfloat16
    return Amp(dtype, LossScaler() if dtype == torch.float16 else None)


@contextlib.contextmanager
def autocast(amp: Amp | None, device_type: str) -> Iterator[None]:
    """The forward's precision: torch.autocast under amp (batch norm casts back to float32), unchanged float32 without."""
    if amp is None:
        yield
        return
    with torch.autocast(device_type, amp.dtype):
        yield
