"""Issue #17, memory: huge images, NMS over tens of thousands of boxes, a network whose activations blow up.

Peak memory is measured in a subprocess (`peak_rss`): the 20000x20000 PNG
(1.2 GB of pixels, a few MB of file) is written row by row, so this process
never holds it.
"""

from __future__ import annotations

import json
import re
import struct
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hostile.checks import CFG, IMAGE, ROOT, WEIGHTS, assert_refused, peak_rss, pydarknet_command, run
from pydarknet import Darknet
from pydarknet.infer import nms as nms_module
from pydarknet.infer.nms import do_nms_sort
from pydarknet.layers.boxes import pairwise_iou
from pydarknet.infer.detect import Detection
from pydarknet.infer.draw import draw_detections
from pydarknet.errors import DarknetError
from pydarknet.image import load_frame
from helpers import darknet_do_nms_sort

GB = 10**9
BIG = 20000  # the aerial photo: 20000 x 20000 RGB


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(path: Path, width: int, height: int, row: bytes | None = None) -> Path:
    """An 8-bit RGB PNG whose rows all equal `row` (width * 3 bytes), written row by row.

    Rows after the first use PNG's "up" filter: all zero bytes, which deflate
    to almost nothing.  Without `row`, only the header and one row of data
    are written: a file that claims the size and is cut short.
    """
    z = zlib.compressobj(1)
    data = [z.compress(b"\0" + (row or bytes(3 * width)))]
    if row is not None:
        same = b"\2" + bytes(3 * width)
        for start in range(1, height, 64):
            data.append(z.compress(same * min(64, height - start)))
    data.append(z.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"".join(data)) + _chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def aerial(tmp_path_factory) -> Path:
    """A 20000x20000 PNG: vertical stripes of colour."""
    row = np.repeat(np.array([[40, 90, 200], [220, 220, 60], [30, 160, 40], [250, 250, 250]], np.uint8), BIG // 4, axis=0)
    return write_png(tmp_path_factory.mktemp("aerial") / "aerial_1.png", BIG, BIG, row.tobytes())


# -- images ---------------------------------------------------------------------------------------------------------

def test_valid_on_a_20000x20000_png_stays_under_3gb(aerial, tmp_path):
    (tmp_path / "valid.txt").write_text(f"{aerial}\n")
    (tmp_path / "shapes.data").write_text(f"classes=6\nvalid={tmp_path / 'valid.txt'}\n"
                                          f"names={ROOT / 'data' / 'shapes.names'}\nresults={tmp_path / 'results'}\n")
    result, peak = peak_rss([*pydarknet_command(), "valid", tmp_path / "shapes.data", CFG, WEIGHTS], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert peak < 3 * GB, f"peak RSS {peak / GB:.2f} GB"
    lines = [line for f in sorted((tmp_path / "results").glob("comp4_det_test_*.txt")) for line in f.read_text().splitlines()]
    assert lines and all(line.startswith("aerial_1 ") for line in lines)
    values = np.array([line.split()[1:] for line in lines], dtype=np.float64)  # prob x1 y1 x2 y2
    assert np.all((values[:, 0] > 0) & (values[:, 0] <= 1)) and np.all(values[:, 1:3] >= 1) and np.all(values[:, 3:] <= BIG)


def write_jpeg_header(path: Path, width: int, height: int) -> Path:
    """A JPEG of 8x8 pixels whose frame header (SOF0) claims width x height."""
    data = bytearray(cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("write", [write_png, write_jpeg_header])
def test_image_past_opencvs_pixel_limit_is_one_line(tmp_path, write):
    huge = write(tmp_path / f"huge.{'png' if write is write_png else 'jpg'}", 40000, 30000)  # 1.2e9 pixels > 2^30
    with pytest.raises(DarknetError, match=rf"{huge.name}: 40000x30000 image is larger than OpenCV decodes"):
        load_frame(huge)
    assert_refused(run("detect", CFG, WEIGHTS, huge, cwd=tmp_path), huge.name, "40000x30000")


def test_a_name_opencv_may_not_open_is_decoded_from_memory(tmp_path):
    """Not ASCII: read into memory and decoded there (cv2.imread cannot open such names everywhere)."""
    plain = write_png(tmp_path / "plain.png", 5, 3, bytes(range(15)))
    accented = tmp_path / "\u00e9t\u00e9.png"
    accented.write_bytes(plain.read_bytes())
    assert np.array_equal(load_frame(accented), load_frame(plain))


MEMORY_LIMITED = """
import re, resource, sys
from pydarknet.errors import DarknetError
from pydarknet.image import {function}
size = int(re.search(r"VmSize:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + (256 << 20), resource.RLIM_INFINITY))  # 256 MB to spare
try:
    {function}(sys.argv[1])
except DarknetError as err:
    print(err)
"""


@pytest.mark.parametrize("function, size", [("load_frame", BIG), ("load_image", 6000)])
def test_image_that_does_not_fit_in_memory_is_one_line(aerial, tmp_path, function, size):
    """The pixels (load_frame: 1.2 GB) or the float copy (load_image: 432 MB) cannot be allocated."""
    path = aerial if size == BIG else write_png(tmp_path / "six.png", size, size, (np.arange(3 * size) % 251).astype(np.uint8).tobytes())
    result, _ = peak_rss([sys.executable, "-c", MEMORY_LIMITED.format(function=function), path])
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert re.fullmatch(rf"{re.escape(str(path))}: not enough memory for the {size}x{size} image \(.*\)\n", result.stdout), result.stdout


# -- NMS ------------------------------------------------------------------------------------------------------------

NMS_20000 = """
import numpy as np, torch
from pydarknet.infer.nms import do_nms_sort
rng = np.random.default_rng(0)
n, classes = 20000, 20
scattered = np.concatenate([rng.random((n, 2)), rng.random((n, 2)) * 0.05 + 0.01], axis=1)
piled = np.concatenate([0.5 + rng.random((n, 2)) * 1e-3, 0.5 + rng.random((n, 2)) * 1e-3], axis=1)  # all overlap
probs = np.where(rng.random((n, classes)) < 0.3, rng.random((n, classes)), 0)
for boxes in (scattered, piled):
    order, after = do_nms_sort(torch.tensor(boxes, dtype=torch.float32), torch.ones(n), torch.tensor(probs, dtype=torch.float32), 0.45)
    print(len(order), int((after > 0).sum()))
"""


def test_nms_over_20000_boxes_stays_under_1_5gb():
    result, peak = peak_rss([sys.executable, "-c", NMS_20000])
    assert result.returncode == 0, result.stderr
    scattered, piled = (tuple(map(int, line.split())) for line in result.stdout.splitlines())
    assert scattered[0] == piled[0] == 20000
    assert piled[1] <= 20  # one box per class survives the pile
    assert peak < 1.5 * GB, f"peak RSS {peak / GB:.2f} GB"


def _boxes(rng: np.random.Generator, n: int, kind: str) -> torch.Tensor:
    """Boxes in clusters (chains of overlaps), piled on one spot, or with inf/NaN coordinates among them."""
    centres = rng.random((max(1, n // 8), 2))[rng.integers(0, max(1, n // 8), n)] + rng.normal(0, 0.03, (n, 2))
    sizes = rng.random((n, 2)) * 0.3 + 0.05
    boxes = np.concatenate([centres, sizes], axis=1)
    if kind == "piled":
        boxes = np.concatenate([0.5 + rng.random((n, 2)) * 0.01, 0.5 + rng.random((n, 2)) * 0.01], axis=1)
    if kind == "non-finite":
        odd = rng.random((n, 4)) < 0.1
        boxes[odd] = rng.choice([np.inf, -np.inf, np.nan, 1e30, -1e30], size=int(odd.sum()))
    return torch.tensor(boxes, dtype=torch.float32)


@pytest.mark.parametrize("kind", ["clustered", "piled", "non-finite"])
@pytest.mark.parametrize("budget, block", [(1 << 30, 7), (0, 7), (40, 5)])
def test_nms_in_blocks_equals_darknets_loops(monkeypatch, kind, budget, block):
    """Bit for bit against the port of do_nms_sort, the IoUs computed a few at a time (`block`), the
    suppression links kept (`budget` large), not kept (0), or dropped when too many: class by class."""
    monkeypatch.setattr(nms_module, "_LINK_BUDGET", budget)
    monkeypatch.setattr(nms_module, "_IOU_BLOCK", block)
    rng = np.random.default_rng(len(kind))
    for _ in range(12):
        n, classes = int(rng.integers(1, 120)), int(rng.integers(1, 5))
        boxes = _boxes(rng, n, kind)
        objectness = torch.from_numpy((rng.random(n) < 0.9) * rng.random(n)).float()
        probs = torch.from_numpy(np.where(rng.random((n, classes)) < 0.6, np.round(rng.random((n, classes)) * 4) / 4, 0)).float()
        probs *= (objectness != 0)[:, None]
        for thresh in (0.45, 0.0, -0.1):
            order, after = do_nms_sort(boxes, objectness, probs, thresh)
            expected_order, expected = darknet_do_nms_sort(boxes, objectness, probs, thresh)
            assert order.tolist() == expected_order.tolist()
            assert torch.equal(after, expected)


def test_nms_ious_are_box_ious_bits():
    """NMS's numpy IoU against pydarknet.layers.boxes.box_iou (torch), bit for bit, odd values included."""
    rng = np.random.default_rng(3)
    boxes = rng.random((300, 4)).astype(np.float32)
    odd = rng.random((300, 4)) < 0.2
    boxes[odd] = rng.choice(np.array([np.inf, -np.inf, np.nan, 0, -0.0, -0.3, 1e30, -1e30, 1e-42, 3e38], np.float32), int(odd.sum()))
    ours = nms_module._iou(boxes[:, None], boxes[None])
    theirs = pairwise_iou(torch.from_numpy(boxes), torch.from_numpy(boxes)).numpy()
    np.testing.assert_array_equal(ours, theirs)  # NaN where theirs is NaN
    assert np.array_equal(np.signbit(ours[~np.isnan(ours)]), np.signbit(theirs[~np.isnan(theirs)]))


# -- a network whose activations overflow ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def zero_variance_weights(tmp_path_factory) -> Path:
    """The demo model with batch-norm rolling variance 0 in its first layer: Darknet divides by sqrt(0) + .000001."""
    net = Darknet(CFG)
    net.load_weights(WEIGHTS)
    with torch.no_grad():
        next(m for m in net.modules() if hasattr(m, "running_var")).running_var.zero_()
    path = tmp_path_factory.mktemp("zero-variance") / "zero-variance.weights"
    net.save_weights(path)
    return path


def test_zero_batch_norm_variance_detects_without_a_traceback(zero_variance_weights, tmp_path):
    result = run("detect", CFG, zero_variance_weights, IMAGE, "--json", cwd=tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    [record] = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["detections"]
    top = 2**31 - 1
    for d in record["detections"]:
        left, upper, right, bottom = d["pixels"]
        assert 0 <= left <= top and 0 <= upper <= top and -top - 1 <= right < record["width"] and -top - 1 <= bottom < record["height"]
    assert (tmp_path / "predictions.jpg").is_file()


@pytest.mark.parametrize("box, pixels", [
    ((0.5, 0.5, np.inf, np.inf), (0, 0, 99, 49)),
    ((np.inf, 0.5, 0.2, 0.2), (2**31 - 1, 20, 99, 30)),
    ((-np.inf, 0.5, 0.2, 0.2), (0, 20, -2**31, 30)),
    ((np.nan, np.nan, 0.2, 0.2), (0, 0, 0, 0)),
    ((0.5, 0.5, 1e30, 1e30), (0, 0, 99, 49)),
    ((1e30, 0.5, 0.2, 0.2), (2**31 - 1, 20, 99, 30)),
])
def test_pixel_box_saturates_like_a_c_int(box, pixels):
    """Darknet's `int left = (b.x-b.w/2.)*im.w` is undefined for inf, NaN and values past int: here they
    saturate to int's range (NaN: 0), then Darknet's clamps apply; drawing clamps to the image."""
    det = Detection(box, 0.9, np.array([0.9, 0], np.float32))
    assert det.pixel_box(100, 50) == pixels
    frame = np.zeros((50, 100, 3), np.uint8)
    assert draw_detections(frame, [det], ["a", "b"]) is frame
