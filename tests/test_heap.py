"""The C heap under CPU inference (pydarknet.infer.heap): the InferenceModel's large activations come from memory
already mapped (no page faults), unless the user tuned malloc."""

from __future__ import annotations

import resource

import pytest
import torch

from pydarknet.infer import heap
from pydarknet.infer.engine import InferenceModel
from pydarknet.network import Darknet

pytestmark = pytest.mark.skipif(heap._glibc() is None, reason="not glibc's malloc")


def test_a_forwards_activations_are_reused(tmp_path, monkeypatch):
    """A first activation of 45 MiB (32 x 608 x 608, yolov2's), above glibc's own 32 MiB cap: mapped anew at each
    forward without keep_freed_blocks (11.5k page faults, 35 ms, per yolov2 forward at 608).  The model keeps
    them from its second forward on: a one-image run keeps glibc's defaults (and its lower peak RSS)."""
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    cfg = tmp_path / "wide.cfg"
    cfg.write_text("[net]\nwidth=608\nheight=608\nchannels=3\n[convolutional]\nfilters=32\nsize=3\nstride=1\n"
                   "pad=1\nactivation=leaky\n[maxpool]\nsize=2\nstride=2\n")
    model = InferenceModel(Darknet(cfg))
    x = torch.rand(1, 3, 608, 608)
    faults = []
    for _ in range(8):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        model(x)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    assert sorted(faults[2:])[3] < 500, faults  # mostly reused (the first forwards map it); anew: > 11000 pages each


@pytest.mark.parametrize("env", [{"MALLOC_MMAP_THRESHOLD_": "1"}, {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1"}])
def test_the_users_own_tuning_stands(monkeypatch, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert heap._user_tuned()
