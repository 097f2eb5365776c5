"""Training on several processes (torchrun), with Darknet's batch semantics.

Darknet's own multi-GPU training (`-gpus 0,1,...`, examples/detector.c and
network.c:train_networks) keeps one net per GPU, each training on a whole
`batch`, averages their weights every few batches (sync_nets) and multiplies
the learning rate by the number of GPUs.  pydarknet uses the standard engine
instead: one process per device, started by `torchrun` (one node or many),
NCCL on GPUs and gloo on CPUs, and keeps the cfg's meaning of `batch`:

- the cfg's `batch` is the *global* batch of an iteration and `batch /
  subdivisions` the global mini-batch of a step; with W ranks each rank
  forwards `batch / subdivisions / W` images per step (`batch / W` per
  iteration);
- the parameter gradients are summed over the ranks (one all-reduce per
  iteration, before Darknet's update), so "sum over the batch, divide by
  batch" holds for the global batch, and `seen`, the learning-rate
  schedule, `burn_in` and `max_batches` count global images, exactly as one
  process with the whole batch;
- batch norm, by default, normalises each rank's share (as Darknet's GPUs
  each see their own images; their rolling statistics stay per rank too,
  sync_nets does not average them, and rank 0's are saved);
  `synchronize_batchnorm` makes it use the mean and variance of the global
  mini-batch instead (and sums its backward over the ranks).

A process group is started from torchrun's environment (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT) with a timeout, so a rank that dies
or hangs ends the others with one line instead of a hang.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch import Tensor, nn

from pydarknet.errors import DarknetError
from pydarknet.layers.batchnorm import BatchNorm

if TYPE_CHECKING:
    from pydarknet.network import Darknet

# Gradients are all-reduced in flat buckets of at most this many elements (64 MB of float32).
BUCKET_ELEMENTS = 1 << 24


class RankLost(DarknetError):
    """A collective operation failed: another rank died, hung past the timeout, or stopped."""


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job, and the device it trains on."""

    rank: int
    world_size: int
    local_rank: int
    device: str

    @property
    def main(self) -> bool:
        """Rank 0 writes checkpoints, logs and the chart."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise DarknetError(f"environment variable {name}={value!r} is not an integer") from None


def rank_device(device: str, local_rank: int) -> str:
    """`cuda` on a multi-process job means this node's GPU number LOCAL_RANK; other devices stay."""
    return f"cuda:{local_rank}" if device == "cuda" else device


@contextlib.contextmanager
def process_group(device: str, timeout: float) -> Iterator[Ranks]:
    """Join the job torchrun started (gloo on CPU, NCCL on CUDA), or run alone without WORLD_SIZE.

    `timeout` (seconds) bounds every collective: past it a rank raises
    `RankLost` instead of waiting forever.  A process group that already
    exists is used as it is (and left open).
    """
    if dist.is_available() and dist.is_initialized():
        local_rank = _env_int("LOCAL_RANK", 0)
        yield Ranks(dist.get_rank(), dist.get_world_size(), local_rank, rank_device(device, local_rank))
        return
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size <= 1:
        yield Ranks(0, 1, 0, device)
        return
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    device = rank_device(device, local_rank)
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    backend = "nccl" if device.startswith("cuda") else "gloo"
    try:
        dist.init_process_group(backend, rank=rank, world_size=world_size, timeout=timedelta(seconds=timeout))
    except (RuntimeError, ValueError) as err:
        raise RankLost(f"rank {rank}: could not join the {world_size}-process job: {_first_line(err)}") from None
    try:
        yield Ranks(rank, world_size, local_rank, device)
    finally:
        dist.destroy_process_group()


def world_size() -> int:
    """Processes in the job: 1 without a process group."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _first_line(err: BaseException) -> str:
    """The gist of a backend error: its first sentence, without gloo's `[file.cc:line]` prefix."""
    lines = str(err).strip().splitlines()
    text = re.sub(r"^\[[^\]]*\]\s*", "", lines[0]) if lines else type(err).__name__
    return text.split(". ")[0]


@contextlib.contextmanager
def _collective() -> Iterator[None]:
    """Turn a failed collective into one line (RankLost)."""
    try:
        yield
    except RuntimeError as err:  # torch.distributed.DistError and the backends' errors
        rank = dist.get_rank() if dist.is_initialized() else 0
        raise RankLost(
            f"rank {rank}: lost the other ranks ({_first_line(err)}); stopping — resume from the last .backup"
        ) from None


def all_sum(tensor: Tensor) -> Tensor:
    """Sum `tensor` over the ranks, in place; returns it."""
    with _collective():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def sum_gradients(params: Iterable[Tensor]) -> None:
    """Sum every parameter's `.grad` over the ranks (missing ones count as zero), in flat buckets."""
    grads = []
    for param in params:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
        grads.append(param.grad)
    for bucket in _buckets(grads):
        flat = all_sum(torch.cat([g.reshape(-1) for g in bucket]))
        for grad, part in zip(bucket, flat.split([g.numel() for g in bucket])):
            grad.copy_(part.view_as(grad))


def _buckets(tensors: list[Tensor]) -> Iterator[list[Tensor]]:
    bucket: list[Tensor] = []
    size = 0
    for tensor in tensors:
        if bucket and (size + tensor.numel() > BUCKET_ELEMENTS or tensor.dtype != bucket[0].dtype):
            yield bucket
            bucket, size = [], 0
        bucket.append(tensor)
        size += tensor.numel()
    if bucket:
        yield bucket


@torch.no_grad()
def broadcast_model(net: nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers (they start from the same files anyway)."""
    with _collective():
        for tensor in [*net.parameters(), *net.buffers()]:
            dist.broadcast(tensor.data, src=0)


def synchronize_batchnorm(net: Darknet, enabled: bool = True) -> None:
    """Make every batch norm of `net` use the statistics of the global mini-batch (`--sync-bn`): Darknet's
    formulas over the ranks, which AlexeyAB's GPU build does not have (cuDNN's, per GPU): refused there."""
    if enabled and net.dialect == "alexeyab" and net.training_build == "gpu":
        raise DarknetError("--sync-bn trains AlexeyAB's dialect as its CPU build only (add --alexeyab-cpu-build); "
                           "its GPU build normalises each GPU's share on its own, as pydarknet does without --sync-bn")
    for module in net.modules():
        if isinstance(module, BatchNorm):
            module.sum_over_ranks = all_sum if enabled else None


def agree(loss: float, stop: bool) -> tuple[float, bool]:
    """The mean loss over the ranks, and whether any rank was asked to stop (Ctrl-C)."""
    if world_size() == 1:
        return loss, stop
    both = all_sum(torch.tensor([loss, float(stop)], dtype=torch.float64, device=_collective_device()))
    return float(both[0]) / world_size(), bool(both[1] > 0)


def on_main_rank(ranks: Ranks, action: Callable[[], object], what: str) -> None:
    """Run `action` on rank 0 alone; if it fails there, every rank raises (rank 0 its own error), so none waits for the others."""
    failed: BaseException | None = None
    if ranks.main:
        try:
            action()
        except (DarknetError, OSError) as err:
            failed = err
    if any_rank(failed is not None):
        raise failed or DarknetError(f"rank {ranks.rank}: rank 0 could not {what}")


def any_rank(flag: bool) -> bool:
    """Whether `flag` is true on any rank (every rank must call it)."""
    if world_size() == 1:
        return flag
    return bool(all_sum(torch.tensor([float(flag)], dtype=torch.float64, device=_collective_device()))[0] > 0)


def _collective_device() -> torch.device:
    """NCCL reduces CUDA tensors only; gloo CPU tensors."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
