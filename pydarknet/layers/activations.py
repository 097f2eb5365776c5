"""Darknet's activation functions (src/activations.h, AlexeyAB's src/activations.c).

Formulas are Darknet's own, e.g. leaky is 0.1x for x <= 0, relie 0.01x,
ramp x*(x>0) + 0.1x; an unknown name is an error here (Darknet warns and
falls back to relu, which would silently change the numbers).

AlexeyAB's (activations.h / activations.c, commit 59596d78), in float32 as
the C: `mish` is x * tanh_activate(softplus_activate(x, 20)) with
softplus(x, t) = x if x > t, expf(x) if x < -t, else logf(expf(x) + 1)
(not log1p: it is 0 for -20 <= x < about -16.6) and tanh_activate(y) =
2/(1 + expf(-2y)) - 1 (`activate_array_mish`); `swish` x * logistic(x);
`hard_mish` (`hard_mish_yashas`) x if x > 0, x*x/2 + x if x > -2, else 0;
`gelu` (`gelu_activate`) 0.5x(1 + tanhf(0.797885x + 0.035677x^3)), the tanh
approximation with Darknet's rounded constants (not erf); `relu6`
min(max(x, 0), 6) (the GPU kernel: AlexeyAB's CPU `activate()` has no case
for RELU6 and returns 0 for every input, a bug not reproduced); `revleaky`
is leaky in the forward (`activate`: `case REVLEAKY: case LEAKY:`).  elu and
selu: AlexeyAB's `(x >= 0)*x + (x < 0)*(expf(x) - 1)` in float, pjreddie's
the same formula with `exp` in double; the constants (selu 1.0507,
1.6732) are the same in both, the float `expf(x) - 1` differs from the
double by at most ~6e-8 near 0 (the float form is used for both).

`normalize_channels`, `normalize_channels_softmax` and
`normalize_channels_softmax_maxval` act across the channels of each pixel
(`activate_array_normalize_channels`, `..._softmax`): with eps = 0.0001 in
the sum, relu(x_c) / (eps + sum relu(x_k)), and exp(x_c - m) / (eps + sum
exp(x_k - m)) with m = 0, or the channel maximum for `_maxval`.  They need
(N, C, ...) tensors; `CHANNELWISE` lists them.
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


def _softplus(x: Tensor, threshold: float) -> Tensor:
    """AlexeyAB activations.h softplus_activate: x above threshold, expf(x) below -threshold, else logf(expf(x) + 1)."""
    e = torch.exp(x)
    return torch.where(x > threshold, x, torch.where(x < -threshold, e, torch.log(e + 1)))


def _tanh(x: Tensor) -> Tensor:
    """AlexeyAB activations.h tanh_activate: 2/(1 + expf(-2x)) - 1 (its rounding, not tanhf's)."""
    return 2 / (1 + torch.exp(-2 * x)) - 1


def _mish(x: Tensor) -> Tensor:
    """AlexeyAB activations.c activate_array_mish: x * tanh_activate(softplus_activate(x, MISH_THRESHOLD = 20))."""
    return x * _tanh(_softplus(x, 20.0))


def _hard_mish(x: Tensor) -> Tensor:
    """AlexeyAB activations.c hard_mish_yashas."""
    return torch.where(x > 0, x, torch.where(x > -2, x * x / 2 + x, torch.zeros_like(x)))


def _gelu(x: Tensor) -> Tensor:
    """AlexeyAB activations.h gelu_activate: the argument of tanhf in double, rounded to float, as the C."""
    inner = (0.797885 * x.double() + 0.035677 * (x * x * x).double()).float()
    return (0.5 * x.double() * (1 + torch.tanh(inner).double())).float()


def _elu(x: Tensor) -> Tensor:
    """activations.h elu_activate: (x >= 0)*x + (x < 0)*(expf(x) - 1)."""
    return torch.where(x >= 0, x, torch.exp(x) - 1)


def _selu(x: Tensor) -> Tensor:
    """activations.h selu_activate: (x >= 0)*1.0507*x + (x < 0)*1.0507*1.6732*(expf(x) - 1)."""
    return torch.where(x >= 0, 1.0507 * x, 1.0507 * 1.6732 * (torch.exp(x) - 1))


_NORM_EPS = 0.0001  # activations.c activate_array_normalize_channels*: `const float eps = 0.0001`


def _normalize_channels(x: Tensor) -> Tensor:
    """AlexeyAB activations.c activate_array_normalize_channels: per pixel, relu(x_c) / (eps + sum_k relu(x_k))."""
    pos = torch.clamp(x, min=0)
    return pos / (_NORM_EPS + pos.sum(dim=1, keepdim=True))


def _normalize_channels_softmax(x: Tensor, use_max_val: bool = False) -> Tensor:
    """AlexeyAB activations.c activate_array_normalize_channels_softmax: exp(x - m) / (eps + sum exp(x - m)),
    m = 0, or (use_max_val, `..._maxval`) the maximum over the channels of the pixel."""
    if use_max_val:
        x = x - x.amax(dim=1, keepdim=True)
    e = torch.exp(x)
    return e / (_NORM_EPS + e.sum(dim=1, keepdim=True))


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "linear": lambda x: x,
    "logistic": torch.sigmoid,
    "loggy": lambda x: 2 * torch.sigmoid(x) - 1,
    "relu": F.relu,
    "elu": _elu,
    "selu": _selu,
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
    "hard_mish": _hard_mish,
    "relu6": lambda x: torch.clamp(x, 0, 6),
    "gelu": _gelu,
    "revleaky": lambda x: F.leaky_relu(x, 0.1),
    "normalize_channels": _normalize_channels,
    "normalize_channels_softmax": _normalize_channels_softmax,
    "normalize_channels_softmax_maxval": lambda x: _normalize_channels_softmax(x, use_max_val=True),
}
# Activations that mix the channels of a pixel (need an (N, C, ...) tensor).
CHANNELWISE = frozenset({"normalize_channels", "normalize_channels_softmax", "normalize_channels_softmax_maxval"})
# What AlexeyAB's scalar `activate()` (activations.c) computes: the layers that call
# activate_array / activate_array_cpu_custom without the swish/mish/... special cases
# ([sam], [scale_channels], and [shortcut] beyond swish/mish) get 0 for any other name.
SCALAR_ACTIVATE = frozenset({
    "linear", "logistic", "loggy", "relu", "elu", "selu", "gelu", "relie", "ramp", "leaky", "revleaky", "tanh",
    "plse", "stair", "hardtan", "lhtan",
})


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


def read_activation(section, default: str, allowed: frozenset[str] | None = None) -> Activation:  # type: ignore[no-untyped-def]
    """Read `activation=` from a section; unknown names are a CfgError.

    `allowed`: the names the layer's C forward really computes; another known
    name is refused (AlexeyAB's scalar `activate()` returns 0 for it).
    """
    name = section.get_str("activation", default)
    if name not in ACTIVATIONS:
        raise section.error(f"unknown activation '{name}' (known: {', '.join(ACTIVATIONS)})", "activation")
    if allowed is not None and name not in allowed:
        raise section.error(
            f"activation={name} in [{section.kind}]: AlexeyAB's Darknet computes it only in some layers; in this one its CPU "
            f"activate() gives 0 for every value, so pydarknet refuses it (use one of: {', '.join(sorted(allowed))})",
            "activation",
        )
    return Activation(name)
