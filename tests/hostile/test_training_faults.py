"""Issue #17, training: no code runs from a resume file, and no good checkpoint is ever lost.

Each test builds its attack or fault itself (crafted pickles, a diverging
cfg, real signals, a held lock, kills during saves) and checks through the
console script: exit status, one line naming the file, no traceback, the
exploit's marker absent, the previous backup unchanged (by hash).
"""

from __future__ import annotations

import io
import os
import pickle
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from hostile.checks import ROOT, assert_refused, cli_env, pydarknet_command, run, sha256, wait_for_log_rows
from pydarknet import Darknet
from pydarknet.errors import StopRequested, WeightsError
from pydarknet.train.backup_lock import hold_backup_folder
from pydarknet.train.checkpoints import load_state
from pydarknet.train.trainer import TrainRun, train_detector
from pydarknet.weights import read_weights_file, weights_bytes, with_appendix
from training_data import interrupt_after, make_cfg, make_dataset


class Exploit:
    """Unpickling this runs `touch MARKER`: what a crafted resume file would do to a trusting torch.load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def trained(tmp_path):
    """(data, cfg, backup): a run of 5 iterations stopped by SIGTERM at iteration 3, its backup resumable."""
    data, cfg = make_dataset(tmp_path / "ds"), make_cfg(tmp_path, max_batches=100)
    with pytest.MonkeyPatch.context() as m:
        interrupt_after(m, 3, signal.SIGTERM)
        with pytest.raises(StopRequested) as stopped:  # 5 of 100: its schedule scaled as the resumed run's
            train_detector(TrainRun(data=data, cfg=cfg, workers=0, quiet=True, max_batches=5))
    assert stopped.value.signum == signal.SIGTERM and "stopped by SIGTERM" in str(stopped.value)
    return data, cfg, tmp_path / "ds" / "backup" / "t.backup"


def train_cli(data: Path, cfg: Path, *args: object) -> subprocess.CompletedProcess:
    return run("train", data, cfg, *args, "--workers", "0", "--quiet")


# 1. Code execution from a resume file -------------------------------------------------------------


def test_a_crafted_resume_state_runs_no_code(trained, tmp_path) -> None:
    data, cfg, backup = trained
    marker = tmp_path / "pwned"
    weights = weights_bytes(_loaded(cfg, backup))
    raw = tmp_path / "raw.backup"  # the state as a bare pickle, behind a valid checksum
    raw.write_bytes(with_appendix(weights, pickle.dumps(Exploit(marker))))
    zipped = tmp_path / "zip.backup"  # the state as a torch.save zip whose data.pkl calls os.system
    buffer = io.BytesIO()
    torch.save({"seen": 6, "optimizer": Exploit(marker)}, buffer)
    zipped.write_bytes(with_appendix(weights, buffer.getvalue()))
    legacy = tmp_path / "legacy.backup"  # an older pydarknet's NAME.backup.state beside a plain backup
    legacy.write_bytes(weights)
    (tmp_path / "legacy.backup.state").write_bytes(pickle.dumps(Exploit(marker)))
    for attack, named in ((raw, raw), (zipped, zipped), (legacy, tmp_path / "legacy.backup.state")):
        assert_refused(train_cli(data, cfg, attack), str(named), "damaged resume state")
        assert not marker.exists()


def test_a_crafted_pt_checkpoint_runs_no_code(tmp_path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "pydarknet", "version": 1, "state_dict": Exploit(marker)}, evil)
    assert_refused(run("convert", "-", evil, tmp_path / "out.weights"), str(evil))
    assert not marker.exists() and not (tmp_path / "out.weights").exists()


def test_no_module_loads_pickles_unsafely() -> None:
    """The audit, kept: every torch.load in the package is weights_only=True; no pickle, eval, exec or allow_pickle."""
    unsafe = re.compile(r"weights_only\s*=\s*False|\bpickle\.loads?\(|allow_pickle\s*=\s*True|(?<![.\w])(eval|exec)\(|yaml\.load\(")
    for path in (ROOT / "pydarknet").rglob("*.py"):
        text = path.read_text()
        assert not unsafe.search(text), path
        for line in re.findall(r"torch\.load\(.*", text):
            assert "weights_only=True" in line, (path, line)


# 4. A diverged run saves nothing ------------------------------------------------------------------


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_backup(trained, tmp_path) -> None:
    data, cfg, backup = trained
    before = sha256(backup)
    wild = tmp_path / "t.cfg"
    wild.write_text(cfg.read_text().replace("learning_rate=0.01", "learning_rate=1e30"))
    result = train_cli(data, wild, backup, "--max-batches", "100")
    line = assert_refused(result, "training diverged", str(backup), "iteration 3")
    assert re.search(r"iteration \d+: the (loss is (nan|inf)|weights hold NaN)", line), line
    assert sha256(backup) == before
    assert not (backup.parent / "t_final.weights").exists()


# 5. The weights and their resume state are one file, whole or not at all -----------------------------

SAVER = """
import warnings
from pathlib import Path
from pydarknet import Darknet
from pydarknet.train.checkpoints import save_checkpoint
from pydarknet.train.state import TrainingState
warnings.simplefilter("ignore")
net = Darknet({cfg!r})
state = TrainingState(net)
while True:
    net.seen += 1
    for slot in state.sgd.slots.values():
        slot.updates.fill_(net.seen)
    save_checkpoint(net, Path({target!r}), {{"seen": net.seen, "avg_loss": 1.0, "seed": 0, **state.resume_entries()}})
    if net.seen == 1:
        print("ready", flush=True)
"""


def test_a_kill_during_a_backup_leaves_a_whole_pair_and_the_next_run_cleans_up(tmp_path) -> None:
    cfg = str(ROOT / "cfg" / "yolov2-tiny-slim.cfg")
    target = tmp_path / "backup" / "t.backup"
    code = SAVER.format(cfg=cfg, target=str(target))
    for delay in (0.4, 0.65, 0.9, 1.15):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.kill()
        proc.wait()
        seen = read_weights_file(target)[0].seen
        state = load_state(target, seen)  # the weights and the state of one save, whatever moment the kill hit
        assert state is not None and state["seen"] == seen
        assert all(bool((t == seen).all()) for t in state["optimizer"].values())
    (target.parent / ".t.backup.abcd1234.tmp").write_bytes(b"half a save")  # as a SIGKILL mid-write leaves
    (target.parent / ".other.backup.abcd1234.tmp").write_bytes(b"another cfg's save in progress")
    with hold_backup_folder(target.parent, "t"):
        assert not (target.parent / ".t.backup.abcd1234.tmp").exists()
        assert (target.parent / ".other.backup.abcd1234.tmp").exists()


def test_a_damaged_backup_is_refused_naming_the_damage(trained, tmp_path) -> None:
    data, cfg, backup = trained
    good = backup.read_bytes()
    flipped = tmp_path / "flipped.backup"
    flipped.write_bytes(good[:100] + bytes([good[100] ^ 1]) + good[101:])
    truncated = tmp_path / "truncated.backup"
    truncated.write_bytes(good[: len(good) - 100])
    for damaged, words in ((flipped, "checksum"), (truncated, "cut short")):
        assert_refused(train_cli(data, cfg, damaged), str(damaged), words)
        assert_refused(run("detect", cfg, damaged, ROOT / "data" / "shapes-demo.jpg"), str(damaged), words)


def test_an_older_state_file_is_read_safely_or_named_when_it_is_not_the_backups(trained, tmp_path) -> None:
    data, cfg, backup = trained
    net = _loaded(cfg, backup)
    plain = tmp_path / "t.backup"
    plain.write_bytes(weights_bytes(net))  # no appended state: an older pydarknet wrote it beside
    state = load_state(backup, net.seen)
    legacy = tmp_path / "t.backup.state"
    torch.save({**state, "seen": net.seen - 2}, legacy)  # a kill between the two renames of an older pydarknet
    with pytest.warns(UserWarning, match=r"t\.backup\.state: ignored, it belongs to another save \(seen=4"):
        assert load_state(plain, net.seen) is None
    torch.save(state, legacy)
    assert load_state(plain, net.seen)["avg_loss"] == state["avg_loss"]
    for junk in (b"", legacy.read_bytes()[:-50], pickle.dumps([1, 2, 3])):
        legacy.write_bytes(junk)
        with pytest.raises(WeightsError, match=r"t\.backup\.state: damaged resume state"):
            load_state(plain, net.seen)
    torch.save({**state, "optimizer": {"layers.0.conv.weight": torch.tensor([float("nan")])}}, legacy)
    with pytest.raises(WeightsError, match=r"'optimizer' is not a table of finite float tensors"):
        load_state(plain, net.seen)


# 6. One run per checkpoint name and folder --------------------------------------------------------


def test_a_second_run_into_the_same_backup_folder_is_refused(tmp_path) -> None:
    data, cfg = make_dataset(tmp_path / "ds"), make_cfg(tmp_path)
    folder = tmp_path / "ds" / "backup"
    with hold_backup_folder(folder, "t"):  # this process is "the other run"
        line = assert_refused(train_cli(data, cfg), str(folder), f"pid {os.getpid()}", "--backup")
    assert "another training" in line
    assert sorted(p.name for p in folder.iterdir()) == [".t.lock"]  # the refused run wrote nothing


# 7. A chart that cannot be written loses nothing --------------------------------------------------


def test_an_unwritable_chart_is_a_warning_after_the_final_save(tmp_path) -> None:
    data, cfg = make_dataset(tmp_path / "ds"), make_cfg(tmp_path, max_batches=2)
    (tmp_path / "file").write_text("a file, not a folder")
    result = train_cli(data, cfg, "--chart", tmp_path / "file" / "chart.png")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "warning:" in result.stderr and "chart.png: cannot write the loss chart" in result.stderr
    assert read_weights_file(tmp_path / "ds" / "backup" / "t_final.weights")[0].seen == 4


def test_a_chart_with_loading_workers_ends_the_run(tmp_path) -> None:
    """The workers leave the trainer's process group but still obey the SIGTERM that shuts them down."""
    data, cfg = make_dataset(tmp_path / "ds"), make_cfg(tmp_path, max_batches=2)
    result = run("train", data, cfg, "--workers", "2", "--quiet", "--chart", tmp_path / "chart.png", timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"


def test_a_run_restarted_right_after_a_sigkill_takes_the_lock(tmp_path) -> None:
    """The lock is the killed trainer's own: its orphaned data-loading workers do not hold it."""
    data, cfg = make_dataset(tmp_path / "ds"), make_cfg(tmp_path, max_batches=100000)
    log = tmp_path / "ds" / "backup" / "t_log.csv"
    proc = subprocess.Popen([*pydarknet_command(), "train", str(data), str(cfg), "--workers", "2", "--quiet"],
                            env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_log_rows(log, 2, proc)
    finally:
        proc.kill()
        proc.wait()
    result = train_cli(data, cfg, "--max-batches", "1")
    assert result.returncode == 0, result.stderr


# 9. SIGTERM, SIGHUP, SIGUSR1: like Ctrl-C --------------------------------------------------------


def test_sigterm_saves_a_backup_that_resumes_the_very_same_run(trained, tmp_path) -> None:
    data, cfg, backup = trained
    straight = train_detector(TrainRun(data=data, cfg=cfg, workers=0, quiet=True, backup=tmp_path / "a", max_batches=5))
    resumed = train_detector(TrainRun(data=data, cfg=cfg, weights=backup, workers=0, quiet=True, max_batches=5))
    assert resumed.read_bytes() == straight.read_bytes()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_a_scheduler_signal_to_the_process_group_saves_and_exits_non_zero(tmp_path, signum) -> None:
    """As `kill -TERM -PGID` or Slurm's warning: the data-loading workers receive it too."""
    data, cfg = make_dataset(tmp_path / "ds"), make_cfg(tmp_path, max_batches=100000)
    log = tmp_path / "ds" / "backup" / "t_log.csv"
    proc = subprocess.Popen([*pydarknet_command(), "train", str(data), str(cfg), "--workers", "2", "--quiet"],
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for_log_rows(log, 3, proc)
        os.killpg(proc.pid, signum)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum and "Traceback" not in err, err
    assert f"stopped by {signal.Signals(signum).name}: saved" in err
    backup = tmp_path / "ds" / "backup" / "t.backup"
    seen = read_weights_file(backup)[0].seen
    assert seen >= 4 and load_state(backup, seen)["seen"] == seen


def _loaded(cfg: Path, weights: Path) -> Darknet:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Darknet(cfg)
    net.load_weights(weights)
    assert np.isfinite(read_weights_file(weights)[1]).all()
    return net
