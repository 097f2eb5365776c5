"""Mixed-precision training (`--amp`, pydarknet.train.amp) on the CPU: bfloat16
autocast as `--amp` uses it there, and float16 autocast (CPU autocast supports
it) to exercise the loss scaling the CUDA path uses."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import cfg_path
from pydarknet import Darknet
from pydarknet.cli import build_parser
from pydarknet.layers.batchnorm import BatchNorm
from pydarknet.train.amp import Amp, LossScaler, mixed_precision
from pydarknet.train.checkpoints import load_state
from pydarknet.train.state import TrainingState
from pydarknet.train.step import train_network
from pydarknet.train.trainer import TrainRun, train_detector
from pydarknet.weights import read_weights_file
from training_data import interrupt_after, make_cfg, make_dataset


def network(cfg: str, size: int, batch: int = 4, subdivisions: int = 1) -> Darknet:
    """A seeded, channels_last network as the trainer builds it, with no burn_in."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(cfg_path(cfg), size, size)
    net.options.batch, net.options.subdivisions, net.options.burn_in = batch, subdivisions, 0
    return net.to(memory_format=torch.channels_last)


def detector_truth(n: int) -> torch.Tensor:
    truth = torch.zeros(n, 30, 5)
    truth[:, 0] = torch.tensor([0.3, 0.4, 0.2, 0.3, 1.0])
    truth[:, 1] = torch.tensor([0.7, 0.6, 0.3, 0.2, 3.0])
    return truth


def classifier_truth(n: int) -> torch.Tensor:
    return F.one_hot(torch.arange(n) % 6, 6).float()


CASES = {"detector": ("yolov2-tiny-slim.cfg", 64, detector_truth), "classifier": ("tiny-shapes-classifier.cfg", 32, classifier_truth)}


def images(size: int, n: int = 4) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1)).contiguous(memory_format=torch.channels_last)


def flat_parameters(net: Darknet) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def step_update(net: Darknet, state: TrainingState, x: torch.Tensor, truth: torch.Tensor) -> tuple[float, torch.Tensor]:
    """(loss, change of every parameter) of one train_network call."""
    before = flat_parameters(net)
    loss = train_network(net, state, x, truth)
    return loss, flat_parameters(net) - before


def float32_reference(case: str, subdivisions: int = 1) -> tuple[float, torch.Tensor]:
    cfg, size, truth = CASES[case]
    net = network(cfg, size, subdivisions=subdivisions)
    return step_update(net, TrainingState(net), images(size), truth(4))


@pytest.mark.parametrize("case", CASES)
def test_bfloat16_step_is_close_to_float32(one_thread, case: str) -> None:
    cfg, size, truth = CASES[case]
    net = network(cfg, size)
    state = TrainingState(net, amp=True)
    assert state.amp.dtype == torch.bfloat16 and state.scaler is None  # the CPU: no loss scale
    loss, update = step_update(net, state, images(size), truth(4))
    loss32, update32 = float32_reference(case)
    # measured: loss within 2e-4 (detector) / 2e-3 (classifier), update cosine 0.984 / 0.976
    assert loss == pytest.approx(loss32, rel=2e-2)
    assert F.cosine_similarity(update, update32, dim=0) > 0.95
    assert float(update.norm() / update32.norm()) == pytest.approx(1.0, abs=0.05)
    tensors = [*net.parameters(), *(b for b in net.buffers() if b.is_floating_point())]  # incl. batch-norm statistics
    assert all(t.dtype == torch.float32 for t in tensors)
    assert all(u.dtype == torch.float32 for u in state.sgd.state_dict().values())


def test_batchnorm_runs_in_float32_under_amp(one_thread) -> None:
    net = network("yolov2-tiny-slim.cfg", 64)
    state = TrainingState(net, amp=True)
    seen: list[torch.dtype] = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.extend([i[0].dtype, o.dtype])) for m in net.modules() if isinstance(m, BatchNorm)]
    train_network(net, state, images(64), detector_truth(4))
    for hook in hooks:
        hook.remove()
    assert seen[0::2] and set(seen[0::2]) == {torch.bfloat16}  # the convolutions' outputs, under autocast
    assert set(seen[1::2]) == {torch.float32}


def test_float16_with_loss_scaling_is_close_to_float32(one_thread) -> None:
    """Two mini-batches: the scaled gradients wait in .grad for the update, then are unscaled for Darknet's SGD."""
    cfg, size, truth = CASES["detector"]
    net = network(cfg, size, subdivisions=2)
    state = TrainingState(net, amp=torch.float16)
    scaler = state.scaler
    scaler.scale = 256.0  # where the scale settles on this net (2**16 overflows float16 at first)
    x, t = images(size), truth(4)
    before = flat_parameters(net)
    train_network(net, state, x[:2], t[:2])
    assert torch.equal(flat_parameters(net), before)
    assert net.layers[0].conv.weight.grad is not None and not any(u.any() for u in state.sgd.state_dict().values())
    train_network(net, state, x[2:], t[2:])
    update = flat_parameters(net) - before
    assert all(p.grad is None for p in net.parameters())
    assert scaler.scale == 256.0 and scaler.good_steps == 1
    _, update32 = float32_reference("detector", subdivisions=2)
    assert F.cosine_similarity(update, update32, dim=0) > 0.99  # measured 0.997 (bfloat16: ~0.98)


def test_an_overflowing_step_is_skipped_and_the_scale_halves(one_thread) -> None:
    cfg, size, truth = CASES["detector"]
    net = network(cfg, size)
    state = TrainingState(net, amp=torch.float16)
    scaler = state.scaler
    scaler.scale, scaler.good_steps = 2.0**100, 5  # scaled gradients are inf once cast to float16 in the backward
    before = flat_parameters(net)
    loss = train_network(net, state, images(size), truth(4))
    assert loss == pytest.approx(float32_reference("detector")[0], rel=1e-2)  # the forward is fine, only the update is skipped
    assert torch.equal(flat_parameters(net), before)
    assert not any(u.any() for u in state.sgd.state_dict().values()) and all(p.grad is None for p in net.parameters())
    assert scaler.scale == 2.0**99 and scaler.good_steps == 0
    assert net.seen == 4


def test_loss_scaler_policy() -> None:
    scaler = LossScaler(scale=8.0, growth_interval=2)
    param = torch.zeros(3, requires_grad=True)
    param.grad = torch.tensor([8.0, -16.0, 4.0])
    assert scaler.unscale_and_update([param]) and param.grad.tolist() == [1.0, -2.0, 0.5]
    assert (scaler.scale, scaler.good_steps) == (8.0, 1)
    param.grad = torch.tensor([1.0, float("inf"), 0.0])
    assert not scaler.unscale_and_update([param])
    assert (scaler.scale, scaler.good_steps) == (4.0, 0)
    param.grad = torch.tensor([float("nan"), 0.0, 0.0])
    assert not scaler.unscale_and_update([param]) and scaler.scale == 2.0
    for _ in range(2):
        param.grad = torch.ones(3)
        assert scaler.unscale_and_update([param])
    assert (scaler.scale, scaler.good_steps) == (4.0, 0)  # grown after growth_interval finite steps in a row
    copy = LossScaler()
    copy.load_state_dict(scaler.state_dict())
    assert (copy.scale, copy.good_steps) == (4.0, 0)


def test_amp_off_trains_as_before(one_thread) -> None:
    """Turned off again (`state.amp = None`), a network trains bit for bit as one that never had amp."""
    cfg, size, truth = CASES["detector"]
    net = network(cfg, size)
    state = TrainingState(net, amp=True)
    state.amp = None
    loss, update = step_update(net, state, images(size), truth(4))
    loss32, update32 = float32_reference("detector")
    assert loss == loss32 and torch.equal(update, update32)


def float16_amps(monkeypatch: pytest.MonkeyPatch, scale: float, growth_interval: int) -> list[Amp]:
    """Make the trainer's mixed precision float16 with loss scaling (CUDA's), from `scale`; returns the Amps it makes."""
    made: list[Amp] = []

    def enable(net: Darknet, dtype: torch.dtype | None) -> Amp:
        amp = mixed_precision(net, torch.float16)
        amp.scaler.scale, amp.scaler.growth_interval = scale, growth_interval
        made.append(amp)
        return amp

    monkeypatch.setattr("pydarknet.train.state.mixed_precision", enable)
    return made


def test_the_loss_scale_resumes_from_the_backup(tmp_path, monkeypatch, one_thread) -> None:
    """An interrupted float16 run resumed from NAME.backup ends as an uninterrupted one: weights and loss scale."""
    data, cfg = make_dataset(tmp_path / "ds"), make_cfg(tmp_path)
    amps = float16_amps(monkeypatch, 2.0**12, growth_interval=2)  # measured: skips iterations 1-2, grows at 4 and 6
    run = dict(data=data, cfg=cfg, workers=0, quiet=True, max_batches=6, amp=True)
    straight = train_detector(TrainRun(**run, backup=tmp_path / "a"))
    with monkeypatch.context() as m:
        interrupt_after(m, 3)
        with pytest.raises(KeyboardInterrupt):
            train_detector(TrainRun(**run, backup=tmp_path / "b"))
    backup = tmp_path / "b" / "t.backup"
    assert load_state(backup, read_weights_file(backup)[0].seen)["loss_scale"] == amps[1].scaler.state_dict() != amps[0].scaler.state_dict()
    resumed = train_detector(TrainRun(**run, weights=backup, backup=tmp_path / "b"))
    assert amps[2].scaler.state_dict() == amps[0].scaler.state_dict()
    assert resumed.read_bytes() == straight.read_bytes()
    assert not np.array_equal(read_weights_file(straight)[1], read_weights_file(backup)[1])  # updates did happen after the resume


def test_cli_amp_option() -> None:
    parser = build_parser()
    assert parser.parse_args(["train", "a.data", "a.cfg", "--amp"]).amp
    assert not parser.parse_args(["train", "a.data", "a.cfg"]).amp
    assert parser.parse_args(["classifier", "train", "a.data", "a.cfg", "--amp"]).amp
