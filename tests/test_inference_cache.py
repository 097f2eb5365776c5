"""The fast path by default: `predict` (hence `Darknet.detect`, `detect_batch`, `pydarknet.darknet`) runs a cached
InferenceModel, made anew when what it copied from the network changed (pydarknet/infer/engine.py inference_model)."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

import pydarknet
from conftest import DEMO_CFG, DEMO_IMAGE, DEMO_WEIGHTS
from pydarknet.image import load_image
from pydarknet.infer.detect import predict
from pydarknet.infer.inputs import network_batch
from pydarknet.infer.engine import eager_model, inference_model


@pytest.fixture
def net() -> pydarknet.Darknet:
    return pydarknet.load(DEMO_CFG, DEMO_WEIGHTS)


def assert_fast_equals_eager(net: pydarknet.Darknet) -> None:
    batch = network_batch(net, [load_image(DEMO_IMAGE)])
    for fast, eager in zip(predict(net, batch), predict(net, batch, eager_model(net))):
        torch.testing.assert_close(fast, eager, rtol=1e-4, atol=1e-4)


def test_detect_runs_the_cached_model_and_finds_what_eager_finds(net) -> None:
    fast = net.detect(DEMO_IMAGE)
    model = inference_model(net)
    assert net.detect(DEMO_IMAGE) and inference_model(net) is model  # kept from call to call
    eager = net.detect(DEMO_IMAGE, eager=True)
    assert [(d.name, d.best_class) for d in fast] == [(d.name, d.best_class) for d in eager]
    for a, b in zip(fast, eager):
        assert a.box == pytest.approx(b.box, abs=1e-5) and a.best_prob == pytest.approx(b.best_prob, abs=1e-5)


def test_new_weights_make_a_new_model(net, tmp_path) -> None:
    model = inference_model(net)
    other = pydarknet.load(DEMO_CFG, DEMO_WEIGHTS)
    with torch.no_grad():
        other.layers[2].conv.weight.neg_()
    other.save_weights(tmp_path / "other.weights")
    before = net.detect(DEMO_IMAGE)
    net.load_weights(tmp_path / "other.weights")
    assert inference_model(net) is not model
    assert [d.box for d in net.detect(DEMO_IMAGE)] != [d.box for d in before]
    assert_fast_equals_eager(net)


def test_an_in_place_edit_makes_a_new_model(net) -> None:
    model = inference_model(net)
    with torch.no_grad():
        net.layers[0].conv.weight.mul_(0.5)
    assert inference_model(net) is not model
    assert_fast_equals_eager(net)


def test_a_resize_makes_a_new_model(net) -> None:
    model = inference_model(net)
    net.resize(320, 320)
    assert inference_model(net) is not model
    assert_fast_equals_eager(net)


def test_a_dialect_change_makes_a_new_model(net) -> None:
    model = inference_model(net)
    net.set_dialect("alexeyab" if net.dialect == "pjreddie" else "pjreddie")
    assert inference_model(net) is not model
    assert_fast_equals_eager(net)


def test_the_model_goes_with_its_network() -> None:
    net = pydarknet.load(DEMO_CFG)
    model = weakref.ref(inference_model(net))
    del net
    gc.collect()
    assert model() is None
