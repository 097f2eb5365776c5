"""AlexeyAB's training batch norm against its C (tests/golden-alexeyab-extra/batchnorm-train/, made by
tools/goldens/alexeyab_net_train/): a batch-normalized [convolutional] (forward_batchnorm_layer,
backward_batchnorm_layer: normalize_cpu's sqrt(var + .00001f), .9/.1 rolling statistics, no bias gradient) and
[connected] (forward/backward_connected_layer: .95/.05, a bias gradient), forward and backward in training mode,
within |a - g| <= 1e-4 (1 + |g|).  pjreddie's dialect keeps pjreddie's formulas on the same layers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT
from pydarknet.layers.batchnorm import BatchNorm, _DarknetBatchNorm, _SyncedNormalize
from pydarknet.network import Darknet

GOLDEN = ROOT / "tests" / "golden-alexeyab-extra" / "batchnorm-train"
CASES = json.loads((GOLDEN / "manifest.json").read_text())["cases"]
TOLERANCE = 1e-4


def run_case(folder: Path, case: dict, dialect: str, build: str = "cpu") -> tuple[dict[str, torch.Tensor], BatchNorm]:
    """The case's last layer, loaded with params.npy, forward on input.npy and backward of grad.npy, trained as
    AlexeyAB's `build` (the goldens': its CPU build)."""
    net = Darknet(folder / "layer.cfg", dialect=dialect)
    net.set_training_build(build)
    layer = net.layers[-1]
    bn = layer.bn
    params = torch.from_numpy(np.load(folder / "params.npy"))
    nweights, n = case["nweights"], case["n"]
    linear = getattr(layer, "conv", None) or layer.linear
    with torch.no_grad():
        linear.weight.copy_(params[:nweights].view_as(linear.weight))
        for i, tensor in enumerate((bn.bias, bn.weight, bn.running_mean, bn.running_var)):
            tensor.copy_(params[nweights + i * n:nweights + (i + 1) * n])
    net.train()
    opt = net.options  # the layer's input is the net's shape (a [connected] case's 1x1 conv keeps it)
    x = torch.from_numpy(np.load(folder / "input.npy")).view(-1, opt.channels, opt.height, opt.width).requires_grad_(True)
    out = layer(x)
    out.backward(torch.from_numpy(np.load(folder / "grad.npy")).view_as(out))
    return {"output": out.detach(), "rolling_mean": bn.running_mean, "rolling_variance": bn.running_var,
            "input_delta": x.grad, "weight_updates": linear.weight.grad, "bias_updates": bn.bias.grad,
            "scale_updates": bn.weight.grad}, bn


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_training_batchnorm_matches_alexeyab(case: dict) -> None:
    folder = GOLDEN / case["name"]
    ours, _ = run_case(folder, case, "alexeyab")
    worst = {}
    for name, tensor in ours.items():
        gold = np.load(folder / f"{name}.npy").astype(np.float64)
        err = np.abs(tensor.detach().reshape(-1).double().numpy() - gold)
        worst[name] = (err / (1 + np.abs(gold))).max()
        assert worst[name] <= TOLERANCE, f"{case['name']} {name}: max |a - g| {err.max():.3e}"
    if "conv" in case["name"]:
        assert not ours["bias_updates"].any()  # AlexeyAB's CPU backward_batchnorm_layer: no backward_bias


def test_pjreddie_dialect_keeps_its_formulas() -> None:
    """The same conv in pjreddie's dialect: sqrt(var) + 1e-6, .99/.01, a bias gradient -- not AlexeyAB's numbers."""
    case = next(c for c in CASES if c["name"] == "conv_small_variance")
    folder = GOLDEN / case["name"]
    ours, bn = run_case(folder, case, "pjreddie")
    params = np.load(folder / "params.npy")
    x = torch.from_numpy(np.load(folder / "input.npy")).view(2, 2, 3, 3)
    pre = torch.nn.functional.conv2d(x, torch.from_numpy(params[:6]).view(3, 2, 1, 1))
    var, mean = torch.var_mean(pre, dim=(0, 2, 3), correction=1)
    biases, scales = torch.from_numpy(params[6:9]), torch.from_numpy(params[9:12])
    expected = (pre - mean.view(1, -1, 1, 1)) / (var.sqrt() + 1e-6).view(1, -1, 1, 1) * scales.view(1, -1, 1, 1) \
        + biases.view(1, -1, 1, 1)
    torch.testing.assert_close(ours["output"], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours["rolling_mean"], 0.99 * torch.from_numpy(params[12:15]) + 0.01 * mean)
    assert ours["bias_updates"].abs().sum() > 0
    assert not np.allclose(ours["output"].numpy().ravel(), np.load(folder / "output.npy"), atol=1e-2)


def test_gpu_build_is_cudnns_batch_norm() -> None:
    """AlexeyAB's GPU build (the default; its cuDNN calls in forward/backward_batchnorm_layer_gpu): the biased
    batch variance in sqrt(var + .00001), the rolling mean and unbiased variance by .99/.01, a bias gradient."""
    case = next(c for c in CASES if c["name"] == "conv_small_variance")
    folder = GOLDEN / case["name"]
    ours, bn = run_case(folder, case, "alexeyab", build="gpu")
    params = np.load(folder / "params.npy")
    x = torch.from_numpy(np.load(folder / "input.npy")).view(2, 2, 3, 3)
    pre = torch.nn.functional.conv2d(x, torch.from_numpy(params[:6]).view(3, 2, 1, 1))
    var, mean = torch.var_mean(pre, dim=(0, 2, 3), correction=0)
    biases, scales = torch.from_numpy(params[6:9]), torch.from_numpy(params[9:12])
    expected = (pre - mean.view(1, -1, 1, 1)) / (var + 1e-5).sqrt().view(1, -1, 1, 1) * scales.view(1, -1, 1, 1) \
        + biases.view(1, -1, 1, 1)
    torch.testing.assert_close(ours["output"], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours["rolling_mean"], 0.99 * torch.from_numpy(params[12:15]) + 0.01 * mean)
    unbiased = var * pre[:, 0].numel() / (pre[:, 0].numel() - 1)
    torch.testing.assert_close(ours["rolling_variance"], 0.99 * torch.from_numpy(params[15:18]) + 0.01 * unbiased)
    grad = torch.from_numpy(np.load(folder / "grad.npy")).view_as(pre)
    torch.testing.assert_close(ours["bias_updates"], grad.sum(dim=(0, 2, 3)))


@pytest.mark.parametrize("alexeyab", [False, True])
def test_synchronised_path_computes_the_fused_numbers(alexeyab: bool) -> None:
    """--sync-bn's written-out formulas (_SyncedNormalize, here on one process) and the fused kernels agree."""
    g = torch.Generator().manual_seed(5)
    x = (torch.randn(2, 3, 4, 5, generator=g) * 0.003).requires_grad_(True)
    weight, bias, grad = torch.rand(3, generator=g) + 0.5, torch.randn(3, generator=g), torch.randn(2, 3, 4, 5, generator=g)
    fused, mean, var = _DarknetBatchNorm.apply(x, weight, bias, alexeyab)
    (dx_fused,) = torch.autograd.grad(fused, x, grad)
    x_norm, mean2, var2 = _SyncedNormalize.apply(x, None, alexeyab)
    synced = x_norm * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)
    (dx_synced,) = torch.autograd.grad(synced, x, grad)
    torch.testing.assert_close(synced, fused, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dx_synced, dx_fused, rtol=1e-4, atol=1e-3)
