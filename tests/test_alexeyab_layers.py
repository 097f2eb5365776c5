"""AlexeyAB's layers, options and activations (issue 18), each against its C.

Two kinds of reference: small numpy transliterations of AlexeyAB's C loops
(commit 59596d78; function cited at each), on random inputs with the C's
edge cases, and the layer outputs of AlexeyAB's own Darknet in
tests/golden-alexeyab-extra/ (its README: cases, quirks, tolerances).  Then
the downstream paths on a cfg using every new layer and option: .weights /
.h5 / .pt round trips, the inference model and ONNX against eager.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from c_reference import reorg_cpu
from pydarknet import Darknet
from pydarknet.convert.fuse import fuse_batchnorm
from pydarknet.infer.detect import detect_image
from pydarknet.errors import CfgError, CfgWarning, DarknetError
from pydarknet.layers.activations import ACTIVATIONS
from pydarknet.train.state import TrainingState
from pydarknet.train.step import train_network

ROOT = Path(__file__).resolve().parent.parent
EXTRA = ROOT / "tests" / "golden-alexeyab-extra"
f32 = np.float32


# ---------------------------------------------------------------- activations (AlexeyAB src/activations.h/.c)

def expf(x):  # glibc's expf/logf/tanhf are correctly rounded: the double result rounded to float
    with np.errstate(over="ignore"):
        return np.exp(np.asarray(x, np.float64)).astype(f32)


def logf(x):
    return np.log(np.asarray(x, np.float64)).astype(f32)


def tanhf(x):
    return np.tanh(np.asarray(x, np.float64)).astype(f32)


def np_softplus(x, t):  # activations.h softplus_activate, float32
    e = expf(x)
    return np.where(x > t, x, np.where(x < -t, e, logf(e + f32(1)))).astype(f32)


def np_tanh_act(x):  # activations.h tanh_activate: 2/(1 + expf(-2x)) - 1
    return (f32(2) / (f32(1) + expf(f32(-2) * x)) - f32(1)).astype(f32)


def np_gelu(x):  # activations.h gelu_activate: double arithmetic around tanhf
    xd = x.astype(np.float64)
    inner = (0.797885 * xd + 0.035677 * (x.astype(np.float64) ** 3).astype(f32).astype(np.float64)).astype(f32)
    return (0.5 * xd * (1 + tanhf(inner).astype(np.float64))).astype(f32)


def np_norm_channels(x):  # activations.c activate_array_normalize_channels (x: C x P)
    out = np.zeros_like(x)
    for p in range(x.shape[1]):
        s = f32(0.0001)
        for k in range(x.shape[0]):
            if x[k, p] > 0:
                s += x[k, p]
        for k in range(x.shape[0]):
            out[k, p] = x[k, p] / s if x[k, p] > 0 else 0
    return out


def np_norm_channels_softmax(x, use_max_val):  # activations.c activate_array_normalize_channels_softmax
    out = np.zeros_like(x)
    for p in range(x.shape[1]):
        s = f32(0.0001)
        m = f32(0)
        if use_max_val:
            m = x[0, p]
            for k in range(x.shape[0]):
                m = max(m, x[k, p])
        for k in range(x.shape[0]):
            s += np.exp(x[k, p] - m)
        for k in range(x.shape[0]):
            out[k, p] = np.exp(x[k, p] - m) / s
    return out


C_ACTIVATIONS = {
    "mish": lambda x: (x * np_tanh_act(np_softplus(x, f32(20)))).astype(f32),  # activate_array_mish
    "swish": lambda x: (x * (f32(1) / (f32(1) + expf(-x)))).astype(f32),  # activate_array_swish
    "hard_mish": lambda x: np.where(x > 0, x, np.where(x > -2, x * x / f32(2) + x, f32(0))).astype(f32),
    "relu6": lambda x: np.minimum(np.maximum(x, f32(0)), f32(6)),  # the GPU kernel (the CPU activate() returns 0)
    "gelu": np_gelu,
    "elu": lambda x: np.where(x >= 0, x, expf(x) - f32(1)).astype(f32),
    "selu": lambda x: np.where(x >= 0, f32(1.0507) * x, f32(1.0507) * f32(1.6732) * (expf(x) - f32(1))).astype(f32),
    "logistic": lambda x: (f32(1) / (f32(1) + expf(-x))).astype(f32),
    "leaky": lambda x: np.where(x > 0, x, f32(0.1) * x).astype(f32),
    "revleaky": lambda x: np.where(x > 0, x, f32(0.1) * x).astype(f32),  # activate(): case REVLEAKY: case LEAKY:
}


def _grid() -> np.ndarray:
    xs = np.concatenate([
        np.linspace(-30, 30, 601), [-20.0, -20.0001, -19.9999, 20.0, 20.0001, 19.9999, -17.0, -12.0, -10.0, -2.0, -1.9999, 0.0, 6.0],
        np.random.default_rng(0).normal(0, 3, 400),
    ])
    return xs.astype(f32)


@pytest.mark.parametrize("name", sorted(C_ACTIVATIONS))
def test_elementwise_activations_are_alexeyabs_c(name):
    """Catches erf gelu, wrong constants, thresholds or branches.  Where the C cancels (mish's tanh_activate of a
    small softplus, elu near 0) one ulp of torch's exp against glibc's is amplified: atol 2e-6 there; torch's own
    mish is caught by test_mish_softplus_threshold_quirks."""
    x = _grid()
    with np.errstate(over="ignore"):
        theirs = C_ACTIVATIONS[name](x)
    ours = ACTIVATIONS[name](torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=2e-6)


def test_mish_softplus_threshold_quirks():
    """logf(expf(x) + 1) is exactly 0 for -20 <= x < ~-16.6 (1 + e rounds to 1), and below -20 softplus is expf(x)
    but tanh_activate of so small a value is 2/(1 + 1) - 1 = 0 in float: C's mish is exactly 0 there, torch's is not."""
    x = torch.tensor([-17.0, -16.7, -20.5, -40.0, 25.0, 20.5])
    y = ACTIVATIONS["mish"](x)
    assert torch.equal(y[:4], torch.zeros(4))
    assert y[4] == 25.0 and y[5] == 20.5  # softplus(x) = x above 20, tanh_activate(x) = 1
    assert (F.mish(x)[:4] != 0).all()  # the plausible wrong one


def test_gelu_is_darknets_tanh_form_not_erf():
    x = torch.linspace(-4, 4, 81)
    assert (ACTIVATIONS["gelu"](x) - F.gelu(x)).abs().max() > 1e-4


@pytest.mark.parametrize("name,ref", [
    ("normalize_channels", np_norm_channels),
    ("normalize_channels_softmax", lambda x: np_norm_channels_softmax(x, False)),
    ("normalize_channels_softmax_maxval", lambda x: np_norm_channels_softmax(x, True)),
])
def test_normalize_channels_act_per_pixel_with_eps(name, ref):
    """Across the channels of each pixel, eps 0.0001 in the denominator (softmax without it is 1e-4 off for
    few small channels; a softmax over the wrong axis is far off)."""
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, (2, 5, 3, 4)).astype(f32)
    x[0, :, 0, 0] = -1.0  # all negative: normalize_channels gives 0 (0/eps)
    x[1, :, 1, 1] = [-30, -31, -29, -30, -32]  # softmax without the max: exp tiny, eps dominates
    ours = ACTIVATIONS[name](torch.from_numpy(x)).numpy()
    for b in range(2):
        theirs = ref(x[b].reshape(5, -1)).reshape(5, 3, 4)
        np.testing.assert_allclose(ours[b], theirs, rtol=1e-5, atol=1e-7)
    if name == "normalize_channels_softmax":
        assert abs(ours[1, :, 1, 1].sum() - 1) > 0.5  # eps dominates: what a plain softmax would not give


# ---------------------------------------------------------------- numpy transliterations of layers

def np_shortcut_multilayer(inp, adds, weights, n, wn):
    """blas.c shortcut_multilayer_cpu, batch 1: inp (C*H*W,), adds list of flat arrays, weights flat or None."""
    src_outputs = inp.size
    out = np.zeros_like(inp)
    nweights = 0 if weights is None else weights.size
    layer_step = nweights // (n + 1) if nweights else 0
    step = src_outputs // layer_step if nweights else 0
    for src_i in range(src_outputs):
        s, max_val = f32(1), f32(-3.4e38)
        if weights is not None and wn != "none":
            if wn == "softmax":
                for i in range(n + 1):
                    w = weights[src_i // step + i * layer_step]
                    max_val = max(max_val, w)
            s = f32(0.0001)
            for i in range(n + 1):
                w = weights[src_i // step + i * layer_step]
                s += max(w, f32(0)) if wn == "relu" else np.exp(w - max_val)

        def norm(w, s=s, max_val=max_val):
            if wn == "relu":
                return max(w, f32(0)) / s
            if wn == "softmax":
                return np.exp(w - max_val) / s
            return w
        out[src_i] = inp[src_i] * norm(weights[src_i // step]) if weights is not None else inp[src_i]
        for i in range(n):
            if src_i < adds[i].size:
                a = adds[i][src_i]
                out[src_i] += a * norm(weights[src_i // step + (i + 1) * layer_step]) if weights is not None else a
    return out


def _net(tmp_path, text, name="n.cfg", **kw):
    cfg = tmp_path / name
    cfg.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Darknet(cfg, **kw)


def _trunk(c, h, w):
    return f"[net]\nwidth={w}\nheight={h}\nchannels={c}\n"


@pytest.mark.parametrize("wt,wn", [("per_feature", "relu"), ("per_feature", "softmax"), ("per_channel", "relu"),
                                   ("per_channel", "softmax"), ("none", "none")])
def test_shortcut_multilayer_matches_blas_loop(tmp_path, wt, wn):
    """Three inputs of 6 (the layer's), 4 (fewer: its channels only) and 9 (more: its first 6) channels, weights with
    negative entries (relu clips them), per_channel layout [input's C, first from's C, ...]."""
    text = _trunk(3, 5, 4) + (
        "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n"
        "[convolutional]\nfilters=9\nsize=1\nactivation=linear\n"
        "[convolutional]\nfilters=6\nsize=1\nactivation=linear\n"
        f"[shortcut]\nfrom=0,1\nweights_type={wt}\nweights_normalization={wn}\nactivation=linear\n"
    )
    net = _net(tmp_path, text).eval()
    sc = net.layers[3]
    if wt != "none":
        with torch.no_grad():
            sc.weights.copy_(torch.from_numpy(np.random.default_rng(2).uniform(-1, 1, sc.weights.numel()).astype(f32)))
        assert sc.weights.numel() == (3 if wt == "per_feature" else 18)
    x = torch.from_numpy(np.random.default_rng(3).normal(0, 1, (1, 3, 5, 4)).astype(f32))
    outs = net.forward_layers(x)
    flat = [o[0].detach().numpy().ravel() for o in outs]
    w = None if wt == "none" else sc.weights.detach().numpy().copy()
    theirs = np_shortcut_multilayer(flat[2], [flat[0], flat[1]], w, 2, wn)
    np.testing.assert_allclose(flat[3], theirs, rtol=1e-5, atol=1e-6)


def test_shortcut_fused_weights_use_lrelu(tmp_path):
    """network.c fuse_conv_batchnorm: relu normalisation folded with lrelu(w) = max(w, 0.001), then none."""
    text = _trunk(2, 3, 3) + "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n" \
        "[shortcut]\nfrom=-1\nweights_type=per_feature\nweights_normalization=relu\n"
    net = _net(tmp_path, text)
    sc = net.layers[1]
    with torch.no_grad():
        sc.weights.copy_(torch.tensor([-0.5, 2.0]))
    sc.fuse_normalization()
    assert sc.weights_normalization == "none"
    expected = np.array([0.001, 2.0], dtype=f32) / f32(0.0001 + 0.001 + 2.0)
    np.testing.assert_allclose(sc.weights.detach().numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("reverse", [0, 1])
def test_reorg3d_is_reorg_cpu_on_output_sizes(tmp_path, reverse):
    """reorg_layer.c forward_reorg_layer passes l.out_w/out_h/out_c (pjreddie's and AlexeyAB's [reorg] pass the input's)."""
    c, h, w = (32, 3, 4) if reverse else (4, 4, 6)
    net = _net(tmp_path, _trunk(c, h, w) + f"[reorg3d]\nstride=2\nreverse={reverse}\n")
    x = np.arange(c * h * w, dtype=f32)
    ours = net(torch.from_numpy(x).view(1, c, h, w))[0].numpy().ravel()
    oc, oh, ow = net.layers[0].out_shape
    np.testing.assert_array_equal(ours, reorg_cpu(x, ow, oh, oc, 2, forward=reverse))
    # and it is neither pjreddie's [reorg] (= AlexeyAB's [reorg], REORG_OLD) nor pixel_unshuffle
    if not reverse:
        pj = _net(tmp_path, _trunk(c, h, w) + "[reorg]\nstride=2\n", "pj.cfg")
        y = torch.from_numpy(x).view(1, c, h, w)
        assert not torch.equal(pj(y)[0], net(y)[0])
        assert not torch.equal(F.pixel_unshuffle(y, 2), net(y)[0])


def test_upsample_negative_stride_sums_blocks(tmp_path):
    """upsample_layer.c forward: output zeroed, upsample_cpu(forward=0) adds scale * each input: a block SUM."""
    net = _net(tmp_path, _trunk(2, 4, 6) + "[upsample]\nstride=-2\nscale=0.5\n")
    x = torch.randn(1, 2, 4, 6)
    expected = 0.5 * x.reshape(1, 2, 2, 2, 3, 2).sum(dim=(3, 5))
    torch.testing.assert_close(net(x)[0], expected)
    with pytest.raises(CfgError, match="divisible"):
        _net(tmp_path, _trunk(2, 5, 6) + "[upsample]\nstride=-2\n", "odd.cfg")


def test_local_avgpool_does_not_count_padding(tmp_path):
    """maxpool_layer.c forward_local_avgpool_layer: avg over the taps inside the image (/counter)."""
    net = _net(tmp_path, _trunk(1, 3, 3) + "[local_avgpool]\nsize=3\nstride=1\n")
    x = torch.arange(9, dtype=torch.float32).view(1, 1, 3, 3)
    y = net(x)[0]
    # window at (0,0) starts at -1: taps (0..1)x(0..1) -> mean(0,1,3,4) = 2
    assert y[0, 0, 0, 0].item() == pytest.approx(2.0)
    assert y[0, 0, 1, 1].item() == pytest.approx(4.0)
    assert y[0, 0, 2, 2].item() == pytest.approx((4 + 5 + 7 + 8) / 4)


def test_maxpool_depth_takes_strided_channels(tmp_path):
    """forward_maxpool_layer maxpool_depth: out[g] = max over k = g, g + out_c, ... (not contiguous groups)."""
    net = _net(tmp_path, _trunk(7, 2, 2) + "[maxpool]\nmaxpool_depth=1\nout_channels=3\nsize=1\nstride=1\n")
    x = torch.randn(1, 7, 2, 2)
    y = net(x)[0]
    for g in range(3):
        torch.testing.assert_close(y[0, g], x[0, g::3].amax(dim=0))


def test_scale_channels_and_sam(tmp_path):
    text = _trunk(4, 3, 5) + (
        "[empty]\n"  # 0: the input
        "[avgpool]\n[scale_channels]\nfrom=0\n"  # 2: in[c] * from[c, y, x]
        "[convolutional]\nfilters=1\nsize=1\nactivation=logistic\n"  # 3
        "[scale_channels]\nfrom=2\nscale_wh=1\nactivation=leaky\n"  # 4: in[y, x] * from[c, y, x]
        "[sam]\nfrom=2\n"  # 5: elementwise
    )
    net = _net(tmp_path, text).eval()
    x = torch.randn(1, 4, 3, 5)
    o = net.forward_layers(x)
    assert net.layers[2].out_shape == (4, 3, 5) and net.layers[4].out_shape == (4, 3, 5)
    torch.testing.assert_close(o[2], x.mean(dim=(2, 3), keepdim=True) * x)
    torch.testing.assert_close(o[4], F.leaky_relu(o[3] * o[2], 0.1))
    torch.testing.assert_close(o[5], o[4] * o[2])


def test_antialiasing_blur_is_fixed_and_not_stored(tmp_path):
    """make_convolutional_layer: host conv at stride 1, then a depthwise [1 2 1]x[1 2 1]/16 blur with the stride;
    load_weights_upto reads only the host's floats."""
    plain = _net(tmp_path, _trunk(2, 8, 8) + "[convolutional]\nfilters=3\nsize=3\nstride=1\npad=1\nactivation=leaky\n", "p.cfg")
    aa = _net(tmp_path, _trunk(2, 8, 8) + "[convolutional]\nfilters=3\nsize=3\nstride=2\npad=1\nactivation=leaky\n"
              "antialiasing=1\n", "aa.cfg")
    assert aa.layers[0].out_shape == (3, 4, 4)
    assert sum(t.numel() for t in aa.layers[0].darknet_tensors()) == sum(t.numel() for t in plain.layers[0].darknet_tensors())
    with torch.no_grad():
        aa.layers[0].conv.weight.copy_(plain.layers[0].conv.weight)
        aa.layers[0].conv.bias.copy_(plain.layers[0].conv.bias)
    x = torch.randn(1, 2, 8, 8)
    k = torch.tensor([1.0, 2.0, 1.0])
    blur = (torch.outer(k, k) / 16).expand(3, 1, 3, 3)
    expected = F.conv2d(plain(x)[0], blur, stride=2, padding=1, groups=3)
    torch.testing.assert_close(aa(x)[0], expected)
    # AlexeyAB BFLOPs: the stride-1 host's (8x8 output), the blur not counted
    assert aa.layers[0].bflops() == pytest.approx(2 * 3 * 2 * 9 * 64 / 1e9)


def test_grouped_conv_bflops_are_divided_by_groups(tmp_path):
    net = _net(tmp_path, _trunk(8, 4, 4) + "[convolutional]\nfilters=8\ngroups=4\nsize=3\npad=1\nstride=1\n")
    assert net.layers[0].bflops() == pytest.approx(2 * 8 * 2 * 9 * 16 / 1e9)  # 2 * nweights * out_h * out_w
    assert "8/4" in net.layers[0].describe()


@pytest.mark.parametrize("text,match", [
    ("[lstm]\noutput=4\n", r"\[lstm\] \(recurrent\) is in pjreddie's and AlexeyAB's Darknet; pydarknet does not implement it"),
    ("[conv_lstm]\noutput=4\n", r"\[conv_lstm\] \(recurrent\) is in AlexeyAB's Darknet"),
    ("[contrastive]\n", r"\[contrastive\] needs yolo_layer="),
    ("[convolutional]\nfilters=2\nxnor=1\n", r"xnor=1 \(XNOR nets\) is in pjreddie's and AlexeyAB's Darknet; pydarknet does not implement it"),
    ("[convolutional]\nfilters=2\nshare_index=0\n", r"share_index: layer 0 \(= 0\) is not an earlier layer"),
    ("[convolutional]\nfilters=2\nsize=3\nsway=1\n", r"sway=1 .*is in AlexeyAB's Darknet"),
    ("[convolutional]\nfilters=2\nsize=3\npadding=0\ndilation=2\n", r"dilation=2 .*im2col"),
    ("[convolutional]\nfilters=3\n[shortcut]\nfrom=-1\nweights_type=per_feature\n", r"Incorrect weights_normalization"),
    ("[convolutional]\nfilters=3\n[sam]\nfrom=-1\nactivation=mish\n", r"activation=mish in \[sam\]"),
])
def test_refusals_name_the_feature(tmp_path, text, match):
    with pytest.raises(CfgError, match=match):
        _net(tmp_path, _trunk(3, 8, 8) + text)


# ---------------------------------------------------------------- AlexeyAB's own outputs

def _cases() -> list[str]:
    if not (EXTRA / "manifest.json").exists():
        return []
    return [c["name"] for c in json.loads((EXTRA / "manifest.json").read_text())["cases"]]


def _close(ours: np.ndarray, theirs: np.ndarray) -> str | None:
    """../shared/golden-alexeyab/README.md tolerance over finite entries: max abs <= 1e-3*max(1, max|b|), rel L2 <= 1e-4."""
    if ours.shape != theirs.shape:
        return f"shape {ours.shape} != {theirs.shape}"
    finite = np.isfinite(theirs)
    a, b = ours[finite].astype(np.float64), theirs[finite].astype(np.float64)
    if not np.isfinite(a).all():
        return "non-finite where Darknet is finite"
    err = np.abs(a - b).max(initial=0)
    if err > 1e-3 * max(1.0, np.abs(b).max(initial=0)):
        return f"max abs error {err:.3g}"
    l2 = np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)
    return f"relative L2 {l2:.3g}" if l2 > 1e-4 else None


# relu6 is all zeros in AlexeyAB's CPU build (activate() has no RELU6 case); pydarknet computes min(max(x,0),6).
SKIP = {("activations", 8), ("activations_wide", 8)}


def _golden_net(name: str) -> tuple[Darknet, dict]:
    case = next(c for c in json.loads((EXTRA / "manifest.json").read_text())["cases"] if c["name"] == name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(EXTRA / name / "network.cfg", dialect="alexeyab").eval()
    net.load_weights(EXTRA / name / "network.weights")
    return net, case


@pytest.mark.skipif(not _cases(), reason="tests/golden-alexeyab-extra/ not there")
@pytest.mark.parametrize("name", _cases())
def test_layers_match_alexeyab_darknet(name):
    net, case = _golden_net(name)
    if case["fuse_conv_batchnorm"]:
        net = fuse_batchnorm(net)  # what AlexeyAB's test_detector runs: fuse_conv_batchnorm
    x = torch.from_numpy(np.load(EXTRA / name / "input.npy"))[None]
    with torch.no_grad():
        outs = net.forward_layers(x)
    problems = []
    for line in (EXTRA / name / "layers.txt").read_text().splitlines():
        index = int(line.split()[0])
        if (name, index) in SKIP:
            continue
        theirs = np.load(EXTRA / name / f"layer_{index:03d}.npy")
        problem = _close(outs[index][0].numpy(), theirs)
        if problem:
            problems.append(f"layer {index} ({line}): {problem}")
    assert not problems, "\n".join(problems)


@pytest.mark.skipif(not _cases(), reason="tests/golden-alexeyab-extra/ not there")
@pytest.mark.parametrize("name", [n for n in _cases() if not n.startswith("activations")])
def test_inference_model_matches_alexeyab_darknet(name):
    """The fast inference model (batch norm and [shortcut] weights folded as fuse_conv_batchnorm, channels_last) against
    Darknet's last layer: fused cases only (the unfused ones differ on purpose, see the golden README)."""
    from pydarknet.infer.engine import InferenceModel

    net, case = _golden_net(name)
    if not case["fuse_conv_batchnorm"]:
        pytest.skip("Darknet ran unfused")
    x = torch.from_numpy(np.load(EXTRA / name / "input.npy"))[None]
    last = len(net.layers) - 1
    ours = InferenceModel(net)(x)[-1][0].numpy()
    problem = _close(ours, np.load(EXTRA / name / f"layer_{last:03d}.npy"))
    assert problem is None, problem


def test_winograd_skips_grouped_dilated_and_strided_convs(tmp_path):
    from pydarknet.infer.winograd import suits

    for extra in ("groups=2", "dilation=2", "stride_x=2\nstride_y=1"):
        net = _net(tmp_path, _trunk(128, 8, 8) + f"[convolutional]\nfilters=128\nsize=3\npad=1\n{extra}\n")
        assert not suits(net.layers[0].conv), extra
    # antialiasing: the host conv runs at stride 1 (Winograd may take it), the fixed blur has the stride
    net = _net(tmp_path, _trunk(128, 8, 8) + "[convolutional]\nfilters=128\nsize=3\npad=1\nstride=2\nantialiasing=1\n")
    assert suits(net.layers[0].conv) and net.layers[0].blur.stride == (2, 2)


@pytest.mark.skipif(not _cases(), reason="tests/golden-alexeyab-extra/ not there")
def test_relu6_differs_from_alexeyabs_cpu_zeros():
    """The documented difference: AlexeyAB's CPU relu6 layer is all 0, pydarknet's min(max(x, 0), 6)."""
    net, _ = _golden_net("activations")
    x = torch.from_numpy(np.load(EXTRA / "activations" / "input.npy"))[None]
    with torch.no_grad():
        ours = net.forward_layers(x)[8][0].numpy()
    assert not np.any(np.load(EXTRA / "activations" / "layer_008.npy"))
    assert ours.max() > 0 and ours.min() >= 0 and ours.max() <= 6



# ---------------------------------------------------------------- [Gaussian_yolo] (AlexeyAB src/gaussian_yolo_layer.c)

def _gaussian_cfg(head: str = "", after: str = "", classes: int = 2, filters: int = 22) -> str:
    """8x8 input, a 4x4 grid of 2 anchors (mask=1,2 of num=3): a 1x1 conv of `filters` (2*(classes+9)), then the head."""
    return _trunk(3, 8, 8) + f"""
[maxpool]
size=2
stride=2

[convolutional]
filters={filters}
size=1
activation=linear

[Gaussian_yolo]
mask=1,2
anchors=2,3, 4,5, 6,7
num=3
classes={classes}
{head}
{after}"""


def test_gaussian_yolo_forward_is_forward_gaussian_yolo_layer(tmp_path):
    """forward_gaussian_yolo_layer: logistic on 2*w*h values from x mu and from y mu (mean and sigma), then
    scal_add_cpu on w*h of them (the means only), logistic on w sigma, h sigma and objectness+classes; w mu, h mu raw."""
    net = _net(tmp_path, _gaussian_cfg("scale_x_y=1.3")).eval()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        raw, out = (t[0].view(2, 11, 4, 4).numpy() for t in net.forward_layers(x)[1:])
    logistic = 1 / (1 + np.exp(-raw.astype(np.float64)))
    want = logistic.copy()
    want[:, [4, 6]] = raw[:, [4, 6]]
    want[:, [0, 2]] = logistic[:, [0, 2]] * f32(1.3) + f32(-0.5 * (f32(1.3) - f32(1)))
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)


def test_gaussian_yolo_options(tmp_path):
    """parse_gaussian_yolo: yolo_point words other than left_top/right_bottom are YOLO_CENTER; nms_kind also knows
    cornersnms (parse_yolo does not); map= and the loss keys are training-only (warned); a wrong filters= is refused."""
    head = _net(tmp_path, _gaussian_cfg("yolo_point=middle\nnms_kind=cornersnms")).layers[2]
    assert (head.yolo_point, head.nms_kind, head.mask, head.entries) == ("center", "cornersnms", [1, 2], 11)
    yolo = _net(tmp_path, _trunk(3, 8, 8) + "[convolutional]\nfilters=7\nsize=1\n[yolo]\nclasses=2\nnms_kind=cornersnms\n")
    assert yolo.layers[1].nms_kind == "default"
    cfg = tmp_path / "map.cfg"
    cfg.write_text(_gaussian_cfg("map=no.map\nuc_normalizer=2"))
    with pytest.warns(CfgWarning) as caught:
        Darknet(cfg, strict=False)
    assert sorted(str(w.message).split("'")[1] for w in caught) == ["map=no.map", "uc_normalizer=2"]
    assert all("is a training option of AlexeyAB's Darknet" in str(w.message) for w in caught)
    with pytest.raises(CfgError, match=r"len\(mask\)\*\(classes\+9\) = 2\*\(3\+9\) = 24 input channels"):
        _net(tmp_path, _gaussian_cfg(classes=3))


def test_gaussian_yolo_nms_kind_is_the_last_detection_layers(tmp_path):
    """AlexeyAB's test_detector takes nms_kind and beta_nms from the last YOLO / GAUSSIAN_YOLO / REGION layer, not
    from the last layer; training a [Gaussian_yolo] network is refused."""
    from pydarknet.infer.detect import nms_kind
    from pydarknet.train.options import check_training_cfg

    net = _net(tmp_path, _gaussian_cfg("nms_kind=diounms\nbeta_nms=0.8", after="[route]\nlayers=-2\n"))
    assert net.output_indices == [2] and nms_kind(net) == ("diounms", 0.8)
    with pytest.raises(DarknetError, match=r"training a \[gaussian_yolo\] head is not supported"):
        train_network(net, TrainingState(net), torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 5))
    cfg = tmp_path / "train.cfg"
    cfg.write_text(_gaussian_cfg("ignore_thresh=.7"))
    with pytest.raises(DarknetError, match=r"\[gaussian_yolo\] is AlexeyAB's and pydarknet train does not implement its "
                                           "Gaussian YOLO loss"):
        check_training_cfg(cfg)


def _golden_rows(name: str, file: str) -> np.ndarray:
    """ab_layers' detections file: per detection x y w h objectness uc0..uc3 prob_0..prob_C-1 (float32 values)."""
    return np.loadtxt(EXTRA / name / file, skiprows=1, ndmin=2)


@pytest.mark.skipif("gaussian_yolo" not in _cases(), reason="tests/golden-alexeyab-extra/gaussian_yolo not there")
@pytest.mark.parametrize("fast", [False, True], ids=["eager", "inference_model"])
def test_gaussian_yolo_detections_match_alexeyab_darknet(fast):
    """get_network_boxes (three [Gaussian_yolo] heads: get_gaussian_yolo_box with scale_x_y and yolo_point,
    prob = obj*class*(1 - mean sigma) > thresh, correct_gaussian_yolo_boxes letterboxed into a 100x60 image) and
    test_detector's NMS (the last head's diounms, beta_nms .7), every field, in Darknet's array order."""
    from pydarknet.infer.detect import candidates, detections_from_heads
    from pydarknet.infer.engine import InferenceModel

    net, case = _golden_net("gaussian_yolo")
    spec = case["detections"]
    x = torch.from_numpy(np.load(EXTRA / "gaussian_yolo" / "input.npy"))[None]
    with torch.no_grad():
        heads = InferenceModel(net)(x) if fast else net(x)
    sizes = [tuple(spec["image"])]
    found = candidates(net, heads, sizes, spec["thresh"])
    theirs = _golden_rows("gaussian_yolo", "detections.txt")
    ours = torch.cat([found.boxes, found.objectness[:, None], found.probs], dim=1).numpy()
    problem = _close(ours, np.delete(theirs, range(5, 9), axis=1))  # the uncertainties are layer outputs: see above
    assert problem is None, problem
    after = _golden_rows("gaussian_yolo", "detections_nms.txt")
    after = np.delete(after, range(5, 9), axis=1)
    after = after[(after[:, 5:] > 0).any(axis=1)]  # Darknet prints only those; pydarknet returns only those
    dets = detections_from_heads(net, heads, sizes, spec["thresh"], 0.5, spec["nms"])[0]
    ours = np.array([[*d.box, d.objectness, *d.probs] for d in dets], dtype=np.float32)
    problem = _close(ours, after)
    assert problem is None, problem


def test_gaussian_yolo_decode_is_not_the_layers(tmp_path):
    """The head's decode lives in pydarknet.infer.decode (decode_gaussian_yolo): no layer module imports pydarknet.infer.decode
    or pydarknet.infer.detect; decode_yolo refuses a head whose box entries are not x, y, w, h rather than misread it."""
    import ast

    from pydarknet.infer.decode import decode_gaussian_yolo, decode_yolo

    layers = Path(__file__).resolve().parents[1] / "pydarknet" / "layers"
    for path in layers.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.startswith(("pydarknet.infer.decode", "pydarknet.infer.detect")) for n in names), f"{path.name} imports {names}"
    net = _net(tmp_path, _gaussian_cfg()).eval()
    head = net.layers[2]
    out = torch.rand((1, 22, 4, 4), generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="coords=8"):
        decode_yolo(head, out, 32, 32, 0.1)
    found = decode_gaussian_yolo(head, out, 32, 32, 0.1)
    assert found.count == 2 * 16 and found.probs.shape[1] == 2 and len(found.index) > 0


def test_gaussian_yolo_resizes(tmp_path):
    """resize_gaussian_yolo_layer: the grid follows the input; detect runs on the new size."""
    net = _net(tmp_path, _gaussian_cfg()).eval()
    net.resize(16, 8)
    assert net.layers[2].out_shape == (22, 4, 8)
    dets = detect_image(net, np.random.default_rng(0).random((3, 20, 30)).astype(f32), thresh=0.0)
    assert dets and all(d.probs.shape == (2,) for d in dets)

# ---------------------------------------------------------------- downstream: weights, h5, pt, inference, ONNX

EVERYTHING = _trunk(3, 16, 16) + """
[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=mish

[convolutional]
batch_normalize=1
filters=8
groups=8
size=3
stride_x=1
stride_y=1
pad=1
activation=hard_mish

[convolutional]
batch_normalize=1
filters=8
size=3
dilation=2
pad=1
activation=gelu

[shortcut]
from=-2,-3
weights_type=per_channel
weights_normalization=softmax
activation=swish

[shortcut]
from=0
weights_type=per_feature
weights_normalization=relu
activation=relu6

[convolutional]
filters=8
size=1
activation=normalize_channels_softmax_maxval

[sam]
from=-2

[route]
layers=-1,0
groups=2
group_id=1

[avgpool]

[scale_channels]
from=-2

[convolutional]
filters=1
size=1
activation=logistic

[scale_channels]
from=-2
scale_wh=1
activation=leaky

[empty]

[local_avgpool]
size=3
stride=1

[maxpool]
size=2
stride_x=2
stride_y=1

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
antialiasing=1
activation=selu

[maxpool]
maxpool_depth=1
out_channels=4
size=1
stride=1

[maxpool]
size=2
stride=2
antialiasing=2

[route]
layers=13

[upsample]
stride=-2

[reorg3d]
stride=2

[convolutional]
filters=32
size=1
groups=4
activation=normalize_channels

[reorg3d]
stride=2
reverse=1

[silence]

[convolutional]
filters=6
size=3
stride_x=2
stride_y=1
pad=1
activation=elu
"""


def _randomise(net: Darknet, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in net.layers:
            for t in layer.darknet_tensors():
                t.copy_(torch.randn(t.shape, generator=g) * 0.5)
            if getattr(layer, "bn", None) is not None:
                layer.bn.running_var.copy_(torch.rand(layer.bn.running_var.shape, generator=g) + 0.5)


def test_everything_round_trips_and_inference_matches_eager(tmp_path):
    from pydarknet.convert.hdf5 import h5_bytes, load_h5
    from pydarknet.convert.torch_format import load_pt, pt_bytes
    from pydarknet.infer.engine import InferenceModel
    from pydarknet.weights import weights_bytes

    cfg = tmp_path / "everything.cfg"
    cfg.write_text(EVERYTHING)
    net = Darknet(cfg, strict=True).eval()
    kinds = {layer.kind for layer in net.layers}
    assert {"sam", "scale_channels", "local_avgpool", "reorg3d", "empty"} <= kinds
    _randomise(net, 0)
    with torch.no_grad():
        net.layers[4].weights.copy_(torch.tensor([0.7, 1.3]))  # relu-normalised: > 0.001, fused (lrelu) == eager (relu)
    path = tmp_path / "w.weights"
    net.save_weights(path)
    original = path.read_bytes()
    again = Darknet(cfg).eval()
    again.load_weights(path)
    assert weights_bytes(again) == original
    assert weights_bytes(load_h5(None, io.BytesIO(h5_bytes(again)), "m.h5")) == original
    assert weights_bytes(load_pt(None, io.BytesIO(pt_bytes(again)), "m.pt")) == original
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        eager = again(x)
    for cl in (True, False):
        fast = InferenceModel(again, channels_last=cl)(x)
        for a, b in zip(fast, eager):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    print(again.summary())


def test_everything_onnx_matches_eager(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from pydarknet.convert.onnx_export import onnx_bytes

    cfg = tmp_path / "everything.cfg"
    cfg.write_text(EVERYTHING)
    net = Darknet(cfg).eval()
    _randomise(net, 1)
    model = onnx_bytes(net)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        eager = net(x)
    outs = session.run(None, {"input": x.numpy()})
    for a, b in zip(outs, eager):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-4, atol=1e-4)
