"""`pydarknet convert` and `pydarknet partial`: round trips on disk, --force, existing
outputs, bad inputs as one line.  A few calls go through the real console script
(`run_cli`); the rest call the same `main` in-process, as a subprocess costs seconds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import cfg_path, run_cli
from pydarknet.cli import main

SLIM = str(cfg_path("yolov2-tiny-slim.cfg"))


def assert_one_line_error(out, *words: str) -> None:
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.startswith("pydarknet: ") and out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr
    for word in words:
        assert word in out.stderr, out.stderr


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(capsys):
    """`main(args)` in-process, as a CompletedProcess-like result."""

    def call(*args) -> Result:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return call


def test_round_trip_files_byte_identical(tmp_path, random_weights, cli):
    src = random_weights("yolov2-tiny-slim.cfg")
    pt, h5, back_pt, back_h5 = (tmp_path / n for n in ("m.pt", "m.h5", "pt.weights", "h5.weights"))
    for run, args in ((run_cli, (SLIM, src, pt)), (cli, ("-", pt, h5)), (cli, (SLIM, h5, back_h5)), (cli, ("-", pt, back_pt))):
        out = run("convert", *args)
        assert out.returncode == 0, out.stderr
    assert back_pt.read_bytes() == src.read_bytes()
    assert back_h5.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h5.weights", "m.h5", "m.pt", "pt.weights"]  # no temp files


def test_existing_output_needs_force(tmp_path, random_weights, cli):
    dst = tmp_path / "m.pt"
    dst.write_bytes(b"keep me")
    out = run_cli("convert", SLIM, random_weights("yolov2-tiny-slim.cfg"), dst)
    assert_one_line_error(out, str(dst), "already exists", "--force")
    assert dst.read_bytes() == b"keep me"
    out = cli("convert", SLIM, random_weights("yolov2-tiny-slim.cfg"), dst, "--force")
    assert out.returncode == 0, out.stderr
    assert torch.load(dst, weights_only=True)["format"] == "pydarknet"
    part = tmp_path / "tiny.conv.5"
    part.write_bytes(b"keep me")
    assert_one_line_error(cli("partial", SLIM, random_weights("yolov2-tiny-slim.cfg"), part, "5"), "already exists")
    assert cli("partial", SLIM, random_weights("yolov2-tiny-slim.cfg"), part, "5", "--force").returncode == 0
    assert part.stat().st_size < random_weights("yolov2-tiny-slim.cfg").stat().st_size


def test_bad_inputs_are_one_line(tmp_path, random_weights, cli):
    weights = random_weights("yolov2-tiny-slim.cfg")
    junk = tmp_path / "junk.weights"
    junk.write_bytes(b"<html>this is not a weights file</html>")
    foreign = tmp_path / "other.pt"
    torch.save({"model": {"conv1.weight": torch.zeros(3)}}, foreign)
    not_torch = tmp_path / "fake.pt"
    not_torch.write_bytes(weights.read_bytes()[:1000])
    not_h5 = tmp_path / "fake.h5"
    not_h5.write_bytes(b"not hdf5")
    mine = tmp_path / "mine.pt"
    assert cli("convert", SLIM, weights, mine).returncode == 0
    assert_one_line_error(run_cli("convert", SLIM, junk, tmp_path / "o.pt"), str(junk))
    cases = [
        (("convert", cfg_path("yolov2-slim.cfg"), weights, tmp_path / "o.pt"), ["too short", "right cfg"]),
        (("convert", SLIM, foreign, tmp_path / "o.weights"), [str(foreign), "not a pydarknet checkpoint"]),
        (("convert", "-", not_torch, tmp_path / "o.weights"), [str(not_torch), "not a PyTorch checkpoint"]),
        (("convert", "-", not_h5, tmp_path / "o.weights"), [str(not_h5), "not an HDF5 file"]),
        (("convert", cfg_path("yolov2-slim.cfg"), mine, tmp_path / "o.weights"), ["does not match"]),
        (("convert", "-", weights, tmp_path / "o.pt"), ["has no cfg"]),
        (("convert", SLIM, weights, tmp_path / "o.txt"), ["unknown output format"]),
        (("convert", SLIM, weights, tmp_path / "o.pt", "--fuse"), ["--fuse is for ONNX"]),
        (("convert", SLIM, tmp_path / "missing.weights", tmp_path / "o.pt"), ["no such file"]),
        (("convert", SLIM, weights, tmp_path / "no" / "dir" / "o.pt"), ["cannot write"]),
        (("partial", SLIM, junk, tmp_path / "o.conv", "3"), [str(junk)]),
    ]
    for args, words in cases:
        assert_one_line_error(cli(*args), *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.h5", "fake.pt", "junk.weights", "mine.pt", "other.pt"]


def test_partial_cli(tmp_path, random_weights):
    part = tmp_path / "tiny.conv.5"
    out = run_cli("partial", SLIM, random_weights("yolov2-tiny-slim.cfg"), part, "5")
    assert out.returncode == 0, out.stderr
    header = np.fromfile(part, dtype="<i4", count=5)
    assert header.tolist() == [0, 2, 0, 0, 0]


def test_summary_reads_a_converted_checkpoint(tmp_path, random_weights, cli):
    pt = tmp_path / "m.pt"
    assert cli("convert", SLIM, random_weights("yolov2-tiny-slim.cfg"), pt).returncode == 0
    out = cli("summary", SLIM, pt)
    assert out.returncode == 0, out.stderr
    assert "version 0.2.0, seen 0" in out.stdout and "Total BFLOPs" in out.stdout
