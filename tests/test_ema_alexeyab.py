"""AlexeyAB's `[net] ema_alpha` (src/network.c train_network_waitkey's lines after update_network, ema_update,
ema_apply, is_ema_initialized) against its C: tests/golden-alexeyab-extra/ema/ (tools/goldens/alexeyab_net_train:
`net_train ema`): per iteration the [convolutional] weights, biases and scales as an update left them, then the
weights and their EMA after those lines; `start_and_apply` (made at max_batches/2, applied at max_batches - 1000,
frozen after), `apply_before_start` (made once, never moved).  Within |a - g| <= 1e-6 (1 + |g|).  And the
trainer: NAME_ema.weights beside NAME_last.weights, the EMA in the resume state."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT
from pydarknet.cli import main
from pydarknet.network import Darknet
from pydarknet.train.checkpoints import load_state
from pydarknet.train.ema import WeightsEma
from pydarknet.weights import load_weights, read_weights_file
from training_data import alexeyab_stopped_and_resumed, make_cfg, make_dataset

GOLDEN = ROOT / "tests" / "golden-alexeyab-extra" / "ema"
CASES = json.loads((GOLDEN / "manifest.json").read_text())["cases"]


def flat(tensors: list[torch.Tensor]) -> np.ndarray:
    return torch.cat([t.detach().reshape(-1) for t in tensors]).numpy()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_ema_matches_alexeyab(case: dict) -> None:
    folder = GOLDEN / case["name"]
    net = Darknet(folder / "ema.cfg")
    assert net.dialect == "alexeyab" and net.options.ema_alpha == case["alpha"]
    ema = WeightsEma(net, net.options.ema_alpha)
    order = list(ema.tensors)  # per layer: weights, biases, scales (the driver's layout)
    order.sort(key=lambda name: (int(name.split(".")[1]), ["weights", "biases", "scales"].index(name.split(".")[2])))
    steps, trace = np.load(folder / "steps.npy"), np.load(folder / "trace.npy")
    for t, iteration in enumerate(range(case["first"], case["last"] + 1)):
        offset = 0
        with torch.no_grad():
            for name in order:
                tensor = ema.tensors[name]
                tensor.copy_(torch.from_numpy(steps[t, offset:offset + tensor.numel()]).view_as(tensor))
                offset += tensor.numel()
        ema.after_update(iteration, case["max_batches"])
        for k, ours in enumerate((flat([ema.tensors[n] for n in order]), flat([ema.ema[n] for n in order]))):
            gold = trace[t, k]
            err = np.abs(ours - gold) / (1 + np.abs(gold))
            assert err.max() <= 1e-6, f"{case['name']} iteration {iteration} {('weights', 'ema')[k]}: {err.max():.2e}"


def test_training_saves_the_ema_and_resumes_it(tmp_path: Path, one_thread) -> None:
    """max_batches 4: the EMA from iteration 2 (4 / 2), moving (4 - 1000 < 2: never applied); NAME_ema.weights
    at each NAME_last.weights (savelast=1 here) holds it, and the backup's resume state carries it."""
    data = make_dataset(tmp_path / "ds")
    data.write_text(data.read_text() + "savelast=1\nsaveweights=10\n")
    cfg = make_cfg(tmp_path, max_batches=4, alexeyab=True)
    cfg.write_text(cfg.read_text().replace("mosaic=0", "mosaic=0\nema_alpha=0.5"))
    assert main(["detector", "train", str(data), str(cfg), "-dont_show", "--workers", "0"]) == 0
    backup = data.parent / "backup"
    last, ema_file = backup / "t_last.weights", backup / "t_ema.weights"
    assert ema_file.is_file()
    state = load_state(last, read_weights_file(last)[0].seen)
    assert state is not None and state["ema"] is not None
    net = Darknet(cfg)
    load_weights(net, ema_file)
    in_file = WeightsEma(net, 0.5).tensors
    assert set(in_file) == set(state["ema"])
    for name, tensor in in_file.items():
        torch.testing.assert_close(tensor, state["ema"][name], rtol=0, atol=0)
    load_weights(net, last)
    assert any(not torch.equal(tensor, state["ema"][name]) for name, tensor in in_file.items())  # the EMA moved apart


def test_a_resumed_run_keeps_its_ema(tmp_path: Path, one_thread, monkeypatch) -> None:
    """Stopped at iteration 3 (the EMA made at 2) and resumed: the final weights of the uninterrupted run."""
    data, cfg = make_dataset(tmp_path / "ds"), make_cfg(tmp_path, max_batches=4, alexeyab=True)
    data.write_text(data.read_text() + "savelast=1\nsaveweights=10\n")
    cfg.write_text(cfg.read_text().replace("mosaic=0", "mosaic=0\nema_alpha=0.5"))
    straight, resumed = alexeyab_stopped_and_resumed(tmp_path, data, cfg, monkeypatch)
    assert resumed.read_bytes() == straight.read_bytes()
    assert (tmp_path / "b" / "t_ema.weights").read_bytes() == (tmp_path / "a" / "t_ema.weights").read_bytes()
