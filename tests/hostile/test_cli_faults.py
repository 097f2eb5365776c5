"""Issue #17: faults inside a command that reach the CLI's last line of defence are still one line."""

from __future__ import annotations

import os

import pytest

from hostile.checks import CFG, IMAGE, assert_refused, run
from pydarknet.cli import main
from pydarknet.commands import summary


@pytest.mark.parametrize("error", [MemoryError(), MemoryError("cannot allocate 9 GiB"),
                                   RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes")])
def test_out_of_memory_with_or_without_a_message_is_one_line(monkeypatch, capsys, error) -> None:
    def fail(args):  # type: ignore[no-untyped-def]
        raise error

    monkeypatch.setattr(summary, "run", fail)
    assert main(["summary", "cfg/yolov2-tiny-shapes.cfg"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pydarknet: out of memory (") and "Traceback" not in err, err


@pytest.mark.parametrize("size", [0, 12, 16, 19])
def test_a_weights_file_shorter_than_its_header_is_one_line(tmp_path, size) -> None:
    weights = tmp_path / "short.weights"
    weights.write_bytes((b"\0\0\0\0\x02\0\0\0" + bytes(12))[:size])  # version 0.2: a 20-byte header
    assert_refused(run("detect", CFG, weights, IMAGE), str(weights), "too short")


def test_a_fifo_as_weights_is_refused_at_once(tmp_path) -> None:
    fifo = tmp_path / "w.weights"
    os.mkfifo(fifo)
    assert_refused(run("detect", CFG, fifo, IMAGE, timeout=60), str(fifo), "not a regular file (a FIFO)")
