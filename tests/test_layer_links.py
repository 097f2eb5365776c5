"""Layers that take another layer's objects (not its output), and AlexeyAB's `policy=sgdr`.

- `[convolutional] share_index=` (AlexeyAB, TridentNet): the weights, biases and batch norm of an earlier
  convolution, nothing of its own in the .weights file; refused when AlexeyAB's parse stops or its fused and
  unfused numbers differ, and refused by `pydarknet train` (its update runs once per sharing layer);
  the numbers against AlexeyAB's C: tests/test_alexeyab_layers.py (the `share` and `share_nofuse` extra goldens).
- `[contrastive]` (AlexeyAB): a training loss; its output at inference is zeros; `yolo_layer=` must be a [yolo].
- `[net] policy=sgdr`: builds (inference does not use the schedule), auto picks AlexeyAB's dialect, train takes it
  (tests/test_policy_alexeyab.py).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from pydarknet import Darknet
from pydarknet.convert.fuse import fuse_batchnorm
from pydarknet.errors import CfgError, DarknetError
from pydarknet.infer.engine import InferenceModel
from pydarknet.train.options import check_training_cfg

NET = "[net]\nwidth=16\nheight=16\nchannels=3\n{net}\n"
CONV = "\n[convolutional]\nfilters={filters}\nsize=3\nstride=1\npad=1\nactivation=leaky\n{extra}\n"


def conv(filters: int = 4, extra: str = "") -> str:
    return CONV.format(filters=filters, extra=extra)


def build(tmp_path: Path, text: str, **kwargs) -> Darknet:
    path = tmp_path / "net.cfg"
    path.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Darknet(path, **kwargs)


def shared_net(tmp_path: Path, bn: int = 1) -> Darknet:
    """0: conv, 1: conv (shared by 3), 2: route 0, 3: conv share_index=1 with dilation 2 and its own activation."""
    text = (NET.format(net="") + conv(extra=f"batch_normalize={bn}") + conv(extra=f"batch_normalize={bn}")
            + "\n[route]\nlayers=0\n" + conv(extra=f"batch_normalize={bn}\nshare_index=-2\ndilation=2\n")
            .replace("activation=leaky", "activation=mish"))
    return build(tmp_path, text)


def test_share_index_uses_the_shared_layers_parameters(tmp_path: Path) -> None:
    net = shared_net(tmp_path)
    owner, sharer = net.layers[1], net.layers[3]
    assert sharer.share_index == 1 and net.dialect == "alexeyab"
    assert sharer.conv.weight is owner.conv.weight and sharer.bn is owner.bn
    assert (sharer.conv.dilation, sharer.conv.padding) == ((2, 2), (2, 2))
    assert sharer.darknet_tensors() == []  # load_weights_upto skips l.share_layer != NULL
    floats = sum(t.numel() for layer in net.layers[:2] for t in layer.darknet_tensors())
    path = tmp_path / "net.weights"
    net.save_weights(path)
    assert path.stat().st_size == 20 + 4 * floats
    other = shared_net(tmp_path)
    other.load_weights(path)
    assert other.layers[3].conv.weight is other.layers[1].conv.weight
    torch.testing.assert_close(other.layers[3].conv.weight, owner.conv.weight)


@pytest.mark.parametrize("bn", [0, 1])
def test_share_index_folds_like_its_owner(tmp_path: Path, bn: int) -> None:
    # fuse_conv_batchnorm folds the shared layer once and the sharer then computes with the folded weights:
    # the same numbers as folding each layer's (shared) batch norm on its own
    torch.manual_seed(0)
    net = shared_net(tmp_path, bn).eval()
    if bn:
        with torch.no_grad():
            for layer in net.layers[:2]:
                layer.bn.running_mean.uniform_(-0.1, 0.1)
                layer.bn.running_var.uniform_(0.5, 2.0)
                layer.bn.weight.uniform_(0.5, 1.5)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        eager = net.forward_layers(x)[3]
        torch.testing.assert_close(fuse_batchnorm(net).forward_layers(x)[3], eager, rtol=1e-5, atol=1e-5)
        (out,) = InferenceModel(net)(x)  # the network's output: its last layer, the sharer
    torch.testing.assert_close(out, eager, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("extra, expect", [
    ("share_index=0\nfilters=8", "other size, channels, filters or groups"),
    ("share_index=2", "is not an earlier layer"),
    ("share_index=-1\nbatch_normalize=0", "batch_normalize=0 but layer 1 has batch_normalize=1"),
])
def test_share_index_refusals(tmp_path: Path, extra: str, expect: str) -> None:
    text = NET.format(net="") + conv(extra="batch_normalize=1") + conv(extra="batch_normalize=1") + \
        conv(extra=extra if "batch_normalize" in extra else "batch_normalize=1\n" + extra)
    text = text.replace("filters=4\nsize=3\nstride=1\npad=1\nactivation=leaky\nshare_index=0\nfilters=8",
                        "filters=8\nsize=3\nstride=1\npad=1\nactivation=leaky\nshare_index=0")
    with pytest.raises(CfgError, match=expect) as err:
        build(tmp_path, text)
    assert str(err.value).startswith(f"{tmp_path / 'net.cfg'}:")


def test_share_index_is_not_trained(tmp_path: Path) -> None:
    shared_net(tmp_path)
    with pytest.raises(DarknetError, match=r"share_index=-2: pydarknet train does not implement training with this "
                                           r"option of AlexeyAB's Darknet"):
        check_training_cfg(tmp_path / "net.cfg")


def contrastive_cfg(embedding: str = "embedding_layer=-2", route: str = "0", after: str = "") -> str:
    """0: the embedding conv (8 filters), 1: the [yolo]'s conv, 2: [yolo] (1 anchor), 3: route, 4: [contrastive]."""
    return (NET.format(net="") + conv(filters=8) + conv(filters=6)
            + f"\n[yolo]\nmask=0\nanchors=4,4\nclasses=1\nnum=1\n{embedding}\n"
            + f"\n[route]\nlayers={route}\n" + "\n[contrastive]\nclasses=1\nyolo_layer=-2\ntemperature=1.0\n" + after)


def test_contrastive_is_zeros_at_inference(tmp_path: Path) -> None:
    net = build(tmp_path, contrastive_cfg()).eval()
    assert net.dialect == "alexeyab"
    outputs = net.forward_layers(torch.rand(1, 3, 16, 16))
    assert outputs[4].shape == outputs[3].shape and not outputs[4].any()
    with pytest.raises(DarknetError, match=r"\[contrastive\] is AlexeyAB's and pydarknet train does not implement "
                                           r"its contrastive loss"):
        check_training_cfg(tmp_path / "net.cfg")


@pytest.mark.parametrize("text, expect", [
    (NET.format(net="") + conv(filters=6) + "\n[contrastive]\n", "needs yolo_layer="),
    (NET.format(net="") + conv(filters=6) + "\n[contrastive]\nyolo_layer=-1\n",
     r"layer 0 is \[convolutional\], not a \[yolo\] layer"),
    (contrastive_cfg(route="1"), r"embedding size 6 \(6 input channels / 1 anchors\) but the \[yolo\] layer 2's is 8"),
    (contrastive_cfg(embedding=""), r"embedding size 8 .* layer 2's is 0"),
    (contrastive_cfg(embedding="embedding_layer=3"), r"embedding_layer: layer 3 \(= 3\) is not an earlier layer"),
    (contrastive_cfg(after="\n[route]\nlayers=-1\n"), r"reads layer 4, a \[contrastive\], whose output"),
])
def test_contrastive_refusals(tmp_path: Path, text: str, expect: str) -> None:
    # AlexeyAB's parse_contrastive / make_contrastive_layer checks, and nothing may read the layer's output
    with pytest.raises(CfgError, match=expect):
        build(tmp_path, text)


def test_sgdr_policy_builds_and_is_trained(tmp_path: Path) -> None:
    net = build(tmp_path, NET.format(net="policy=sgdr\nsgdr_cycle=1000") + conv())
    assert net.dialect == "alexeyab" and net.options.policy == "sgdr" and net.options.sgdr_cycle == 1000
    assert "policy=sgdr" in net.dialect_reason
    check_training_cfg(tmp_path / "net.cfg")
    with pytest.raises(CfgError, match=r"unknown policy 'cosine' \(known: constant, .*, random, sgdr\)"):
        build(tmp_path, NET.format(net="policy=cosine") + conv())
