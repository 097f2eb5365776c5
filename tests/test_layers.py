"""Layer rules not covered by a golden case, checked against transliterations of Darknet's C loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from c_reference import reorg_cpu
from pydarknet.layers.activations import ACTIVATIONS


@pytest.mark.parametrize("reverse", [0, 1])
def test_reorg_matches_reorg_cpu(tmp_path, reverse):
    from pydarknet import Darknet

    c, h, w = (8, 4, 6) if not reverse else (16, 2, 3)
    cfg = tmp_path / "r.cfg"
    cfg.write_text(f"[net]\nwidth={w}\nheight={h}\nchannels={c}\n[reorg]\nstride=2\nreverse={reverse}\n")
    net = Darknet(cfg)
    x = np.arange(c * h * w, dtype=np.float32)
    ours = net(torch.from_numpy(x).view(1, c, h, w))[0].numpy().ravel()
    np.testing.assert_array_equal(ours, reorg_cpu(x, w, h, c, 2, forward=reverse))


DARKNET_ACTIVATIONS = {  # src/activations.h, element by element
    "leaky": lambda x: x if x > 0 else 0.1 * x,
    "relie": lambda x: x if x > 0 else 0.01 * x,
    "ramp": lambda x: x * (x > 0) + 0.1 * x,
    "plse": lambda x: 0.01 * (x + 4) if x < -4 else (0.01 * (x - 4) + 1 if x > 4 else 0.125 * x + 0.5),
    "lhtan": lambda x: 0.001 * x if x < 0 else (0.001 * (x - 1) + 1 if x > 1 else x),
    "hardtan": lambda x: -1 if x < -1 else (1 if x > 1 else x),
    "stair": lambda x: np.floor(x / 2) if int(np.floor(x)) % 2 == 0 else (x - np.floor(x)) + np.floor(x / 2),
    "loggy": lambda x: 2 / (1 + np.exp(-x)) - 1,
    "elu": lambda x: x if x >= 0 else np.exp(x) - 1,
    "relu": lambda x: x * (x > 0),
}


@pytest.mark.parametrize("name", sorted(DARKNET_ACTIVATIONS))
def test_activations_match_darknet_formulas(name):
    xs = np.linspace(-6, 6, 97).astype(np.float32)
    ours = ACTIVATIONS[name](torch.from_numpy(xs)).numpy()
    theirs = np.array([DARKNET_ACTIVATIONS[name](float(v)) for v in xs], dtype=np.float32)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_maxpool_stride1_pads_right_bottom_with_minus_inf(tmp_path):
    from pydarknet import Darknet

    cfg = tmp_path / "m.cfg"
    cfg.write_text("[net]\nwidth=3\nheight=2\nchannels=1\n[maxpool]\nsize=2\nstride=1\n")
    x = -torch.arange(6, dtype=torch.float32).view(1, 1, 2, 3) - 1  # all negative: zero padding would show
    out = Darknet(cfg)(x)[0]
    assert out.shape == (1, 1, 2, 3)
    assert out[0, 0].tolist() == [[-1.0, -2.0, -3.0], [-4.0, -5.0, -6.0]]
