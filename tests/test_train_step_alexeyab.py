"""Two whole AlexeyAB train_network calls against its C (tests/golden-alexeyab-extra/train-step/): a slim
yolov4-tiny (route groups, maxpools, upsample, two ciou [yolo] heads with scale_x_y) from seeded weights on
a fixed batch, at the burn-in rate.  Step 1's heads (l.output, l.delta), each step's returned loss, and the
whole weights file after each step (every tensor, the rolling statistics and the `seen` header included), and
the heads' `v3 (...)` lines with the ` total_bbox = ...` counts after them; all as its CPU build, the goldens'.
And its GPU build, the trainer's default, as its C reads: no delta carried or cut, batch-norm biases that move."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT
from golden_weights import build_random_weights
from helpers import assert_same_printed_line, loaded_net, relative_to_update, weights_tensors
from pydarknet import Darknet
from pydarknet.errors import DarknetError
from pydarknet.train.distributed import synchronize_batchnorm
from pydarknet.train.options import check_training_cfg
from pydarknet.train.state import TrainingState
from pydarknet.train.step import train_network
from pydarknet.weights import read_weights_file

FOLDER = ROOT / "tests" / "golden-alexeyab-extra" / "train-step"
MANIFEST = json.loads((FOLDER / "manifest.json").read_text())
# ||ours - darknet|| / ||darknet's update|| per step: (whole weights file, worst tensor), about 10x what
# this float32 implementation measures (tests/golden-alexeyab-extra/README.md, "train-step/").
TOLERANCE = {1: (1e-5, 1e-3), 2: (2e-5, 2e-4)}  # 8.5e-7 / 6.7e-5, 1.8e-6 / 1.3e-5


def _close(ours: np.ndarray, theirs: np.ndarray) -> float:
    """The yolo-train tolerance's ratio: max |a - g| / (1e-3 (1 + |g|)), <= 1 passes."""
    return float(np.max(np.abs(ours - theirs) / (1e-3 * (1 + np.abs(theirs)))))


def _heads(net: Darknet, x: torch.Tensor, truth: torch.Tensor) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """(l.output, l.delta) of each [yolo] in the first step's forward, on a copy (its rolling statistics move)."""
    net = copy.deepcopy(net).train()
    with torch.no_grad():
        outputs = net.forward_layers(x)
    heads = {}
    for i in net.output_indices:
        head = net.layers[i]
        output, delta, _ = head.delta(outputs[head.sources[0]], truth, (net.width, net.height))
        heads[i] = (output.reshape(x.shape[0], -1).numpy(), delta.reshape(x.shape[0], -1).numpy())
    return heads


@pytest.fixture
def start_weights(request: pytest.FixtureRequest) -> Path:
    cache = Path(request.config.cache.mkdir("golden_random_weights"))
    return build_random_weights(FOLDER / MANIFEST["cfg"], MANIFEST["weights_seed"], cache / "alexeyab-train-step.weights",
                                MANIFEST["weights_sha256"])


def test_two_train_steps_match_alexeyab(start_weights: Path, tmp_path: Path) -> None:
    net = loaded_net(FOLDER / MANIFEST["cfg"], start_weights)
    net.set_training_build("cpu")  # the goldens' build
    assert net.dialect == "alexeyab"
    before = weights_tensors(net)
    _, previous = read_weights_file(start_weights)
    x = torch.from_numpy(np.random.Generator(np.random.PCG64(MANIFEST["input_seed"])).random((2, 3, 96, 96)).astype(np.float32))
    truth = torch.from_numpy(np.load(FOLDER / "truth.npy"))
    for i, (output, delta) in _heads(net, x, truth).items():
        ratios = _close(output, np.load(FOLDER / f"output_{i:03d}.npy")), _close(delta, np.load(FOLDER / f"delta_{i:03d}.npy"))
        if os.environ.get("PYDARKNET_PRINT_ERRORS"):
            print(f"\n[yolo] {i}: output {ratios[0] * 1e-3:.2e}, delta {ratios[1] * 1e-3:.2e} (of 1 + |g|)")
        assert ratios[0] <= 1 and ratios[1] <= 1, f"[yolo] {i}: output, delta off by {ratios[0]:.2f}, {ratios[1]:.2f} x 1e-3 (1 + |g|)"
    state = TrainingState(net)
    reference = loaded_net(FOLDER / MANIFEST["cfg"], start_weights)  # holds Darknet's weights after each step
    lines: list[str] = []
    for step, golden in enumerate(MANIFEST["steps"], start=1):
        loss = train_network(net, state, x, truth, lines.append)
        assert abs(loss - golden["loss"]) <= 1e-3 * max(1, abs(golden["loss"])), f"step {step}: loss {loss} != {golden['loss']}"
        net.save_weights(tmp_path / f"step{step}.weights")
        header, ours = read_weights_file(tmp_path / f"step{step}.weights")
        darknet_header, theirs = read_weights_file(FOLDER / f"step{step}.weights")
        assert header.seen == darknet_header.seen == golden["seen"]
        file_limit, tensor_limit = TOLERANCE[step]
        error = relative_to_update(ours.astype(np.float64), theirs.astype(np.float64), previous.astype(np.float64))
        reference.load_weights(FOLDER / f"step{step}.weights")
        darknet = weights_tensors(reference)
        # a tensor that Darknet leaves as it was (the CPU build's biases under batch norm) must stay too
        tensors = {name: relative_to_update(t, darknet[name], before[name]) if np.any(darknet[name] != before[name])
                   else float(np.max(np.abs(t - before[name]))) for name, t in weights_tensors(net).items()}
        if os.environ.get("PYDARKNET_PRINT_ERRORS"):
            print(f"\nstep {step}: loss {loss:.7g} vs {golden['loss']:.7g}, file {error:.2e}, "
                  f"worst tensor {max(tensors.values()):.2e} ({max(tensors, key=tensors.get)})")
        assert error <= file_limit, f"step {step}: ||ours - darknet|| / ||darknet update|| = {error:.2e}"
        bad = {name: f"{e:.2e}" for name, e in tensors.items() if not e <= tensor_limit}
        assert not bad, f"step {step}: tensors off by more than {tensor_limit:.0e} of Darknet's update: {bad}"
        previous, before = theirs, darknet
    assert len(lines) == len(MANIFEST["log"])  # each head's `v3 (...)` line and the box counts, per step
    for ours, theirs in zip(lines, MANIFEST["log"]):
        if theirs.startswith(" total_bbox"):  # counts: the very line, its trailing space included
            assert ours == theirs
        else:
            assert_same_printed_line(ours, theirs, rel=1e-4)


def test_carried_deltas_ride_in_the_resume_state(start_weights: Path) -> None:
    """The [route]/[upsample] sums (pydarknet.train.carried_delta) are saved and restored with the momentum."""
    net = loaded_net(FOLDER / MANIFEST["cfg"], start_weights)
    net.set_training_build("cpu")
    state = TrainingState(net)
    assert state.carried.indices == {8, 16, 25}  # [route] 8, 16 before a [maxpool], [upsample] 25 before a [route]
    x = torch.from_numpy(np.random.Generator(np.random.PCG64(MANIFEST["input_seed"])).random((2, 3, 96, 96)).astype(np.float32))
    train_network(net, state, x, torch.from_numpy(np.load(FOLDER / "truth.npy")))
    saved = state.resume_entries()["carried_deltas"]
    assert set(saved) == {"8", "16", "25"}
    resumed = TrainingState(net)
    resumed.load_resume_entries(state.resume_entries())
    assert all(torch.equal(resumed.carried.deltas[int(k)], v) for k, v in saved.items())


def test_gpu_build_trains_every_path_and_every_bias(start_weights: Path) -> None:
    """AlexeyAB's GPU build, the default (Darknet.set_training_build): forward_network_gpu zeroes every delta (no
    [route]/[upsample] sum is carried) and cuDNN's convolution backward adds into the delta before it (no path is
    cut), so the gradient is autograd's through the whole graph; and cuDNN's batch norm moves the biases."""
    net = loaded_net(FOLDER / MANIFEST["cfg"], start_weights)
    assert net.training_build == "gpu" and not TrainingState(net).carried.indices
    x = torch.from_numpy(np.random.Generator(np.random.PCG64(MANIFEST["input_seed"])).random((2, 3, 96, 96)).astype(np.float32))
    grads = {}
    for build in ("gpu", "cpu"):
        for how in ("forward_layers", "forward"):
            copy_ = copy.deepcopy(net).train()
            copy_.set_training_build(build)
            if how == "forward":
                heads = copy_(x)
            else:
                outputs = copy_.forward_layers(x)
                heads = [outputs[i] for i in copy_.output_indices]
            sum(h.square().sum() for h in heads).backward()
            grads[build, how] = torch.cat([p.grad.flatten() for p in copy_.parameters() if p.grad is not None])
    assert torch.allclose(grads["gpu", "forward_layers"], grads["gpu", "forward"], rtol=1e-4, atol=1e-6)
    assert not torch.allclose(grads["cpu", "forward_layers"], grads["cpu", "forward"], rtol=1e-4, atol=1e-6)  # cut paths

    conv_bn = [layer.bn.bias for layer in net.layers if getattr(layer, "bn", None) is not None]
    before = [b.detach().clone() for b in conv_bn]
    train_network(net, TrainingState(net), x, torch.from_numpy(np.load(FOLDER / "truth.npy")))
    assert conv_bn and all(not torch.equal(b, a) for b, a in zip(conv_bn, before))
    with pytest.raises(DarknetError, match=r"--sync-bn trains AlexeyAB's dialect as its CPU build only"):
        synchronize_batchnorm(net, True)  # cuDNN's batch norm is per GPU


def test_gpu_build_passes_the_yolo_delta_times_delta_normalizer(tmp_path: Path) -> None:
    """[yolo] delta_normalizer: AlexeyAB's backward_yolo_layer_gpu adds loss_scale * delta_normalizer * l.delta to the
    layer before (yolo_layer.c); its CPU build's backward_yolo_layer adds l.delta as it is."""
    cfg = tmp_path / "delta_normalizer.cfg"
    cfg.write_text((FOLDER / MANIFEST["cfg"]).read_text().replace("[yolo]\n", "[yolo]\ndelta_normalizer=0.3\n"))
    check_training_cfg(cfg)
    net = Darknet(cfg)
    heads = [net.layers[i] for i in net.output_indices]
    delta = torch.randn(2, *heads[0].out_shape)
    assert all(torch.equal(head.input_delta(delta, delta), delta * np.float32(0.3)) for head in heads)
    net.set_training_build("cpu")
    assert all(torch.equal(head.input_delta(delta, delta), delta) for head in heads)


def test_train_cli_chooses_the_build() -> None:
    """`pydarknet train` trains as AlexeyAB's GPU build unless told `--alexeyab-cpu-build`."""
    from pydarknet.cli import build_parser
    from pydarknet.commands.train import training_run

    for extra, build in (([], "gpu"), (["--alexeyab-cpu-build"], "cpu")):
        assert training_run(build_parser().parse_args(["train", "a.data", "b.cfg", *extra])).training_build == build
