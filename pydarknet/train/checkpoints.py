"""Darknet's checkpoint schedules and files, written atomically, and the resume state.

pjreddie's examples/detector.c:train_detector saves `backup/NAME.backup` every
100 iterations, `backup/NAME_N.weights` when N % 10000 == 0 or (N < 1000 and
N % 100 == 0), and `backup/NAME_final.weights` at the end (NAME = the cfg's
file name without extension): `scheduled_names`.  AlexeyAB's src/detector.c
saves `NAME_last.weights` every 100 iterations, `NAME_N.weights` every 1000
(10000 when max_batches >= 10000), `NAME_best.weights` with `-map`, and
`NAME_final.weights`: `AlexeyabCheckpoints`, for a cfg in AlexeyAB's dialect,
whose users resume from `NAME_last.weights`.  All are Darknet .weights files
that the C Darknets load.

Darknet's .weights do not hold the momentum buffers or the running average
loss, so a Darknet resume is not the same run.  pydarknet appends its resume
state to each `.backup` (pydarknet.weights.with_appendix, after the floats,
where Darknet does not read): the weights and their state are one file (AlexeyAB's
`NAME_last.weights` carries it in the same way),
written to a temporary name and renamed, checked by a sha256 when read.  A
kill at any moment leaves the previous `.backup` whole, and the pair cannot
come apart.  The state is `torch.save` of plain values and tensors, read
back with `weights_only=True`: a crafted file cannot run code.

Earlier pydarknet versions wrote the state beside the backup as
`NAME.backup.state`; such a file is still read (the same safe way) when it
belongs to the backup's save, and otherwise named and ignored.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import torch

from pydarknet.errors import WeightsError
from pydarknet.weights import read_appendix, weights_bytes, with_appendix, write_atomic

STATE_FORMAT = "pydarknet-resume"
STATE_VERSION = 1


def scheduled_names(base: str, batch: int) -> list[str]:
    """The checkpoint file names Darknet writes after iteration `batch` (1-based count)."""
    names = []
    if batch % 100 == 0:
        names.append(f"{base}.backup")
    if batch % 10000 == 0 or (batch < 1000 and batch % 100 == 0):
        names.append(f"{base}_{batch}.weights")
    return names


class AlexeyabCheckpoints:
    """AlexeyAB's train_detector schedule (src/detector.c), as `LoopPlan.checkpoint_names`.

    After each iteration, in this order:
    `if (iteration >= (iter_save + save_after_iterations) || iteration % save_after_iterations == 0)`
    saves `NAME_<iteration>.weights`, and
    `if ((save_after_iterations > save_last_weights_after) && (iteration >= (iter_save_last +
    save_last_weights_after) || (iteration % save_last_weights_after == 0 && iteration > 1)))`
    saves `NAME_last.weights`; `save_after_iterations` is the .data's `saveweights=`, else 1000 when
    max_batches < 10000, else 10000, `save_last_weights_after` its `savelast=`, else 100, and both
    `iter_save*` start at the run's first iteration.  `NAME_last.weights` is also `resume_name`: it carries
    the resume state, and a stop signal saves it.
    """

    def __init__(self, base: str, start: int, max_batches: int, saveweights: int | None = None,
                 savelast: int | None = None) -> None:
        self.base = base
        self.save_every = saveweights if saveweights is not None else (1000 if max_batches < 10000 else 10000)
        self.last_every = savelast if savelast is not None else 100
        self.iter_save = self.iter_save_last = start
        self.resume_name = f"{base}_last.weights"

    def __call__(self, iteration: int, seen: int) -> list[str]:
        names = []
        if iteration >= self.iter_save + self.save_every or iteration % self.save_every == 0:
            self.iter_save = iteration
            names.append(f"{self.base}_{iteration}.weights")
        if self.save_every > self.last_every and (
                iteration >= self.iter_save_last + self.last_every or (iteration % self.last_every == 0 and iteration > 1)):
            self.iter_save_last = iteration
            names.append(self.resume_name)
        return names


def legacy_state_path(backup: Path) -> Path:
    """Where pydarknet before the appended state kept a backup's state."""
    return backup.with_name(backup.name + ".state")


def save_checkpoint(net, path: Path, state: dict | None = None) -> None:  # type: ignore[no-untyped-def]
    """Write `net` as Darknet weights at `path`, with the resume `state` appended (a .backup)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = weights_bytes(net)
    if state is not None:
        buffer = io.BytesIO()
        torch.save({"format": STATE_FORMAT, "version": STATE_VERSION, **state}, buffer)
        data = with_appendix(data, buffer.getvalue())
    write_atomic(path, data)
    if state is not None:
        legacy_state_path(path).unlink(missing_ok=True)  # an older save's state, no longer this backup's


def load_state(backup: Path, seen: int) -> dict | None:
    """The resume state of a .backup whose header says `seen`, or None (a Darknet .backup, or -clear).

    A state that is damaged, of the wrong shape or of another save than the
    weights is a WeightsError naming the file and the field.
    """
    payload = read_appendix(backup)
    if payload is not None:
        state = _decode(payload, backup)
        if state["seen"] != seen:
            raise WeightsError(f"{backup}: damaged: its resume state is of seen={state['seen']}, its weights of seen={seen}")
        return state
    legacy = legacy_state_path(backup)
    if not legacy.is_file():
        return None
    state = _decode(legacy.read_bytes(), legacy)
    if state["seen"] != seen:
        warnings.warn(f"{legacy}: ignored, it belongs to another save (seen={state['seen']}, {backup.name} has seen={seen}): "
                      f"resuming without the momentum buffers, as Darknet does")
        return None
    return state


def _tensor_table(table: object) -> bool:
    """Whether `table` maps names to finite float tensors (the momentum buffers, the EMA)."""
    return isinstance(table, dict) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) and v.layout == torch.strided and v.is_floating_point()
        and bool(torch.isfinite(v).all()) for k, v in table.items())


def _decode(payload: bytes, source: Path) -> dict:
    """The state dict of `payload`, each field checked; a WeightsError naming the first bad one."""
    try:
        with warnings.catch_warnings():  # torch's remarks on the pickle protocol of a file that is refused anyway
            warnings.simplefilter("ignore")
            state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch.load fails on junk bytes with many exception types
        raise WeightsError(f"{source}: damaged resume state ({type(err).__name__} while reading it)") from None

    def bad(field: str, expected: str) -> WeightsError:
        return WeightsError(f"{source}: damaged resume state: '{field}' is not {expected}")

    if not isinstance(state, dict):
        raise bad("state", "a table")
    if state.get("format", STATE_FORMAT) != STATE_FORMAT or state.get("version", STATE_VERSION) != STATE_VERSION:
        raise bad("format", f"{STATE_FORMAT} version {STATE_VERSION}")
    for key in ("seen", "seed"):
        if type(state.get(key)) is not int or state[key] < 0:
            raise bad(key, "a whole number")
    if type(state.get("avg_loss")) is not float or not math.isfinite(state["avg_loss"]):
        raise bad("avg_loss", "a finite number")
    for key, optional in (("optimizer", False), ("ema", True), ("carried_deltas", True)):
        table = state.get(key)
        if not (optional and table is None or _tensor_table(table)):
            raise bad(key, "a table of finite float tensors")
    scale = state.get("loss_scale")
    if scale is not None and not (isinstance(scale, dict) and all(
            isinstance(k, str) and type(v) in (int, float) and math.isfinite(v) for k, v in scale.items())):
        raise bad("loss_scale", "a table of numbers")
    return state
