"""Files from strangers (issue #17): names that climb out of a folder, HDF5 links and external storage,
damaged .pt files, absurd cfgs, FIFOs, out-of-range labels, paths with spaces, outputs that would
replace their inputs.  Each one is one `pydarknet: ...` line naming the file, no traceback, nothing written.

Payloads are built here, in tmp_path.  One test per kind runs the real console script (`run`); the
variants call `pydarknet.cli.main` in this process (`call`, same output, no 2 s start-up each).
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import shutil
import signal
import subprocess
import warnings
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from hostile.checks import CFG, IMAGE, WEIGHTS, assert_refused, cli_env, pydarknet_command, run, sha256
from pydarknet.cli import main
from pydarknet.convert import convert
from pydarknet.data.augment import truth_from_labels
from pydarknet.data.datafile import DataFile
from pydarknet.data.labels import read_labels, read_training_labels
from pydarknet.data.loader import Augmentation, SampleBatches
from pydarknet.errors import DarknetError

NAMES = ["circle", "square", "triangle", "star", "cross", "ring"]  # data/shapes.names, the demo model's classes


class Blocked(BaseException):
    """A command still waiting on a FIFO (a BaseException: `main` turns OSErrors into a line)."""


@contextlib.contextmanager
def deadline(seconds: int):
    def stop(*_: object) -> None:
        raise Blocked(f"still blocked after {seconds} s")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def call(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`pydarknet.cli.main` in this process, its exit status and output shaped as `run` gives them."""
    out, err = io.StringIO(), io.StringIO()
    shown = warnings.showwarning
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), contextlib.chdir(cwd or Path.cwd()):
        try:
            code = main([str(a) for a in args])
        except SystemExit as stop:
            code = stop.code
        finally:
            warnings.showwarning = shown
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def paths_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """The demo model as .pt and .h5."""
    folder = tmp_path_factory.mktemp("checkpoints")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ext in ("pt", "h5"):
            convert(CFG, WEIGHTS, folder / f"demo.{ext}")
    return {"pt": folder / "demo.pt", "h5": folder / "demo.h5"}


# 1. class names that would name result files outside the results folder ------------------------------

def valid_workspace(root: Path, names: list[str]) -> Path:
    (root / "names").write_text("".join(f"{n}\n" for n in names))
    (root / "valid.txt").write_text(f"{IMAGE}\n")
    (root / "v.data").write_text("classes=6\nvalid=valid.txt\nnames=names\nresults=deep/results\n")
    return root / "v.data"


def test_valid_refuses_a_names_file_that_climbs_out_of_the_results_folder(tmp_path):
    names = [*NAMES[:2], "../../../escaped", *NAMES[3:]]
    data = valid_workspace(tmp_path, names)
    before = paths_under(tmp_path)
    line = assert_refused(run("valid", data, CFG, WEIGHTS, cwd=tmp_path), "names:3", "../../../escaped")
    assert "file name" in line
    assert paths_under(tmp_path) == before  # no result file, no results folder, nothing outside


@pytest.mark.parametrize("bad", ["a/b", "a\\b", ".", "..", "/etc/x"])
def test_valid_refuses_class_names_that_are_not_file_names(tmp_path, bad):
    data = valid_workspace(tmp_path, [*NAMES[:4], bad, NAMES[5]])
    before = paths_under(tmp_path)
    assert_refused(call("valid", data, CFG, WEIGHTS, cwd=tmp_path), "names:5")
    assert paths_under(tmp_path) == before


def test_valid_refuses_two_classes_with_one_result_file(tmp_path):
    data = valid_workspace(tmp_path, [*NAMES[:5], NAMES[1]])
    assert_refused(call("valid", data, CFG, WEIGHTS, cwd=tmp_path), "names:6", "line 2", NAMES[1])
    assert not (tmp_path / "deep").exists()


def test_map_plot_refuses_a_class_name_that_climbs_out(tmp_path):
    data = valid_workspace(tmp_path, [*NAMES[:5], "../x"])
    assert_refused(call("map", data, CFG, WEIGHTS, "--plot", tmp_path / "plots", cwd=tmp_path), "names:6", "../x")
    assert not (tmp_path / "plots").exists() and not (tmp_path / "pr_.png").exists()


def test_detection_prints_a_class_named_with_a_slash(tmp_path):
    (tmp_path / "names").write_text("".join(f"{n}/x\n" for n in NAMES))
    done = call("detect", CFG, WEIGHTS, IMAGE, "--names", tmp_path / "names", "--out", tmp_path / "out", "--json")
    assert done.returncode == 0, done.stderr
    assert "star/x" in done.stdout


# 2. HDF5: only the file's own plain datasets, through hard links -----------------------------------------

def h5_variant(source: Path, target: Path, edit) -> Path:
    shutil.copyfile(source, target)
    with h5py.File(target, "r+") as f:
        edit(f, target.parent)
    return target


def external_storage(f: h5py.File, folder: Path) -> None:
    secret = folder / "secret.bin"
    secret.write_bytes(np.arange(8, dtype="<f4").tobytes())
    del f["000_convolutional/biases"]
    f["000_convolutional"].create_dataset("biases", shape=(8,), dtype="<f4", external=[(str(secret), 0, 32)])


def external_link(f: h5py.File, folder: Path) -> None:
    with h5py.File(folder / "other.h5", "w") as other:
        other["biases"] = np.ones(8, np.float32)
    del f["000_convolutional/biases"]
    f["000_convolutional/biases"] = h5py.ExternalLink(str(folder / "other.h5"), "/biases")


def soft_link_dataset(f: h5py.File, folder: Path) -> None:
    del f["000_convolutional/biases"]
    f["000_convolutional/biases"] = h5py.SoftLink("/000_convolutional/scales")


def soft_link_group(f: h5py.File, folder: Path) -> None:
    f.move("000_convolutional", "elsewhere")
    f["000_convolutional"] = h5py.SoftLink("/elsewhere")


def dangling_soft_link(f: h5py.File, folder: Path) -> None:
    del f["000_convolutional/biases"]
    f["000_convolutional/biases"] = h5py.SoftLink("/nowhere")


def virtual_dataset(f: h5py.File, folder: Path) -> None:
    with h5py.File(folder / "source.h5", "w") as other:
        other["data"] = np.ones(8, np.float32)
    layout = h5py.VirtualLayout(shape=(8,), dtype="<f4")
    layout[:] = h5py.VirtualSource(str(folder / "source.h5"), "data", shape=(8,))
    del f["000_convolutional/biases"]
    f["000_convolutional"].create_virtual_dataset("biases", layout)


def compound_dtype(f: h5py.File, folder: Path) -> None:
    del f["000_convolutional/biases"]
    f["000_convolutional/biases"] = np.zeros(8, dtype=[("a", "<f4"), ("b", "<i4")])


def string_dtype(f: h5py.File, folder: Path) -> None:
    del f["000_convolutional/biases"]
    f["000_convolutional"].create_dataset("biases", data=["x"] * 8, dtype=h5py.string_dtype())


def group_for_dataset(f: h5py.File, folder: Path) -> None:
    del f["000_convolutional/biases"]
    f["000_convolutional"].create_group("biases")


def empty_dataset(f: h5py.File, folder: Path) -> None:
    del f["000_convolutional/biases"]
    f["000_convolutional"].create_dataset("biases", data=h5py.Empty("<f4"))


def file_text_not_text(f: h5py.File, folder: Path) -> None:
    f["files"]["0"] = np.zeros(3, dtype=[("a", "<f4")])
    f["files/0"].attrs["path"] = "data/x.tree"


def file_text_soft_link(f: h5py.File, folder: Path) -> None:
    f["files/0"] = h5py.SoftLink("/000_convolutional/biases")


def seen_not_whole(f: h5py.File, folder: Path) -> None:
    f.attrs["seen"] = 1.5


def width_beyond_int(f: h5py.File, folder: Path) -> None:
    f.attrs["width"] = np.int64(2**40)


H5_VARIANTS = {
    external_storage: "external",
    external_link: "external link",
    soft_link_dataset: "soft link",
    soft_link_group: "soft link",
    dangling_soft_link: "soft link",
    virtual_dataset: "virtual",
    compound_dtype: "000_convolutional/biases",
    string_dtype: "000_convolutional/biases",
    group_for_dataset: "000_convolutional/biases",
    empty_dataset: "000_convolutional/biases",
    file_text_not_text: "files/0",
    file_text_soft_link: "soft link",
    seen_not_whole: "seen",
    width_beyond_int: "width",
}


def test_h5_with_external_storage_is_refused(tmp_path, checkpoints):
    bad = h5_variant(checkpoints["h5"], tmp_path / "bad.h5", external_storage)
    assert_refused(run("convert", "-", bad, tmp_path / "out.weights"), str(bad), "000_convolutional/biases", "external")
    assert not (tmp_path / "out.weights").exists()


@pytest.mark.parametrize("edit", list(H5_VARIANTS), ids=[e.__name__ for e in H5_VARIANTS])
def test_h5_links_storage_and_types_are_one_line(tmp_path, checkpoints, edit):
    bad = h5_variant(checkpoints["h5"], tmp_path / "bad.h5", edit)
    assert_refused(call("convert", "-", bad, tmp_path / "out.weights"), str(bad), H5_VARIANTS[edit])
    assert not (tmp_path / "out.weights").exists()


def test_h5_with_a_flipped_bit_is_refused(tmp_path, checkpoints):
    with h5py.File(checkpoints["h5"], "r") as f:
        offset = f["012_convolutional/weights"].id.get_offset()
    data = bytearray(checkpoints["h5"].read_bytes())
    data[offset + 1000] ^= 0x10
    (tmp_path / "flip.h5").write_bytes(bytes(data))
    assert_refused(call("convert", "-", tmp_path / "flip.h5", tmp_path / "out.weights"), "flip.h5", "checksum")


# 3. damaged .pt files ---------------------------------------------------------------------------------------

def flip_a_tensor_bit(source: Path, target: Path) -> None:
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)  # the largest tensor
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.file_size // 2] ^= 0x10
    target.write_bytes(bytes(data))


def test_pt_with_a_flipped_bit_is_refused(tmp_path, checkpoints):
    flip_a_tensor_bit(checkpoints["pt"], tmp_path / "flip.pt")
    assert_refused(run("convert", "-", tmp_path / "flip.pt", tmp_path / "out.weights"), "flip.pt", "checksum mismatch")
    assert not (tmp_path / "out.weights").exists()


def test_pt_round_trip_keeps_reading_version_1_without_checksum(tmp_path, checkpoints):
    checkpoint = torch.load(checkpoints["pt"], weights_only=True)
    checkpoint = {k: v for k, v in checkpoint.items() if k != "sha256"} | {"version": 1}
    torch.save(checkpoint, tmp_path / "v1.pt")
    assert call("convert", "-", tmp_path / "v1.pt", tmp_path / "out.weights").returncode == 0
    assert sha256(tmp_path / "out.weights") == sha256(WEIGHTS)


def edit_pt(source: Path, target: Path, **changes: object) -> Path:
    """A version-1 (no checksum) copy of the checkpoint with fields replaced (`header_seen=`, `state_layers.0.bn.bias=`)."""
    checkpoint = torch.load(source, weights_only=True)
    checkpoint = {k: v for k, v in checkpoint.items() if k != "sha256"} | {"version": 1}
    checkpoint["header"], checkpoint["state_dict"] = dict(checkpoint["header"]), dict(checkpoint["state_dict"])
    for key, value in changes.items():
        part, _, field = key.partition("_")
        if part == "header":
            checkpoint["header"][field] = value
        elif part == "state":
            checkpoint["state_dict"][field] = value
        else:
            checkpoint[key] = value
    torch.save(checkpoint, target)
    return target


BIAS = "layers.0.bn.bias"
PT_VARIANTS = {
    "seen_beyond_64_bits": ({"header_seen": 2**70}, "header"),
    "seen_beyond_32_bits_of_version_0.1": ({"header_seen": 2**40, "header_minor": 1}, "header"),
    "major_beyond_int": ({"header_major": 2**40}, "header"),
    "width_beyond_int": ({"width": 2**63}, "width"),
    "width_a_bool": ({"width": True}, "width"),
    "major_a_bool": ({"header_major": False}, "header"),
    "version_a_bool": ({"version": True}, "version"),
    "cfg_nested": ({"cfg": ["[net]"]}, "cfg"),
    "cfg_lone_surrogate": ({"cfg": "[net]\ud800\n"}, "'cfg'"),
    "cfg_name_dot_dot": ({"cfg_name": ".."}, "cfg_name"),
    "files_clash": ({"files": {"x": "a", "x/y": "b"}}, "'x/y'"),
    "files_nested": ({"files": {"a": {"b": "c"}}}, "files"),
    "sparse_tensor": ({f"state_{BIAS}": torch.zeros(8).to_sparse()}, BIAS),
    "int_tensor": ({f"state_{BIAS}": torch.zeros(8, dtype=torch.int64)}, BIAS),
    "complex_tensor": ({f"state_{BIAS}": torch.zeros(8, dtype=torch.complex64)}, BIAS),
    "stride_0_tensor": ({f"state_{BIAS}": torch.zeros(1).expand(8)}, BIAS),
}


@pytest.mark.parametrize("case", list(PT_VARIANTS))
def test_damaged_pt_is_one_line(tmp_path, checkpoints, case):
    changes, needle = PT_VARIANTS[case]
    bad = edit_pt(checkpoints["pt"], tmp_path / "bad.pt", **changes)
    assert_refused(call("convert", "-", bad, tmp_path / "out.weights"), str(bad), needle)
    assert not (tmp_path / "out.weights").exists()


def test_pt_and_h5_round_trip_to_identical_weights(tmp_path, checkpoints):
    for ext, path in checkpoints.items():
        assert call("convert", "-", path, tmp_path / f"{ext}.weights").returncode == 0
        assert sha256(tmp_path / f"{ext}.weights") == sha256(WEIGHTS)
    checkpoint = torch.load(checkpoints["pt"], weights_only=True)
    assert checkpoint["version"] == 2 and len(checkpoint["sha256"]) == 64


# 4. cfgs, and files that are not regular files ---------------------------------------------------------------

def demo_cfg(tmp_path: Path, **options: str) -> Path:
    text = CFG.read_text()
    for key, value in options.items():
        text = text.replace(f"\n{key}=544\n", f"\n{key}={value}\n")
    (tmp_path / "demo.cfg").write_text(text)
    return tmp_path / "demo.cfg"


def test_a_2147483647_wide_net_is_one_line(tmp_path):
    cfg = demo_cfg(tmp_path, width="2147483647", height="2147483647")
    assert_refused(run("detect", cfg, WEIGHTS, IMAGE, "--out", tmp_path / "out"), "demo.cfg", "[net]")


def test_layers_beyond_a_c_int_of_values_are_one_line(tmp_path):
    cfg = demo_cfg(tmp_path, width="16384", height="16384")  # input fits; the first layer's 8 x 16384^2 does not
    assert_refused(call("summary", cfg), "demo.cfg:", "[convolutional]")


def test_anchors_write_into_a_region_without_options(tmp_path):
    (tmp_path / "images").mkdir()
    shutil.copyfile(IMAGE, tmp_path / "images" / "a.jpg")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.3\n1 0.4 0.4 0.1 0.1\n")
    (tmp_path / "train.txt").write_text(f"{tmp_path / 'images' / 'a.jpg'}\n")
    (tmp_path / "d.data").write_text("classes=20\ntrain=train.txt\n")
    cfg = tmp_path / "r.cfg"
    cfg.write_text("[net]\nwidth=64\nheight=64\nchannels=3\n[convolutional]\nfilters=25\nsize=1\n[region]")
    done = call("anchors", tmp_path / "d.data", "--num", "1", "--write", cfg)
    assert done.returncode == 0, done.stderr
    assert cfg.read_text().endswith("[region]\nanchors=10,13\nnum=1\n")  # the last line had no newline
    assert call("summary", cfg).returncode == 0


def region_cfg(tmp_path: Path, **options: str) -> Path:
    lines = "".join(f"{k}={v}\n" for k, v in options.items())
    path = tmp_path / "r.cfg"
    path.write_text(f"[net]\nwidth=64\nheight=64\nchannels=3\n[convolutional]\nfilters=25\nsize=1\n[region]\n{lines}")
    return path


def binary_file(tmp_path: Path) -> Path:
    path = tmp_path / "binary"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    return path


def test_map_naming_a_binary_file_is_one_line(tmp_path):
    cfg = region_cfg(tmp_path, map=binary_file(tmp_path))
    assert_refused(run("summary", cfg), "r.cfg:9", "map=", "binary", "not a text file")


def test_tree_naming_a_binary_file_is_one_line(tmp_path):
    cfg = region_cfg(tmp_path, tree=binary_file(tmp_path))
    assert_refused(call("summary", cfg), "r.cfg:9", "tree=", "binary", "not a text file")


def test_map_with_a_class_index_beyond_classes_is_one_line(tmp_path):
    (tmp_path / "m.map").write_text("0\n19\n20\n")
    assert_refused(call("summary", region_cfg(tmp_path, map="m.map")), "r.cfg:9", "map=m.map", "m.map:3", "classes=20")


def test_map_naming_a_fifo_is_one_line(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with deadline(20):
        assert_refused(call("summary", region_cfg(tmp_path, map=tmp_path / "fifo")), "map=", "not a regular file")


def test_a_fifo_as_cfg_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "fifo.cfg")
    assert_refused(run("summary", tmp_path / "fifo.cfg", timeout=60), "fifo.cfg", "not a regular file")


def anchors_set(tmp_path: Path, fifo: str | None = None) -> dict[str, Path]:
    """A one-image data set for `anchors`: its 'data', 'list' and 'label' files, the one named by `fifo` a FIFO."""
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    shutil.copyfile(IMAGE, tmp_path / "images" / "a.jpg")
    files = {"data": tmp_path / "d.data", "list": tmp_path / "train.txt", "label": tmp_path / "labels" / "a.txt"}
    texts = {"data": f"classes=6\ntrain={files['list']}\n", "list": f"{tmp_path / 'images' / 'a.jpg'}\n", "label": "0 .5 .5 .2 .2\n"}
    for kind, path in files.items():
        os.mkfifo(path) if kind == fifo else path.write_text(texts[kind])
    return files


@pytest.mark.parametrize("special", ["data", "list", "label"])
def test_a_fifo_as_data_list_or_label_file_is_refused_at_once(tmp_path, special):
    files = anchors_set(tmp_path, special)
    with deadline(20):
        assert_refused(call("anchors", files["data"], "--num", "1"), files[special].name, "not a regular file")


@pytest.mark.parametrize("special", ["fifo", "folder"])
def test_a_names_file_that_is_not_a_regular_file_is_refused_at_once(tmp_path, special):
    names = tmp_path / "names" if special == "fifo" else tmp_path
    if special == "fifo":
        os.mkfifo(names)
    with deadline(20):
        done = call("detect", CFG, WEIGHTS, IMAGE, "--names", names, "--out", tmp_path / "out")
    assert_refused(done, str(names), "not a regular file")


def test_dev_zero_as_names_file_is_refused_at_once(tmp_path):
    """Read whole, /dev/zero never ends: in a subprocess with 6 GB of address space, not this one."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    done = subprocess.run([*pydarknet_command(), "detect", CFG, WEIGHTS, IMAGE, "--names", "/dev/zero", "--out", tmp_path / "out"],
                          env=cli_env(), capture_output=True, text=True, timeout=120, preexec_fn=limit, check=False)
    assert_refused(done, "/dev/zero", "not a regular file")


def test_a_names_file_with_a_nul_byte_is_one_line(tmp_path):
    (tmp_path / "names").write_bytes(b"circle\nsq\x00uare\n" + b"x\n" * 4)
    assert_refused(call("detect", CFG, WEIGHTS, IMAGE, "--names", tmp_path / "names", "--out", tmp_path / "out"),
                   "names:2", "NUL")


# 5. label coordinates outside [0, 1] ---------------------------------------------------------------------------
# Evaluation and anchors refuse them (a box written in pixels would be scored or clustered as it is); training
# takes them as Darknet does: its correct_boxes clips every box to the image (data.c), and the C goldens
# (tests/golden/labels/) hold such lines.  What is not a finite number is refused everywhere.

@pytest.mark.parametrize("line", ["0 1e30 .5 .2 .2", "0 .5 -0.5 .2 .2", "0 .5 .5 3.5 .2", "0 .5 .5 .2 -1e-3"])
def test_read_labels_refuses_coordinates_outside_the_image(tmp_path, line):
    (tmp_path / "a.txt").write_text(f"0 .5 .5 .1 .1\n{line}\n")
    with pytest.raises(DarknetError, match=r"a\.txt:2: .*outside \[0, 1\]"):
        read_labels(tmp_path / "a.txt")


@pytest.mark.parametrize("line, box", [("0 1e30 .5 .2 .2", None), ("0 .5 -0.5 .2 .2", None), ("0 .5 .5 3.5 .2", [.5, .5, 1, .2]),
                                       ("0 .5 .5 .2 -1e-3", None), ("0 .5 .5 1.4 1.0000001", [.5, .5, 1, 1])])
def test_training_clips_coordinates_outside_the_image_as_darknet_does(tmp_path, line, box):
    """Darknet's numbers: correct_boxes clips the edges to [0, 1]; a box left under .001 wide or high is dropped."""
    (tmp_path / "a.txt").write_text(f"{line}\n")
    truth = truth_from_labels(read_training_labels(tmp_path / "a.txt", 1), 30, 0, 0, 1, 1, False)
    assert truth[0, :4].tolist() == pytest.approx(box or [0, 0, 0, 0]) and not truth[1:].any()


@pytest.mark.parametrize("line, words", [("0 .5 nan .2 .2", "y 'nan' is not a number"), ("0 .5 .5 inf .2", "w 'inf' is not a number"),
                                         ("0 .5 .5 .2 1e39", "h 1e39 is too large for a float")])
def test_training_refuses_what_is_not_a_finite_number(tmp_path, line, words):
    (tmp_path / "a.txt").write_text(f"0 .5 .5 .1 .1\n{line}\n")
    with pytest.raises(DarknetError, match=rf"a\.txt:2: {words}"):
        read_training_labels(tmp_path / "a.txt")


def test_read_labels_keeps_edges_zero_sizes_and_class_only_lines(tmp_path):
    (tmp_path / "a.txt").write_text("5 0 0 0 0\n1 1 1 1 1\n2 0.5 0.5 0 0.25\n")
    assert read_labels(tmp_path / "a.txt").tolist() == [[5, 0, 0, 0, 0], [1, 1, 1, 1, 1], [2, 0.5, 0.5, 0, 0.25]]


def test_anchors_refuses_a_giant_box(tmp_path):
    files = anchors_set(tmp_path)
    files["label"].write_text("0 .5 .5 .2 .2\n0 .5 .5 1e30 1e30\n")
    assert_refused(run("anchors", files["data"], "--num", "1"), "train.txt:1", "a.txt:2", "outside [0, 1]")


def test_map_refuses_truth_outside_the_image(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir(), labels.mkdir()
    shutil.copyfile(IMAGE, images / "a.jpg")
    (labels / "a.txt").write_text("0 .5 .5 .2 3.5\n")
    (tmp_path / "names").write_text("\n".join(NAMES) + "\n")
    (tmp_path / "valid.txt").write_text(f"{images / 'a.jpg'}\n")
    (tmp_path / "v.data").write_text("classes=6\nvalid=valid.txt\nnames=names\n")
    assert_refused(call("map", tmp_path / "v.data", CFG, WEIGHTS, cwd=tmp_path), "a.txt:1", "outside [0, 1]")


def test_training_skips_an_image_with_labels_that_are_not_numbers(tmp_path):
    """A label outside the image trains as Darknet's would (clipped: `0 .5 .5 .2 -0.5` is dropped, so background);
    one that is not a number is skipped, named by file and line."""
    for name, label in (("good", "0 .5 .5 .2 .2\n"), ("outside", "0 .5 .5 .2 -0.5\n"), ("bad", "0 .5 .5 .2 nan\n")):
        (tmp_path / "images").mkdir(exist_ok=True), (tmp_path / "labels").mkdir(exist_ok=True)
        shutil.copyfile(IMAGE, tmp_path / "images" / f"{name}.jpg")
        (tmp_path / "labels" / f"{name}.txt").write_text(label)
    paths = [tmp_path / "images" / f"{name}.jpg" for name in ("good", "outside", "bad")]
    aug = Augmentation(jitter=0.2, hue=0.1, saturation=1.5, exposure=1.5, max_boxes=30, classes=6)
    batch = SampleBatches(paths, 8, aug, seed=3, rank=0)[(0, 64, 64)]
    assert batch.error is None and batch.images.shape == (8, 3, 64, 64)
    assert not batch.truth[:, 0, 2].all()  # an `outside` image, with no box left
    assert batch.skipped and all("bad.txt:1: h 'nan' is not a number" in s for s in batch.skipped)


# 6. paths with spaces in a .data file -------------------------------------------------------------------------

def test_data_file_paths_keep_their_spaces(tmp_path):
    (tmp_path / "my names").write_text("\n".join(NAMES) + "\n")
    (tmp_path / "my list.txt").write_text(f"{IMAGE}\n")
    (tmp_path / "d.data").write_text("classes = 6\nnames = my names\ntrain = my list.txt\nbackup = my  backups\n")
    data = DataFile.read(tmp_path / "d.data", need=("train",))
    assert data.names == NAMES and data.train == tmp_path / "my list.txt"
    assert data.backup == Path("my  backups")


def test_valid_writes_into_a_results_folder_with_a_space(tmp_path):
    data = valid_workspace(tmp_path, NAMES)
    data.write_text("classes=6\nvalid=valid.txt\nnames=names\nresults=my results\n")
    done = run("valid", data, CFG, WEIGHTS, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "my results").iterdir()) == sorted(f"comp4_det_test_{n}.txt" for n in NAMES)
    assert not (tmp_path / "myresults").exists()


# 7. detect never replaces an input ------------------------------------------------------------------------------

def test_detect_out_into_the_input_folder_is_refused(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    shutil.copyfile(IMAGE, images / "a.jpg")
    shutil.copyfile(IMAGE, images / "b.png")
    before = {p.name: sha256(p) for p in images.iterdir()}
    line = assert_refused(run("detect", CFG, WEIGHTS, images, "--out", images), "a.jpg", "input")
    assert "--out" in line
    assert {p.name: sha256(p) for p in images.iterdir()} == before


def test_detect_single_input_named_predictions_jpg_is_refused(tmp_path):
    shutil.copyfile(IMAGE, tmp_path / "predictions.jpg")
    before = sha256(tmp_path / "predictions.jpg")
    assert_refused(call("detect", CFG, WEIGHTS, "predictions.jpg", cwd=tmp_path), "predictions.jpg", "input")
    assert sha256(tmp_path / "predictions.jpg") == before


def test_detect_out_holding_an_input_of_another_extension_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    shutil.copyfile(IMAGE, tmp_path / "out" / "a.jpg")
    shutil.copyfile(IMAGE, tmp_path / "a.png")
    before = sha256(tmp_path / "out" / "a.jpg")
    assert_refused(call("detect", CFG, WEIGHTS, tmp_path / "a.png", tmp_path / "out" / "a.jpg", "--out", tmp_path / "out"),
                   "a.jpg", "input")
    assert sha256(tmp_path / "out" / "a.jpg") == before


def test_detect_out_through_a_hard_link_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    shutil.copyfile(IMAGE, tmp_path / "a.jpg")
    os.link(tmp_path / "a.jpg", tmp_path / "out" / "a.jpg")
    before = sha256(tmp_path / "a.jpg")
    assert_refused(call("detect", CFG, WEIGHTS, tmp_path / "a.jpg", "--out", tmp_path / "out"), "a.jpg", "input")
    assert sha256(tmp_path / "a.jpg") == before
