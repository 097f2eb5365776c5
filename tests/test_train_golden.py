"""Two Darknet train_network calls against the C Darknet (tests/golden/train/):
the whole weights file after each step (batch-norm rolling statistics and
the `seen` header included) and the returned loss."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import GOLDEN, MANIFEST
from pydarknet import Darknet
from pydarknet.train.state import TrainingState
from pydarknet.train.step import train_network
from pydarknet.weights import read_weights_file

CASES = MANIFEST["train"]
STEP_TOLERANCE = {1: 1e-3, 2: 5e-2}  # the golden README's, relative to Darknet's own update


def _floats(path: Path) -> tuple[int, np.ndarray]:
    header, body = read_weights_file(path)
    return header.seen, body.astype(np.float64)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_train_steps_match_darknet(case: dict, random_weights, tmp_path: Path) -> None:
    folder = GOLDEN / "train" / case["name"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(folder / case["cfg"])
    net.load_weights(random_weights(case["cfg"]))
    net.seen = case["seen"]
    _, previous = _floats(random_weights(case["cfg"]))
    x = torch.from_numpy(np.load(folder / "input.npy"))
    truth = torch.from_numpy(np.load(folder / "truth.npy"))
    state = TrainingState(net)
    for step in range(1, case["steps"] + 1):
        loss = train_network(net, state, x, truth)
        net.save_weights(tmp_path / f"step{step}.weights")
        seen, ours = _floats(tmp_path / f"step{step}.weights")
        darknet_seen, theirs = _floats(folder / f"step{step}.weights")
        assert seen == darknet_seen == case["seen"] + 2 * step
        error = np.linalg.norm(ours - theirs) / np.linalg.norm(theirs - previous)
        assert error <= STEP_TOLERANCE[step], f"step {step}: ||ours - darknet|| / ||darknet update|| = {error:.2e}"
        if step == 1:
            assert loss == pytest.approx(case["losses"][0], rel=1e-4)
        previous = theirs
