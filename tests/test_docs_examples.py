"""Every fenced python block of docs/python-api.md runs, in order, in one namespace, from the checkout's root."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "python-api.md"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every ```python block."""
    return [(text[: m.start()].count("\n") + 2, m.group(1)) for m in re.finditer(r"^```python\n(.*?)^```$", text, re.M | re.S)]


def test_the_doc_has_examples() -> None:
    assert len(python_blocks(DOC.read_text())) >= 8


def test_python_api_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the doc's OUT = Path(tempfile.mkdtemp())
    namespace: dict = {"__name__": "__docs__"}
    for line, code in python_blocks(DOC.read_text()):
        try:
            exec(compile(code, f"{DOC}:{line}", "exec"), namespace)  # noqa: S102 - the doc's own examples
        except Exception as err:
            raise AssertionError(f"docs/python-api.md: the block at line {line} fails: {type(err).__name__}: {err}") from err
    out = capsys.readouterr().out
    assert "ring: 97%" in out  # the demo image's detections, as README shows them
    assert str(tmp_path) in str(namespace["OUT"])
