"""Darknet's activation functions (src/activations.h, AlexeyAB's mish/swish).

Formulas are Darknet's own, e.g. leaky is 0.1x for x <= 0, relie 0.01x,
ramp x*(x>0) + 0.1x; an unknown name is an error here (Darknet warns and
falls back to relu, which would silently change the numbers).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _stair(x: Tensor) -> Tensor:
    n = torch.floor(x)
    half = torch.floor(x / 2)
    return torch.where(torch.remainder(n, 2) == 0, half, (x - n) + half)


def _plse(x: Tensor) -> Tensor:
    return torch.where(x < -4, 0.01 * (x + 4), torch.where(x > 4, 0.01 * (x - 4) + 1, 0.125 * x + 0.5))


def _lhtan(x: Tensor) -> Tensor:
    return torch.where(x < 0, 0.001 * x, torch.where(x > 1, 0.001 * (x - 1) + 1, x))


def _mish(x: Tensor) -> Tensor:
    # AlexeyAB: x * tanh(softplus(x)) with softplus threshold 20
    return x * torch.tanh(F.softplus(x, threshold=20))


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "linear": lambda x: x,
    "logistic": torch.sigmoid,
    "loggy": lambda x: 2 * torch.sigmoid(x) - 1,
    "relu": F.relu,
    "elu": lambda x: torch.where(x >= 0, x, torch.expm1(x)),
    "selu": lambda x: torch.where(x >= 0, 1.0507 * x, 1.0507 * 1.6732 * torch.expm1(x)),
    "relie": lambda x: torch.where(x > 0, x, 0.01 * x),
    "ramp": lambda x: x * (x > 0) + 0.1 * x,
    "leaky": lambda x: F.leaky_relu(x, 0.1),
    "tanh": torch.tanh,
    "plse": _plse,
    "stair": _stair,
    "hardtan": lambda x: torch.clamp(x, -1, 1),
    "lhtan": _lhtan,
    "mish": _mish,
    "swish": lambda x: x * torch.sigmoid(x),
}


class Activation(nn.Module):
    """An activation by its Darknet name."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.fn = ACTIVATIONS[name]

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name


def read_activation(section, default: str) -> Activation:  # type: ignore[no-untyped-def]
    """Read `activation=` from a section; unknown names are a CfgError."""
    name = section.get_str("activation", default)
    if name not in ACTIVATIONS:
        raise section.error(f"unknown activation '{name}' (known: {', '.join(ACTIVATIONS)})", "activation")
    return Activation(name)
