"""What every hostile-input test asserts about a refused command, and how it measures memory.

A refused input ends with exit status != 0, one `pydarknet: ...` line on
stderr naming the file or field, and no Python traceback anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CFG = ROOT / "cfg" / "yolov2-tiny-shapes.cfg"
WEIGHTS = ROOT / "weights" / "yolov2-tiny-shapes.weights"
IMAGE = ROOT / "data" / "shapes-demo.jpg"


def pydarknet_command() -> list[str]:
    script = Path(sys.executable).parent / "pydarknet"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pydarknet"]


def cli_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


def run(*args: object, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real `pydarknet` console script in a subprocess."""
    return subprocess.run([*pydarknet_command(), *map(str, args)], cwd=cwd or ROOT, env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)


def wait_for_log_rows(log: Path, rows: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Poll until the trainer's log csv holds `rows` lines (its header counts); fail if `proc` ends first
    or `timeout` seconds pass (a guard against a hung run, not a measure of its speed)."""
    deadline = time.monotonic() + timeout
    while not log.exists() or len(log.read_text().splitlines()) < rows:
        assert proc.poll() is None, f"the run ended (status {proc.returncode}) before {log} had {rows} lines"
        assert time.monotonic() < deadline, f"{log} still short of {rows} lines after {timeout} s"
        time.sleep(0.1)


def assert_refused(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit != 0, no traceback, and a `pydarknet:` line on stderr holding every needle; returns that line."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    lines = [line for line in result.stderr.splitlines() if line.startswith("pydarknet: ") and "warning:" not in line]
    assert lines, output
    assert all(needle in lines[-1] for needle in needles), (needles, output)
    return lines[-1]


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tree_hashes(folder: Path) -> dict[str, str]:
    """Every file under `folder` (relative path -> sha256)."""
    return {str(p.relative_to(folder)): sha256(p) for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def peak_rss(argv: list[str], cwd: Path | None = None, timeout: float = 600) -> tuple[subprocess.CompletedProcess, int]:
    """Run `argv` as the only child of a fresh Python; (its result, its peak RSS in bytes).

    RUSAGE_CHILDREN of a fresh wrapper holds that one child's maximum (Linux: ru_maxrss in KiB).
    """
    wrapper = (
        "import json, resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(json.dumps([r.returncode, r.stdout, r.stderr, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))\n"
    )
    done = subprocess.run([sys.executable, "-c", wrapper, *argv], cwd=cwd or ROOT, env=cli_env(),
                          capture_output=True, text=True, timeout=timeout, check=True)
    code, out, err, kib = json.loads(done.stdout)
    return subprocess.CompletedProcess(argv, code, out, err), kib * 1024
