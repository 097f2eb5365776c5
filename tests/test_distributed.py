"""Distributed training (2 CPU processes, gloo): the same updates as one
process with the whole batch, multi-scale in lock-step, and a dead rank
ending the job while the last backup stays loadable."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
import torch.multiprocessing

from conftest import ROOT
from pydarknet import Darknet
from pydarknet.errors import DarknetError
from pydarknet.train.distributed import process_group, synchronize_batchnorm
from pydarknet.train.multiscale import multiscale_size
from pydarknet.train.state import TrainingState
from pydarknet.train.step import rank_mini_batch, train_network
from pydarknet.weights import read_weights_file
from training_data import make_cfg, make_dataset

WORLD = 2
STEPS = 2  # iterations
WORKER = Path(__file__).with_name("ddp_worker.py")


def cfg_with(root: Path, batch: int, subdivisions: int, random: int = 0, max_batches: int = 4) -> Path:
    """The tiny training cfg of test_trainer (64x64, 2 classes) with another batch split."""
    root.mkdir(parents=True, exist_ok=True)
    cfg = make_cfg(root, random=random, max_batches=max_batches)
    text = cfg.read_text().replace("\nbatch=2\n", f"\nbatch={batch}\n").replace("\nsubdivisions=2\n", f"\nsubdivisions={subdivisions}\n")
    cfg.write_text(text)
    return cfg


def seeded_net(cfg: Path) -> Darknet:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Darknet(cfg)


def training_set(steps: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (steps, batch, 3, 64, 64) and truth (steps, batch, 30, 5): two boxes per image."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(steps, batch, 3, 64, 64, generator=g)
    truth = torch.zeros(steps, batch, 30, 5)
    truth[:, :, :2, :2] = 0.25 + 0.5 * torch.rand(steps, batch, 2, 2, generator=g)
    truth[:, :, :2, 2:4] = 0.1 + 0.4 * torch.rand(steps, batch, 2, 2, generator=g)
    truth[:, :, :2, 4] = torch.randint(0, 2, (steps, batch, 2), generator=g).float()
    return x, truth


def rank_share(t: torch.Tensor, rank: int, world: int, mini_batch: int) -> torch.Tensor:
    """The images of one iteration that `rank` holds: its slice of every global mini-batch."""
    steps = t.shape[0] // mini_batch
    return t.reshape(steps, world, mini_batch // world, *t.shape[1:])[:, rank].reshape(-1, *t.shape[1:])


def learned(net: Darknet) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_as_rank(rank: int, port: int, cfg: str, data: str, out: str) -> None:
    """One of the 2 ranks: the same STEPS iterations with and without --sync-bn."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    x, truth = torch.load(data)
    with process_group("cpu", timeout=60) as ranks:
        for sync in (True, False):
            net = seeded_net(Path(cfg))
            synchronize_batchnorm(net, sync)
            mini, state = net.options.mini_batch, TrainingState(net)
            for k in range(x.shape[0]):
                train_network(net, state, rank_share(x[k], ranks.rank, WORLD, mini), rank_share(truth[k], ranks.rank, WORLD, mini))
            torch.save({"state": learned(net), "seen": net.seen}, Path(out) / f"sync{int(sync)}-rank{rank}.pt")


def single_process(cfg: Path, x: torch.Tensor, truth: torch.Tensor) -> Darknet:
    net = seeded_net(cfg)
    state = TrainingState(net)
    for k in range(x.shape[0]):
        train_network(net, state, x[k], truth[k])
    return net


def assert_same_training(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor], start: dict[str, torch.Tensor], names) -> None:
    """The changes from `start` agree to float tolerance (the weights alone would hide a wrong update)."""
    for name in names:
        change, expected = ours[name] - start[name], theirs[name] - start[name]
        scale = float(expected.abs().max())
        if scale == 0:  # not trained (the region's anchors)
            assert torch.equal(ours[name], theirs[name]), name
            continue
        assert float((change - expected).abs().max()) <= 1e-3 * scale + 1e-7, name


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    """Both modes of a 2-rank run (batch 4 in 2 subdivisions: 1 image per rank per step) and their data."""
    root = tmp_path_factory.mktemp("ddp")
    cfg = cfg_with(root / "cfg", batch=4, subdivisions=2)
    x, truth = training_set(STEPS, 4)
    torch.save((x, truth), root / "data.pt")
    torch.multiprocessing.start_processes(
        _train_as_rank, args=(free_port(), str(cfg), str(root / "data.pt"), str(root)), nprocs=WORLD, join=True, start_method="spawn"
    )
    runs = {(s, r): torch.load(root / f"sync{s}-rank{r}.pt") for s in (0, 1) for r in range(WORLD)}
    return root, cfg, x, truth, runs


def test_sync_bn_two_ranks_make_the_single_process_updates(two_rank_run):
    root, cfg, x, truth, runs = two_rank_run
    start = learned(seeded_net(cfg))
    reference = single_process(cfg, x, truth)  # 1 process x 4 images per iteration, 2 per mini-batch
    expected = learned(reference)
    for rank in range(WORLD):
        run = runs[(1, rank)]
        assert run["seen"] == reference.seen == STEPS * 4
        # batch-norm statistics of the global mini-batch: the rolling ones agree too
        assert_same_training(run["state"], expected, start, expected)


def test_per_rank_batchnorm_is_one_process_with_subdivisions_times_ranks(two_rank_run):
    root, cfg, x, truth, runs = two_rank_run
    start = learned(seeded_net(cfg))
    reference = single_process(cfg_with(root / "ref", batch=4, subdivisions=2 * WORLD), x, truth)
    expected = learned(reference)
    trained = [n for n, _ in reference.named_parameters()]
    for rank in range(WORLD):
        assert runs[(0, rank)]["seen"] == reference.seen == STEPS * 4
        assert_same_training(runs[(0, rank)]["state"], expected, start, trained)
    for name in trained:  # every rank holds the same weights
        assert torch.equal(runs[(0, 0)]["state"][name], runs[(0, 1)]["state"][name]), name
    # Darknet's GPUs keep their own rolling statistics (sync_nets merges weights only)
    assert not torch.equal(runs[(0, 0)]["state"]["layers.0.bn.running_mean"], runs[(0, 1)]["state"]["layers.0.bn.running_mean"])
    # and the two modes are different trainings
    sync = learned(single_process(cfg, x, truth))
    assert not torch.allclose(runs[(0, 0)]["state"]["layers.0.conv.weight"] - start["layers.0.conv.weight"],
                              sync["layers.0.conv.weight"] - start["layers.0.conv.weight"], rtol=1e-2, atol=0)


def test_batch_must_split_over_the_ranks(tmp_path):
    net = seeded_net(cfg_with(tmp_path, batch=6, subdivisions=2))
    assert rank_mini_batch(net, 3) == 1
    with pytest.raises(DarknetError, match=r"batch=6 subdivisions=2 does not split over 2 ranks"):
        rank_mini_batch(net, 2)


def torchrun(out: Path, *args: object, interrupt_after: int = 0) -> subprocess.Popen:
    """`torchrun --standalone --nproc_per_node 2 tests/ddp_worker.py OUT train ...` on CPU."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore",
               DDP_WORKER_INTERRUPT_AFTER=str(interrupt_after))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}", str(WORKER), str(out)]
    return subprocess.Popen([*command, *map(str, args)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_multiscale_resizes_every_rank_at_the_same_iteration_and_ctrl_c_stops_all(tmp_path):
    seed = next(s for s in range(100) if multiscale_size(0, 1000, s, (64, 64), True) != multiscale_size(10, 1000, s, (64, 64), True))
    data = make_dataset(tmp_path / "ds")
    cfg = cfg_with(tmp_path, batch=2, subdivisions=1, random=1, max_batches=1000)
    # Ctrl-C reaches rank 0 alone during iteration 12: every rank stops after it, rank 0 saves the backup
    proc = torchrun(tmp_path, "train", data, cfg, "--workers", "0", "--quiet", "--seed", seed, interrupt_after=12)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode != 0 and "stopped by SIGINT: saved" in err, err[-3000:]
    steps = [(tmp_path / f"rank{r}.txt").read_text().splitlines() for r in range(WORLD)]
    assert steps[0] == steps[1] and len(steps[0]) == 12
    sizes = [line.split()[1] for line in steps[0]]
    expected = [multiscale_size(b, 1000, seed, (64, 64), True) for b in range(12)]
    assert sizes == [f"{w}x{h}" for w, h in expected] and sizes[9] != sizes[10]
    assert [line.split()[0] for line in steps[0]] == [str(2 * b) for b in range(12)]  # seen: global images
    assert all(line.split()[2] == "1" for line in steps[0])  # each rank: 1 of the 2 images
    log = (tmp_path / "ds" / "backup" / "t_log.csv").read_text().splitlines()  # rank 0's, alone
    assert [row.split(",")[1] for row in log[1:]] == [str(i) for i in range(1, 13)]
    assert read_weights_file(tmp_path / "ds" / "backup" / "t.backup")[0].seen == 24


def test_a_dead_rank_ends_the_job_and_both_ranks_resume_from_the_backup(tmp_path):
    data = make_dataset(tmp_path / "ds")
    cfg = cfg_with(tmp_path, batch=2, subdivisions=1, max_batches=100000)
    backup = tmp_path / "ds" / "backup" / "t.backup"
    proc = torchrun(tmp_path, "train", data, cfg, "--workers", "0", "--quiet", "--dist-timeout", 20)
    try:
        deadline = time.monotonic() + 180
        while not backup.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert backup.exists(), proc.stderr.read()[-3000:] if proc.poll() is not None else "no backup in time"
        os.kill(int((tmp_path / "rank1.pid").read_text()), signal.SIGKILL)
        killed = time.monotonic()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert time.monotonic() - killed < 60
    assert "rank" in err.lower() and "fail" in err.lower(), err[-3000:]
    seen = read_weights_file(backup)[0].seen
    assert seen >= 200 and seen % 200 == 0  # a .backup every 100 iterations of 2 images
    # both ranks resume from it
    proc = torchrun(tmp_path, "train", data, cfg, backup, "--workers", "0", "--quiet", "--max-batches", seen // 2 + 2)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-3000:]
    assert read_weights_file(tmp_path / "ds" / "backup" / "t_final.weights")[0].seen == seen + 4
