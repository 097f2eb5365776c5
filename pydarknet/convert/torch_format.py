"""The `.pt` checkpoint: a Darknet network as a PyTorch `state_dict`, plus what rebuilds it.

`torch.save` of one dict (read back with `weights_only=True`):

    {"format": "pydarknet", "version": 2,
     "cfg": cfg text, "cfg_name": "yolov2.cfg", "files": {"data/9k.tree": text, ...},
     "width": 416, "height": 416,
     "header": {"major": 0, "minor": 2, "revision": 0, "seen": 32013312},
     "state_dict": {"layers.0.conv.weight": ..., "layers.0.bn.running_var": ..., ...},
     "sha256": checksum of all the above (embedded.checksum; version 1 files have none)}

Tensors are stored as float32 on the CPU with the module's own names
(`layers.N.conv.weight`, `layers.N.bn.weight` = Darknet's scales,
`layers.N.bn.bias` = its biases, `layers.N.bn.running_mean`/`running_var` =
rolling mean and variance).  Reading accepts only dense float tensors that
their storage holds (no sparse, integer or complex tensor, no stride-0 view
pretending to be large).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from pydarknet.convert.embedded import CHECKSUM, build_network, check_format, check_meta, checksum, describe, verify_checksum
from pydarknet.errors import WeightsError
from pydarknet.network import Darknet
from pydarknet.weights import check_finite

FLOAT_DTYPES = (torch.float16, torch.float32, torch.float64)  # the ones numpy shares


def pt_bytes(net: Darknet) -> bytes:
    """The bytes of the `.pt` checkpoint of `net`."""
    checkpoint = describe(net)
    state = {k: v.detach().to("cpu", torch.float32) for k, v in net.state_dict().items()}
    checkpoint["state_dict"] = state
    checkpoint[CHECKSUM] = checksum(checkpoint, _arrays(state))
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getvalue()


def _arrays(state: dict[str, torch.Tensor]) -> list[tuple[str, np.ndarray]]:
    return [(k, v.detach().contiguous().numpy()) for k, v in state.items()]


def _tensor_problem(value: object) -> str | None:
    """Why a state_dict entry is not a tensor pydarknet wrote, or None."""
    if not isinstance(value, torch.Tensor):
        return f"a {type(value).__name__}, not a tensor"
    if value.layout != torch.strided:
        return f"a {value.layout} tensor, not a dense one"
    if value.dtype not in FLOAT_DTYPES:
        return f"a {value.dtype} tensor, not floats"
    if value.numel() * value.element_size() > value.untyped_storage().nbytes():
        return f"a view of {value.numel()} values on a storage of {value.untyped_storage().nbytes()} bytes"
    return None


def read_pt(source: str | Path | BinaryIO, name: str | Path) -> dict:
    """The checkpoint dict of a `.pt` file; a one-line error for anything else."""
    try:
        checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    except OSError as err:
        raise WeightsError(f"{name}: cannot read: {err.strerror or err}") from None
    except Exception as err:  # noqa: BLE001 - torch.load fails on junk bytes with many exception types
        raise WeightsError(f"{name}: not a PyTorch checkpoint ({type(err).__name__} while reading it)") from None
    if not isinstance(checkpoint, dict):
        raise WeightsError(f"{name}: a PyTorch file holding a {type(checkpoint).__name__}, not a pydarknet checkpoint")
    check_format(checkpoint, name, "PyTorch")
    check_meta(checkpoint, name)
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise WeightsError(f"{name}: damaged pydarknet checkpoint: 'state_dict' is not a table of named tensors")
    for key, value in state.items():
        problem = _tensor_problem(value)
        if problem:
            raise WeightsError(f"{name}: damaged pydarknet checkpoint: state_dict entry {key} is {problem}")
    return checkpoint


def load_pt(cfg: str | Path | None, source: str | Path | BinaryIO, name: str | Path | None = None) -> Darknet:
    """The network of a `.pt` checkpoint (built from `cfg` if given, else from the embedded cfg).

    The checksum is checked once the tensors are known to fit the network
    (so a damaged embedded cfg is reported as such, naming its line).
    """
    name = name or source  # type: ignore[assignment]
    checkpoint = read_pt(source, name)  # type: ignore[arg-type]
    net = build_network(cfg, checkpoint, name)  # type: ignore[arg-type]
    state = checkpoint["state_dict"]
    ours = net.state_dict()
    missing = [k for k in ours if k not in state]
    extra = [k for k in state if k not in ours]
    wrong = [k for k in ours if k in state and tuple(state[k].shape) != tuple(ours[k].shape)]
    if missing or extra or wrong:
        k = (wrong or missing or extra)[0]
        what = (f"{k} has shape {tuple(state[k].shape)}, the network needs {tuple(ours[k].shape)}" if wrong
                else f"{k} is missing" if missing else f"{k} is not in the network")
        raise WeightsError(f"{name}: does not fit {net.cfg_path}: {what}")
    verify_checksum(checkpoint, _arrays(state), name)  # type: ignore[arg-type]
    net.load_state_dict(state)
    check_finite(net, name)
    return net
