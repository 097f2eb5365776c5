"""`pydarknet --version` and `pydarknet --help` start fast: they import neither PyTorch nor OpenCV nor numpy
(each verb's module, and what it needs, is imported only when that verb runs; pydarknet/commands/__init__.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

HEAVY = ("torch", "cv2", "numpy", "matplotlib", "pycocotools", "onnx", "h5py", "lark")

# `python -m pydarknet ARGS`, then the names of every module loaded (sys.modules: importlib's imports too)
RUN_AND_LIST = ("import json, runpy, sys\nsys.argv[0] = 'pydarknet'\ntry:\n    runpy.run_module('pydarknet', run_name='__main__')\n"
                "except SystemExit as stop:\n    assert stop.code == 0, stop.code\nprint(json.dumps(sorted(sys.modules)))")


def loaded_modules(*args: str) -> set[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", RUN_AND_LIST, *args], env=env, capture_output=True, text=True, timeout=60,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    return set(json.loads(out.stdout.splitlines()[-1]))


@pytest.mark.parametrize("option", ["--version", "--help"])
def test_start_up_loads_no_heavy_module(option: str) -> None:
    modules = loaded_modules(option)
    assert "pydarknet.cli" in modules
    assert not {m for m in modules if m.split(".")[0] in HEAVY}


def test_a_verb_loads_its_own_module_only() -> None:
    commands = {m for m in loaded_modules("summary", "--help") if m.startswith("pydarknet.commands.")}
    assert commands == {"pydarknet.commands.summary", "pydarknet.commands.arguments"}
