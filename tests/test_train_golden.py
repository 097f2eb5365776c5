"""Two Darknet train_network calls against the C Darknet (tests/golden/train/):
the whole weights file after each step (batch-norm rolling statistics and
the `seen` header included), every tensor of it, the returned loss, and the
line [region] prints at each step."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import GOLDEN, MANIFEST
from helpers import assert_same_printed_line, loaded_net, relative_to_update, weights_tensors
from pydarknet.train.state import TrainingState
from pydarknet.train.step import train_network
from pydarknet.weights import read_weights_file

CASES = MANIFEST["train"]
# Limits on ||ours - darknet|| / ||darknet's update||, per case and step: (whole weights file, each
# tensor alone), about 10x what this float32 implementation measures (in comments: file / worst tensor;
# tests/golden/README.md, "Train steps"). Step 2 of yolov2-slim compounds float32 rounding through
# batch-norm layers of 50 values per channel, hence its loose limits.
TOLERANCE = {
    "yolov2-slim_2steps_seen0": {1: (1e-3, 3e-3), 2: (5e-2, 2e-1)},  # 9.0e-5 / 2.6e-4, 1.8e-2 / 3.5e-2
    "yolov2-slim_2steps_seen20000": {1: (2e-4, 2e-3), 2: (1e-2, 5e-2)},  # 1.3e-5 / 1.7e-4, 1.2e-3 / 5.7e-3
    "yolov2-tiny-slim_2steps_seen20000": {1: (3e-5, 2e-3), 2: (1e-4, 2e-3)},  # 2.3e-6 / 1.8e-4, 4.0e-6 / 2.1e-4
    "yolov2-tiny-slim_2steps_seen20000_lowcontrast": {1: (2e-5, 5e-3), 2: (1e-4, 5e-3)},  # 1.6e-6 / 5.8e-4, 3.1e-6 / 6.9e-4
}

# The `Region Avg IOU: ...` line of each step: step 2's numbers come from the weights step 1 made (above)
LINE_TOLERANCE = {1: 1e-5, 2: 2e-4}  # step 2 measures 2.2e-5 (yolov2-slim)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_train_steps_match_darknet(case: dict, random_weights, tmp_path: Path) -> None:
    folder = GOLDEN / "train" / case["name"]
    cfg = folder / case["cfg"]
    net = loaded_net(cfg, random_weights(case["cfg"]))
    net.seen = case["seen"]
    before = weights_tensors(net)
    _, previous = read_weights_file(random_weights(case["cfg"]))
    x = torch.from_numpy(np.load(folder / "input.npy"))
    truth = torch.from_numpy(np.load(folder / "truth.npy"))
    state = TrainingState(net)
    lines: list[str] = []
    for step in range(1, case["steps"] + 1):
        file_limit, tensor_limit = TOLERANCE[case["name"]][step]
        loss = train_network(net, state, x, truth, lines.append)
        net.save_weights(tmp_path / f"step{step}.weights")
        header, ours = read_weights_file(tmp_path / f"step{step}.weights")
        darknet_header, theirs = read_weights_file(folder / f"step{step}.weights")
        assert header.seen == darknet_header.seen == case["seen"] + 2 * step
        error = relative_to_update(ours.astype(np.float64), theirs.astype(np.float64), previous.astype(np.float64))
        # each tensor's update alone (update_convolutional_layer, and the rolling statistics of
        # forward_batchnorm_layer): a small tensor's error is not lost in the file's norm
        darknet = weights_tensors(loaded_net(cfg, folder / f"step{step}.weights"))
        tensors = {name: relative_to_update(t, darknet[name], before[name]) for name, t in weights_tensors(net).items()}
        if os.environ.get("PYDARKNET_PRINT_ERRORS"):
            print(f"\n{case['name']} step {step}: file {error:.2e}, worst tensor {max(tensors.values()):.2e} ({max(tensors, key=tensors.get)})")
        assert error <= file_limit, f"step {step}: ||ours - darknet|| / ||darknet update|| = {error:.2e}"
        bad = {name: f"{e:.2e}" for name, e in tensors.items() if not e <= tensor_limit}
        assert not bad, f"step {step}: tensors off by more than {tensor_limit:.0e} of Darknet's update: {bad}"
        if step == 1:
            assert loss == pytest.approx(case["losses"][0], rel=1e-4)
        previous, before = theirs, darknet
    printed = [line for line in case["log"].splitlines() if line.startswith("Region")]  # the driver's lines aside
    assert len(lines) == len(printed) == case["steps"]
    for step, (ours, line) in enumerate(zip(lines, printed), start=1):
        assert_same_printed_line(ours, line, rel=LINE_TOLERANCE[step])
