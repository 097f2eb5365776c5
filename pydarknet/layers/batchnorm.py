"""Darknet's batch normalization (src/batchnorm_layer.c, src/blas.c).

Darknet does not use the textbook formulas, and these differences are what
make its numbers:
- inference (CPU `normalize_cpu`): (x - rolling_mean) / (sqrt(rolling_var) + 1e-6),
  not sqrt(var + eps);
- training: the batch variance is the unbiased one (divides by N - 1,
  `variance_cpu`), the same `sqrt(var) + 1e-6` denominator, and the rolling
  statistics move by .99/.01;
- training backward (`mean_delta_cpu`, `variance_delta_cpu`,
  `normalize_delta_cpu`) uses `var + 1e-5` and divides by N: it is not the
  exact gradient of the forward, so it is written out here as an autograd
  Function rather than left to autograd.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class _DarknetNormalize(torch.autograd.Function):
    """x -> (x - mean) / (sqrt(var) + 1e-6) over (N, H, W), Darknet's backward."""

    @staticmethod
    def forward(ctx, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # type: ignore[override]
        count = x.shape[0] * x.shape[2] * x.shape[3]
        mean = x.mean(dim=(0, 2, 3))
        centered = x - mean.view(1, -1, 1, 1)
        var = centered.square().sum(dim=(0, 2, 3)) / (count - 1)
        out = centered / (var.sqrt() + 1e-6).view(1, -1, 1, 1)
        ctx.save_for_backward(centered, var)
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    def backward(ctx, grad: Tensor, _gm: Tensor, _gv: Tensor) -> Tensor:  # type: ignore[override]
        centered, var = ctx.saved_tensors
        count = grad.shape[0] * grad.shape[2] * grad.shape[3]
        inv_std = (var + 1e-5).rsqrt()
        mean_delta = -grad.sum(dim=(0, 2, 3)) * inv_std
        var_delta = -0.5 * (grad * centered).sum(dim=(0, 2, 3)) * inv_std.pow(3)
        return (
            grad * inv_std.view(1, -1, 1, 1)
            + (var_delta * 2.0 / count).view(1, -1, 1, 1) * centered
            + (mean_delta / count).view(1, -1, 1, 1)
        )


class BatchNorm(nn.Module):
    """Darknet's batch norm: `weight` = Darknet's scales, `bias` = its biases."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        # Darknet: rolling mean and variance start at 0 (calloc)
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            x_norm, mean, var = _DarknetNormalize.apply(x)
            with torch.no_grad():
                self.running_mean.mul_(0.99).add_(mean, alpha=0.01)
                self.running_var.mul_(0.99).add_(var, alpha=0.01)
        else:
            x_norm = (x - self.running_mean.view(1, -1, 1, 1)) / (self.running_var.sqrt() + 1e-6).view(1, -1, 1, 1)
        return x_norm * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def folded(self) -> tuple[Tensor, Tensor]:
        """(scale, shift) so that inference is x * scale + shift per channel."""
        scale = self.weight / (self.running_var.sqrt() + 1e-6)
        return scale, self.bias - self.running_mean * scale
