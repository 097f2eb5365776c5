"""Reduced precision (pydarknet.infer.precision, pydarknet.infer.quantize) on the shipped demo model.

bf16 finds every object fp32 finds and int8 all but 5% (same class, IoU >= .8: pydarknet.eval.agreement), on
the demo image and held-out shapes images (make_shapes seed 1; the model was trained on seed 0); a saved int8
calibration gives the same model again; the refusals are one line; the CLI parses --precision.  The int8 model
is checked through its converted graph run without inductor (the same quantised arithmetic, emulated in
float32; compiling takes ~20 s), the compiled one in a slow test.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from conftest import DEMO_CFG, DEMO_IMAGE, DEMO_WEIGHTS
from pydarknet import Darknet
from pydarknet.cli import build_parser, main
from pydarknet.errors import DarknetError
from pydarknet.eval.agreement import found_again
from pydarknet.image import load_frame
from pydarknet.infer.detect import detect_batch
from pydarknet.infer.engine import InferenceModel
from pydarknet.infer.inputs import network_batch
from pydarknet.infer.precision import check_precision, float_layers
from pydarknet.infer.quantize import Calibration
from tools.make_shapes import detection_scene

HELD_OUT = 7  # shapes images besides the demo image
CALIBRATION = 8


@pytest.fixture(scope="module")
def demo() -> tuple[Darknet, list[np.ndarray], torch.Tensor]:
    """The demo network, its frames (the demo image, held-out shapes images) and their network inputs."""
    net = Darknet(DEMO_CFG)
    net.load_weights(DEMO_WEIGHTS)
    net.eval()
    frames = [load_frame(DEMO_IMAGE)] + [detection_scene(1, "valid", k, (160, 480)).image for k in range(HELD_OUT)]
    return net, frames, network_batch(net, frames)


@pytest.fixture(scope="module")
def int8(demo) -> InferenceModel:
    pytest.importorskip("torchao")
    net = demo[0]
    calibration = [detection_scene(1, "train", k, (160, 480)).image for k in range(CALIBRATION)]
    return InferenceModel(net, precision="int8", calibration=calibration)


def emulated(model: InferenceModel):
    """The int8 model's converted graph without inductor."""
    def run(x: torch.Tensor) -> list[torch.Tensor]:
        with torch.inference_mode():
            return model.module(x)
    return run


def share_found(demo, model) -> tuple[int, int]:
    """(objects fp32 finds, how many of them `model` finds again) over the demo frames, at detect's defaults."""
    net, frames, batch = demo
    reference = detect_batch(net, frames, model=InferenceModel(net), batch=batch)
    other = detect_batch(net, frames, model=model, batch=batch)
    return sum(map(len, reference)), sum(found_again(r, o) for r, o in zip(reference, other))


def test_float_layers_are_the_first_convolution_and_the_heads(demo, golden_net):
    net = demo[0]
    assert float_layers(net.layers, net.output_indices) == {0, 13, 14}  # conv 0, the 1x1 before [region], [region]
    v3 = golden_net("yolov3-tiny.cfg", 96, 96)
    assert float_layers(v3.layers, v3.output_indices) == {0, 15, 16, 22, 23}


def test_bf16_finds_every_object_of_fp32(demo):
    if not torch.cpu._is_avx512_bf16_supported() and not torch.cpu._is_amx_tile_supported():
        pytest.skip("this CPU has no native bfloat16")
    model = InferenceModel(demo[0], precision="bf16")
    total, found = share_found(demo, model)
    assert total >= 20 and found == total
    heads = model(demo[2])
    assert heads[0].dtype == torch.float32


def test_int8_finds_all_but_5_percent_of_fp32(demo, int8):
    total, found = share_found(demo, emulated(int8))
    assert total >= 20 and found >= 0.95 * total
    graph = int8.module.graph
    assert sum("quantize_per_tensor" in str(node.target) for node in graph.nodes) >= 6  # the trunk is int8


def test_a_saved_int8_calibration_gives_the_same_model(demo, int8, tmp_path):
    path = tmp_path / "demo-int8.json"
    int8.calibration.save(path)
    again = InferenceModel(demo[0], precision="int8", calibration=path)
    assert again.calibration.images == CALIBRATION
    batch = demo[2][:2]
    for ours, theirs in zip(emulated(again)(batch), emulated(int8)(batch)):
        assert torch.equal(ours, theirs)


def test_a_calibration_refuses_other_weights_and_other_files(demo, int8, tmp_path):
    net = demo[0]
    other = Calibration(int8.calibration.observers, net.width, net.height, "0" * 64, 1)
    with pytest.raises(DarknetError, match="calibrated for other weights"):
        InferenceModel(net, precision="int8", calibration=other)
    bad = tmp_path / "bad.json"
    for text, needle in [("{", "cannot read"), ("[]", "not a pydarknet int8 calibration"),
                         (json.dumps({"format": "pydarknet int8 calibration", "version": 1, "observers": {"a": {"b": "c"}}}),
                          "malformed")]:
        bad.write_text(text)
        with pytest.raises(DarknetError, match=f"{bad}: .*{needle}"):
            Calibration.load(bad)
    bad.write_text(json.dumps({"format": "pydarknet int8 calibration", "version": 1, "weights_sha256": int8.calibration.digest,
                               "width": net.width, "height": net.height, "images": 1, "observers": {}}))
    with pytest.raises(DarknetError, match="observers do not match"):
        InferenceModel(net, precision="int8", calibration=bad)


def test_save_calibration_replaces_only_a_calibration(demo, int8, tmp_path):
    from argparse import Namespace

    from pydarknet.commands.arguments import save_calibration

    weights = tmp_path / "demo.weights"
    weights.write_bytes(b"not a calibration")
    with pytest.raises(DarknetError, match="exists and is not an int8 calibration; not replaced"):
        save_calibration(int8, Namespace(save_calibration=str(weights)))
    assert weights.read_bytes() == b"not a calibration"
    target = tmp_path / "demo-int8.json"
    for _ in range(2):  # written, then replaced
        save_calibration(int8, Namespace(save_calibration=str(target)))
        assert Calibration.load(target).digest == int8.calibration.digest


def test_int8_without_torchao_is_one_line_naming_the_extra(demo, monkeypatch):
    for name in [n for n in sys.modules if n == "torchao" or n.startswith("torchao.")] + ["torchao"]:
        monkeypatch.setitem(sys.modules, name, None)  # import torchao... raises ImportError
    with pytest.raises(DarknetError, match=r"needs torchao .*pip install 'pydarknet\[int8\]'") as err:
        InferenceModel(demo[0], precision="int8", calibration=[demo[1][0]])
    assert "\n" not in str(err.value)


def test_refusals(demo, monkeypatch):
    net = demo[0]
    monkeypatch.setattr("pydarknet.infer.precision.cpu_has_bf16", lambda: False)
    with pytest.raises(DarknetError, match="neither AVX-512 BF16 nor AMX"):
        InferenceModel(net, precision="bf16")
    with pytest.raises(DarknetError, match="int8: x86 CPUs only .* the network is on cuda"):
        check_precision("int8", torch.device("cuda"))
    with pytest.raises(DarknetError, match="needs calibration"):
        InferenceModel(net, precision="int8")
    with pytest.raises(DarknetError, match="expected one of fp32, bf16, int8"):
        InferenceModel(net, precision="fp16")


def test_cli_precision_options(capsys, tmp_path):
    args = build_parser().parse_args(["map", "D", "C", "W", "--precision", "int8", "--calibrate", "c.json",
                                      "--save-calibration", "s.json"])
    assert (args.precision, args.calibrate, args.save_calibration) == ("int8", "c.json", "s.json")
    assert build_parser().parse_args(["detect", "C", "W", "I"]).precision == "fp32"
    with pytest.raises(SystemExit):
        main(["valid", "D", "C", "W", "--precision", "fp16"])
    assert "invalid choice: 'fp16'" in capsys.readouterr().err
    cases = [(["--calibrate", "x"], "--calibrate: only with --precision int8"),
             (["--precision", "int8"], "--precision int8: pass --calibrate"),
             (["--precision", "int8", "--no-compile"], "--no-compile: --precision int8 always compiles"),
             (["--precision", "int8", "--calibrate", str(tmp_path / "none")], "no such file or folder")]
    for options, needle in cases:
        assert main(["detect", str(DEMO_CFG), str(DEMO_WEIGHTS), str(DEMO_IMAGE), "--out", str(tmp_path), *options]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err


@pytest.mark.slow
def test_compiled_int8_matches_its_graph_and_reloads(demo, int8, tmp_path):
    """inductor's int8 kernels (~20 s to compile) against the emulated graph; a reloaded calibration, compiled."""
    batch = demo[2][:4]
    compiled = int8(batch)
    for ours, theirs in zip(compiled, emulated(int8)(batch)):
        assert (ours - theirs).abs().max() < 0.05
    total, found = share_found(demo, int8)
    assert found >= 0.95 * total
    path = tmp_path / "demo-int8.json"
    int8.calibration.save(path)
    again = InferenceModel(demo[0], precision="int8", calibration=path)
    for ours, theirs in zip(again(batch), compiled):
        assert torch.equal(ours, theirs)
