"""Darknet's batch normalization (src/batchnorm_layer.c, src/blas.c).

Darknet does not use the textbook formulas, and these differences are what
make its numbers:
- inference (CPU `normalize_cpu`): (x - rolling_mean) / (sqrt(rolling_var) + 1e-6),
  not sqrt(var + eps) -- in pjreddie's Darknet.  AlexeyAB's (`alexeyab=True`,
  set by `Darknet` for that dialect) divides by sqrt(var + .00001f) in its
  `normalize_cpu`, and its `test_detector` folds that into the convolution
  first (`fuse_conv_batchnorm`, in double: `folded()`);
- training: the batch variance is the unbiased one (divides by N - 1,
  `variance_cpu`), the same `sqrt(var) + 1e-6` denominator, and the rolling
  statistics move by .99/.01;
- training backward (`mean_delta_cpu`, `variance_delta_cpu`,
  `normalize_delta_cpu`) uses `var + 1e-5` and divides by N: it is not the
  exact gradient of the forward, so it is an autograd Function here rather
  than left to autograd (fused kernels: about 3x faster than writing the
  formula out in elementwise torch ops).

AlexeyAB's CPU build trains otherwise (src/batchnorm_layer.c, src/blas.c,
src/connected_layer.c, 59596d7): its `normalize_cpu` divides by
sqrt(var + .00001f) in training too; `normalize_delta_cpu`'s first term by
sqrt(var) + .00001f (mean_delta_cpu and variance_delta_cpu keep var + .00001f);
the rolling statistics move by .9/.1 (`forward_batchnorm_layer`), by
.95/.05 in a [connected] layer (`forward_connected_layer`, `connected=True`);
and a [convolutional] layer's `backward_batchnorm_layer` has no
`backward_bias`: the biases of a batch-normalized convolution get no
gradient and never move (`bias_updates` stays 0), while [connected] adds
its delta to them (`backward_connected_layer`).

AlexeyAB's GPU build (`gpu_build`, Darknet.set_training_build: GPU=1
CUDNN=1, forward/backward_batchnorm_layer_gpu) trains with cuDNN's batch
norm, in a convolution and a [connected] layer alike:
cudnnBatchNormalizationForwardTraining with epsilon .00001 and an
exponential average factor of .01 normalises by the biased batch variance,
sqrt(var + .00001), and moves the rolling mean and the *unbiased* variance
by .99/.01; cudnnBatchNormalizationBackward gives the exact gradients, the
biases' included: what torch's `batch_norm` computes, used as it is.

Distributed training with synchronised batch norm (`--sync-bn`) sets
`sum_over_ranks` (pydarknet.train.distributed.all_sum): the channel sums of
the forward (mean, then variance) and of the backward are summed over the
ranks and divided by the global count, so every rank normalises with the
statistics of the global mini-batch, as one process holding it would.  That
path writes Darknet's formulas out (`_SyncedNormalize`); a single process
uses the fused kernels (`_DarknetBatchNorm`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed
from torch import Tensor, nn

SumOverRanks = Callable[[Tensor], Tensor]


def _forward_inverse(var: Tensor, alexeyab: bool) -> Tensor:
    """1 / the training forward's deviation: normalize_cpu's sqrt(var + .00001f) (AlexeyAB), sqrt(var) + .000001f (pjreddie)."""
    return (var + 1e-5).rsqrt() if alexeyab else 1.0 / (var.sqrt() + 1e-6)


def _delta_inverse(var: Tensor, alexeyab: bool) -> Tensor:
    """1 / the deviation of normalize_delta_cpu's first term, delta / (sqrt(var) + .00001f) in AlexeyAB's,
    delta / sqrt(var + .00001f) in pjreddie's."""
    return 1.0 / (var.sqrt() + 1e-5) if alexeyab else (var + 1e-5).rsqrt()


class _DarknetBatchNorm(torch.autograd.Function):
    """Training batch norm, x -> (x - mean) * forward inverse deviation * weight + bias over (N, H, W).

    Forward: one fused var_mean pass (unbiased variance, Darknet's
    `variance_cpu`), then one multiply-add per element.

    Backward is Darknet's (`backward_batchnorm_layer`): `backward_scale_cpu`
    gives d weight = sum(grad * x_norm) with the forward's x_norm, the delta
    is multiplied by the scales, and `mean_delta_cpu`, `variance_delta_cpu`,
    `normalize_delta_cpu` give, with inv = 1 / sqrt(var + 1e-5),

        dx = inv * g - (sum(g) * inv) / N - (sum(g * (x - mean)) * inv**3) * (x - mean) / N,   g = grad * weight

    which is, term for term, the textbook batch-norm input gradient with
    that `inv` as inverse deviation: torch's fused `native_batch_norm_backward`
    computes it in one kernel, given Darknet's mean and inv.  Its weight
    gradient uses x * inv; Darknet's uses the forward's x_norm, which differs
    by the per-channel factor inv_forward / inv, applied here.  AlexeyAB's
    first term divides g by sqrt(var) + 1e-5 instead (`_delta_inverse`): g
    times the difference of the two is added.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, alexeyab: bool) -> tuple[Tensor, Tensor, Tensor]:  # type: ignore[override]
        var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=1)
        inv_forward = _forward_inverse(var, alexeyab)
        scale = inv_forward * weight
        out = torch.addcmul((bias - mean * scale).view(1, -1, 1, 1), x, scale.view(1, -1, 1, 1))
        ctx.save_for_backward(x, weight, mean, var, inv_forward)
        ctx.alexeyab = alexeyab
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    def backward(ctx, grad: Tensor, _gm: Tensor, _gv: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:  # type: ignore[override]
        x, weight, mean, var, inv_forward = ctx.saved_tensors
        inv = (var + 1e-5).rsqrt()  # Darknet: mean_delta_cpu / variance_delta_cpu's sqrt(variance + .00001f)
        grad_x, grad_weight, grad_bias = torch.ops.aten.native_batch_norm_backward(
            grad, x, weight, None, None, mean, inv, True, 1e-5, [True, True, True]
        )
        if ctx.alexeyab:
            grad_x = torch.addcmul(grad_x, grad, ((_delta_inverse(var, True) - inv) * weight).view(1, -1, 1, 1))
        return grad_x, grad_weight * (inv_forward / inv), grad_bias, None


class _SyncedNormalize(torch.autograd.Function):
    """x -> (x - mean) * forward inverse deviation over (N, H, W), Darknet's backward."""

    @staticmethod
    def forward(ctx, x: Tensor, sum_over_ranks: SumOverRanks | None, alexeyab: bool) -> tuple[Tensor, Tensor, Tensor]:  # type: ignore[override]
        count = x.shape[0] * x.shape[2] * x.shape[3]
        if sum_over_ranks is None:
            mean = x.mean(dim=(0, 2, 3))
        else:
            count *= torch.distributed.get_world_size()  # every rank holds an equal share (train_network)
            mean = sum_over_ranks(x.sum(dim=(0, 2, 3))) / count
        centered = x - mean.view(1, -1, 1, 1)
        var = _summed(centered.square(), sum_over_ranks) / (count - 1)
        out = centered * _forward_inverse(var, alexeyab).view(1, -1, 1, 1)
        ctx.save_for_backward(centered, var)
        ctx.count, ctx.sum_over_ranks, ctx.alexeyab = count, sum_over_ranks, alexeyab
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    def backward(ctx, grad: Tensor, _gm: Tensor, _gv: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        centered, var = ctx.saved_tensors
        count = ctx.count
        inv_std = (var + 1e-5).rsqrt()
        sums = torch.stack([grad.sum(dim=(0, 2, 3)), (grad * centered).sum(dim=(0, 2, 3))])
        if ctx.sum_over_ranks is not None:
            sums = ctx.sum_over_ranks(sums)
        mean_delta = -sums[0] * inv_std
        var_delta = -0.5 * sums[1] * inv_std.pow(3)
        dx = (
            grad * _delta_inverse(var, ctx.alexeyab).view(1, -1, 1, 1)
            + (var_delta * 2.0 / count).view(1, -1, 1, 1) * centered
            + (mean_delta / count).view(1, -1, 1, 1)
        )
        return dx, None, None


def _summed(t: Tensor, sum_over_ranks: SumOverRanks | None) -> Tensor:
    """Per-channel sums of `t`, and over the ranks when synchronised."""
    sums = t.sum(dim=(0, 2, 3))
    return sums if sum_over_ranks is None else sum_over_ranks(sums)


class BatchNorm(nn.Module):
    """Darknet's batch norm: `weight` = Darknet's scales, `bias` = its biases; `connected`: a [connected] layer's
    (AlexeyAB's forward_connected_layer and backward_connected_layer, which differ from its convolution's)."""

    def __init__(self, channels: int, connected: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        # Darknet: rolling mean and variance start at 0 (calloc)
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.zeros(channels))
        self.sum_over_ranks: SumOverRanks | None = None  # set for synchronised batch norm
        self.alexeyab = False  # AlexeyAB's formulas, sqrt(var + .00001f) (set by Darknet's dialect)
        self.gpu_build = False  # with `alexeyab`: train as its GPU build (cuDNN's batch norm), else as its CPU build
        self.connected = connected

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_autocast_enabled(x.device.type):
            x = x.float()  # mixed precision (pydarknet.train.amp): batch norm and its statistics stay float32
        if not self.training:
            if self.alexeyab:  # AlexeyAB src/blas.c normalize_cpu: sqrt(variance[f] + .00001f)
                std = (self.running_var + 1e-5).sqrt()
            else:  # pjreddie src/blas.c normalize_cpu: sqrt(variance[f]) + .000001f
                std = self.running_var.sqrt() + 1e-6
            x_norm = (x - self.running_mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
            return x_norm * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        if self.alexeyab and self.gpu_build:  # synchronised over ranks: refused (distributed.synchronize_batchnorm)
            return torch.nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                                  training=True, momentum=0.01, eps=1e-5)
        bias = self.bias
        if self.alexeyab and not self.connected:  # AlexeyAB's CPU backward_batchnorm_layer: no backward_bias
            bias = bias.detach() + 0 * bias  # the same values, a zero gradient
        if self.sum_over_ranks is None:
            out, mean, var = _DarknetBatchNorm.apply(x, self.weight, bias, self.alexeyab)
        else:
            x_norm, mean, var = _SyncedNormalize.apply(x, self.sum_over_ranks, self.alexeyab)
            out = x_norm * self.weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)
        rate = self.rolling_rate()
        with torch.no_grad():
            self.running_mean.mul_(1 - rate).add_(mean, alpha=rate)
            self.running_var.mul_(1 - rate).add_(var, alpha=rate)
        return out

    def rolling_rate(self) -> float:
        """How far one training batch moves the rolling statistics: pjreddie's .01 (forward_batchnorm_layer);
        AlexeyAB's CPU build's .1, .05 in [connected] (forward_batchnorm_layer, forward_connected_layer)."""
        if not self.alexeyab:
            return 0.01
        return 0.05 if self.connected else 0.1

    def folded(self) -> tuple[Tensor, Tensor]:
        """(scale, shift) so that inference is x * scale + shift per channel.

        AlexeyAB's dialect: its `fuse_conv_batchnorm` (src/network.c), in
        double: scale = scales / sqrt(var + .00001), shift = biases - scales *
        mean / sqrt(var + .00001), returned as float64 (the weights are
        multiplied in double, then rounded to float, as Darknet stores them).
        """
        if self.alexeyab:
            std = (self.running_var.double() + 1e-5).sqrt()
            scale = self.weight.double() / std
            return scale, (self.bias.double() - self.weight.double() * self.running_mean.double() / std).to(self.bias.dtype)
        scale = self.weight / (self.running_var.sqrt() + 1e-6)
        return scale, self.bias - self.running_mean * scale
