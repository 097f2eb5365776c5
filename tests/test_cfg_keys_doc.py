"""docs/cfg-keys.md is what tools/cfg_keys.py makes from the code now, and its classification holds known facts."""

from __future__ import annotations

import pytest

from tools import cfg_keys


@pytest.fixture(scope="module")
def data() -> dict:
    return cfg_keys.probe_all()


def _row(data: dict, kind: str, key: str) -> cfg_keys.Row:
    return next(row for row in data["built"][kind]["rows"] if row.key == key)


def test_doc_is_current(data: dict) -> None:
    assert cfg_keys.OUT.read_text() == cfg_keys.render(data), (
        "docs/cfg-keys.md is not what the code gives: run python tools/cfg_keys.py")


def test_every_key_of_every_section_is_probed(data: dict) -> None:
    built, _, refused = cfg_keys.sections()
    assert list(data["built"]) == ["net", *built] and list(data["refused"]) == refused
    for kind, info in data["built"].items():
        keys = [row.key for row in info["rows"]]
        expected = cfg_keys.own_keys(kind) + (cfg_keys.common_keys() if kind != "net" else [])
        assert keys == expected, kind
        assert all(row.readers and row.role for row in info["rows"]), kind
    # no crash at load anywhere: every refusal is a CfgError
    assert not [(k, r.key) for k, i in data["built"].items() for r in i["rows"] if r.probe.load == "crash"]


def test_known_facts(data: dict) -> None:
    conv = _row(data, "convolutional", "batch_normalize")
    assert (conv.readers, conv.role, conv.probe.load, conv.probe.train) == (
        ("pjreddie", "alexeyab"), "inference", "read", "ok")

    iou_loss = _row(data, "yolo", "iou_loss")  # AlexeyAB's loss option: silent at inference, trained in its dialect
    assert (iou_loss.readers, iou_loss.role, iou_loss.probe.load, iou_loss.probe.train) == (
        ("alexeyab",), "training", "read", "ok")

    resize = _row(data, "yolo", "resize")  # AlexeyAB's data loading (an extra random crop): a detector trains it
    assert (resize.role, resize.probe.train) == ("training", "ok")

    mosaic = _row(data, "net", "mosaic")  # AlexeyAB's data loading: probed in a detector, which trains it
    assert (mosaic.role, mosaic.probe.train) == ("training", "ok")

    track = _row(data, "net", "track")  # train refuses it (a warning at inference), but track=0 trains as pjreddie's
    assert (track.role, track.probe.load, track.probe.train, track.zero.train) == ("training", "warned", "refused", "ok")

    scale_x_y = _row(data, "yolo", "scale_x_y")  # implemented at inference and in AlexeyAB's loss
    assert (scale_x_y.role, scale_x_y.probe.load, scale_x_y.probe.train) == ("inference", "read", "ok")

    xnor = _row(data, "convolutional", "xnor")
    assert (xnor.probe.load, xnor.zero.load) == ("refused", "read")
    assert "pydarknet does not implement it" in xnor.probe.load_message

    letter_box = _row(data, "net", "letter_box")
    assert (letter_box.readers, letter_box.role, letter_box.probe.load) == (("alexeyab",), "inference", "read")

    jitter = _row(data, "region", "jitter")  # pjreddie's training keys: the trainer implements them
    assert (jitter.role, jitter.probe.train) == ("training", "ok")

    stream = _row(data, "route", "stream")
    assert (stream.role, stream.probe.load, stream.probe.train) == ("no effect", "warned", "ok")


def test_sections(data: dict) -> None:
    assert data["built"]["sam"]["trains"] and data["built"]["sam"]["alexeyab"]
    assert not data["built"]["gaussian_yolo"]["trains"] and not data["built"]["detection"]["trains"]
    assert "pydarknet does not implement it" in data["refused"]["rnn"]["message"]
    assert data["aliases"]["convolutional"] == ["conv"]
