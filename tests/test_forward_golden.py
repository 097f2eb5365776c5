"""Forward parity with the C Darknet: every golden `forward` case, layer by layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import GOLDEN, MANIFEST, cfg_path, golden_close
from golden_weights import build_random_weights
from helpers import case_input

CASES = MANIFEST["forward"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_layers_match_darknet(case, golden_net):
    net = golden_net(case["cfg"], case["width"], case["height"])
    x = torch.from_numpy(case_input(case)).reshape(1, *net.input_shape)
    with torch.no_grad():
        outputs = net.forward_layers(x)
    folder = GOLDEN / "forward" / case["name"]
    files = sorted(folder.glob("layer_*.npy"))
    assert files
    for f in files:
        index = int(f.stem.split("_")[1])
        ok, how = golden_close(outputs[index][0].numpy(), np.load(f))
        assert ok, f"{case['name']} layer {index} ({net.layers[index].kind}): {how}"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_layer_shapes_match_darknet(case, golden_net):
    """layers.txt: `index type C H W`; Darknet's table is stale for resized heads, so heads use the arrays."""
    net = golden_net(case["cfg"], case["width"], case["height"])
    for line in (GOLDEN / "forward" / case["name"] / "layers.txt").read_text().splitlines():
        index, kind, c, h, w = line.split()
        layer = net.layers[int(index)]
        assert layer.kind == kind
        if kind not in ("region", "yolo"):
            assert layer.out_shape == (int(c), int(h), int(w)), f"layer {index}"


def test_forward_returns_heads(golden_net):
    case = next(c for c in CASES if c["name"] == "yolov3-tiny_dog_416")
    net = golden_net(case["cfg"], case["width"], case["height"])
    x = torch.from_numpy(case_input(case))[None]
    with torch.no_grad():
        heads = net(x)
        every = net.forward_layers(x)
    assert [h.shape[1:] for h in heads] == [(255, 13, 13), (255, 26, 26)]
    for head, index in zip(heads, net.output_indices):
        assert torch.equal(head, every[index])


def test_wrong_input_size_is_a_clear_error(golden_net):
    from pydarknet import DarknetError

    net = golden_net("yolov2-tiny-slim.cfg", 160, 160)
    with pytest.raises(DarknetError, match="resize"):
        net(torch.zeros(1, 3, 96, 160))


def test_a_cached_golden_weights_file_is_checked_each_time(tmp_path):
    """A cached random-weights file that no longer matches the manifest's sha256 is rebuilt, not used."""
    entry = MANIFEST["random_weights"]["yolov2-tiny-slim.cfg"]
    out = build_random_weights(cfg_path("yolov2-tiny-slim.cfg"), entry["seed"], tmp_path / "w.weights", entry["sha256"])
    good = out.read_bytes()
    out.write_bytes(good[:-4] + b"\0\0\0\0")
    assert build_random_weights(cfg_path("yolov2-tiny-slim.cfg"), entry["seed"], out, entry["sha256"]).read_bytes() == good
