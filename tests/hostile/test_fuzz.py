"""Fuzzing the readers of files from strangers: a DarknetError (one line) or success, nothing else.

Darknet .weights files (`read_weights_file`, `load_weights`: random bytes, random headers, cut
and changed files, appendices), label files (`read_labels`, `read_training_labels`), names and list files, `.data` files and
`.pt` checkpoints with changed bytes.  The cfg parser has its own in tests/test_fuzz_cfg.py; both
files run in well under a minute.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydarknet import Darknet
from pydarknet.convert.torch_format import load_pt, pt_bytes
from pydarknet.data.augment import CLASS_ONLY, truth_from_labels
from pydarknet.data.datafile import DataFile, read_list, read_names
from pydarknet.data.labels import read_labels, read_training_labels
from pydarknet.errors import DarknetError
from pydarknet.weights import APPENDIX_START, WeightsHeader, load_weights, read_weights_file, weights_bytes, with_appendix

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# A conv with batch norm, a connected layer (transposed in some header versions), a region: 91 floats.
TINY_CFG = """[net]
width=4
height=4
channels=3
[convolutional]
batch_normalize=1
filters=2
size=1
activation=leaky
[connected]
output=6
[region]
classes=1
coords=4
num=1
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Darknet, bytes]:
    """The tiny network and the bytes of a valid weights file for it."""
    path = tmp_path_factory.mktemp("tiny") / "tiny.cfg"
    path.write_text(TINY_CFG)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(path)
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(-1, 1)
    return net, weights_bytes(net)


def refused_or_fine(call, *args, **kwargs) -> None:
    """Run `call`: it succeeds, or raises a DarknetError of one line."""
    try:
        call(*args, **kwargs)
    except DarknetError as err:
        assert "\n" not in str(err), err


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


# .weights --------------------------------------------------------------------------------------------------

def load_into(net: Darknet, path, cutoff: int | None, partial: bool) -> None:
    load_weights(net, path, cutoff=cutoff, partial=partial)


@FUZZ
@given(st.binary(max_size=600), st.sampled_from([None, 0, 1, 2, 5]), st.booleans())
def test_weights_from_random_bytes(tmp_path, tiny, data, cutoff, partial):
    path = write(tmp_path, "x.weights", data)
    refused_or_fine(read_weights_file, path)
    refused_or_fine(load_into, tiny[0], path, cutoff, partial)


INT32 = st.one_of(st.integers(-3, 1003), st.integers(-(2**31), 2**31 - 1))


@FUZZ
@given(INT32, INT32, INT32, st.integers(0, 2**64 - 1), st.integers(0, 230), st.booleans())
def test_weights_with_random_headers(tmp_path, tiny, major, minor, revision, seen, floats, partial):
    header = WeightsHeader(major, minor, revision, seen % 2 ** (8 * WeightsHeader(major, minor).seen_bytes))
    body = np.random.default_rng(floats).standard_normal(floats).astype("<f4").tobytes()
    path = write(tmp_path, "x.weights", header.to_bytes() + body)
    refused_or_fine(load_into, tiny[0], path, None, partial)


@FUZZ
@given(st.data())
def test_weights_cut_or_changed(tmp_path, tiny, data):
    good = bytearray(with_appendix(tiny[1], b"resume state") if data.draw(st.booleans()) else tiny[1])
    kind = data.draw(st.sampled_from(["cut", "flip", "splice", "append"]))
    if kind == "cut":
        good = good[: data.draw(st.integers(0, len(good)))]
    elif kind == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            good[data.draw(st.integers(0, len(good) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "splice":
        at = data.draw(st.integers(0, len(good)))
        good[at:at] = data.draw(st.sampled_from([APPENDIX_START, b"\0" * 4, b"\xff" * 8]))
    else:
        good += data.draw(st.binary(max_size=80))
    refused_or_fine(load_into, tiny[0], write(tmp_path, "x.weights", bytes(good)), None, data.draw(st.booleans()))


# label, names, list and .data files ---------------------------------------------------------------------

FIELD = st.one_of(st.sampled_from(["0", "1", "5", ".5", "-0", "-0.5", "3.5", "1e30", "1.0000001", "nan", "inf", "-1", "x"]),
                  st.floats(allow_nan=True, allow_infinity=True).map(repr),
                  st.text(alphabet="0123456789.-+eEinfa\x00", max_size=6))
CLASS = st.one_of(st.sampled_from(["0", "1", "5", "6", "-1"]), FIELD)
LINE = st.one_of(st.tuples(CLASS, FIELD, FIELD, FIELD, FIELD).map(" ".join), st.lists(FIELD, max_size=7).map(" ".join))
LABEL_TEXT = st.one_of(st.lists(LINE, max_size=5).map("\n".join), st.text(alphabet="0123456789 .-+eEinfa\t\r\n\x00", max_size=120))


@FUZZ
@given(LABEL_TEXT, st.sampled_from([None, 1, 6]))
def test_labels_from_random_text(tmp_path, text, classes):
    path = write(tmp_path, "a.txt", text.encode())
    try:
        rows = read_labels(path, classes)
    except DarknetError as err:
        assert "\n" not in str(err)
        return
    assert np.isfinite(rows).all() and ((rows[:, 1:] >= 0) & (rows[:, 1:] <= 1)).all()
    assert classes is None or (rows[:, 0] < classes).all()


@FUZZ
@given(LABEL_TEXT, st.sampled_from([None, 1, 6]), st.sampled_from([None, (0,), (5, 3)]), st.booleans(),
       st.tuples(st.sampled_from([0.0, 0.3, -0.2]), st.sampled_from([1.0, 0.5, 3.0]), st.booleans()))
def test_training_labels_from_random_text(tmp_path, text, classes, class_map, class_only, move):
    """Training takes any finite numbers (Darknet's correct_boxes clips them): no NaN or inf reaches the truth."""
    path = write(tmp_path, "a.txt", text.encode())
    try:
        rows = read_training_labels(path, classes, class_map, class_only)
    except DarknetError as err:
        assert "\n" not in str(err)
        return
    d, s, flip = move
    truth = truth_from_labels(rows, 30, d, d, s, s, flip)
    boxes = truth[:, :4][truth[:, 0] != CLASS_ONLY]
    assert np.isfinite(rows).all() and ((boxes >= 0) & (boxes <= 1)).all()
    only = (rows[:, 1] == 0) & (rows[:, 2] == 0)
    assert class_only or not only.any()
    limit = len(class_map) if class_map is not None else classes
    assert limit is None or (rows[~only, 0] < limit).all()


@FUZZ
@given(st.binary(max_size=300))
def test_labels_names_and_lists_from_random_bytes(tmp_path, data):
    path = write(tmp_path, "f.txt", data)
    for reader in (read_labels, read_names, read_list):
        refused_or_fine(reader, path)


@FUZZ
@given(st.text(alphabet="=,#;[] \t\r\n./~abcdeilmnrstv0123456789-\x00", max_size=200),
       st.sampled_from([(), ("train",), ("names",), ("valid",)]))
def test_data_files_from_random_text(tmp_path, text, need):
    (tmp_path / "names").write_text("a\nb\n")
    (tmp_path / "train").write_text("x.jpg\n")
    path = write(tmp_path, "d.data", text.encode("utf-8", "surrogatepass"))
    refused_or_fine(DataFile.read, path, need)


@FUZZ
@given(st.sampled_from(["tree", "map"]), st.one_of(st.binary(max_size=200), LABEL_TEXT.map(str.encode)))
def test_cfg_naming_a_random_tree_or_map_file(tmp_path, key, data):
    """A [region]'s tree=/map= file with random contents: a CfgError naming the option, or a network."""
    write(tmp_path, "f", data)
    cfg = write(tmp_path, "r.cfg", f"[net]\nwidth=4\nheight=4\nchannels=6\n[region]\nclasses=1\nnum=1\n{key}=f\n".encode())
    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        try:
            net = Darknet(cfg)
        except DarknetError as err:
            assert "\n" not in str(err) and key in str(err)
            return
    assert net.layers[0].map is None or all(0 <= c < 1 for c in net.layers[0].map)


# .pt checkpoints ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_pt(tiny) -> bytes:
    return pt_bytes(tiny[0])


@settings(FUZZ, max_examples=60)
@given(st.data())
def test_pt_with_changed_bytes(tiny_pt, data):
    changed = bytearray(tiny_pt)
    for _ in range(data.draw(st.integers(1, 6))):
        changed[data.draw(st.integers(0, len(changed) - 1))] = data.draw(st.integers(0, 255))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refused_or_fine(load_pt, None, io.BytesIO(bytes(changed)), "x.pt")


BIG = st.sampled_from([-1, 2**31, 2**32, 2**63, 2**64, 2**70])
ODD_VALUE = st.one_of(BIG, st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8),
                      st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2))


@settings(FUZZ, max_examples=60)
@given(st.sampled_from(["version", "cfg", "cfg_name", "files", "width", "height", "header", "major", "minor", "revision", "seen"]),
       ODD_VALUE)
def test_pt_with_odd_metadata(tiny_pt, key, value):
    """A version-1 checkpoint (no checksum) with one field replaced, loaded and written back as .weights."""
    checkpoint = torch.load(io.BytesIO(tiny_pt), weights_only=True) | {"version": 1}
    if key in checkpoint:
        checkpoint[key] = value
    else:
        checkpoint["header"] = checkpoint["header"] | {key: value}
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refused_or_fine(lambda: weights_bytes(load_pt(None, io.BytesIO(buffer.getvalue()), "x.pt")))
