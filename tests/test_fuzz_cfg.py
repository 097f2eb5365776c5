"""Fuzzing the cfg parser and builder: only CfgError may come out.

Networks are built on the meta device, so absurd sizes cost no memory.
"""

from __future__ import annotations

import warnings

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CFG
from pydarknet import CfgError, Darknet

REAL_CFGS = [p.read_text() for p in sorted(CFG.glob("*.cfg"))]


def parse_and_build(tmp_path, data: bytes) -> None:
    path = tmp_path / "fuzz.cfg"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.device("meta"):
                Darknet(path)
        except CfgError as err:
            assert "\n" not in str(err)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(tmp_path, data):
    parse_and_build(tmp_path, data)


@FUZZ
@given(st.text(alphabet="[]=,.#;-_ \t\r\nabcnetroulygfisz0123456789", max_size=300))
def test_random_cfg_like_text(tmp_path, text):
    parse_and_build(tmp_path, ("[net]\nwidth=32\nheight=32\nchannels=3\n" + text).encode())


@FUZZ
@given(st.data())
def test_mutations_of_real_cfgs(tmp_path, data):
    lines = data.draw(st.sampled_from(REAL_CFGS)).splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["drop", "dup", "swap", "edit", "number"]))
        i = data.draw(st.integers(0, len(lines) - 1))
        if kind == "drop":
            del lines[i]
        elif kind == "dup":
            lines.insert(i, lines[i])
        elif kind == "swap":
            j = data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "edit":
            pos = data.draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:pos] + data.draw(st.text(max_size=3)) + lines[i][pos:]
        elif "=" in lines[i]:
            key = lines[i].split("=")[0]
            lines[i] = f"{key}={data.draw(st.sampled_from(['0', '-1', '-7', '99999', '1e30', '2.5', 'nan', '']))}\n"
        if not lines:
            lines = ["[net]\n"]
    parse_and_build(tmp_path, "".join(lines).encode("utf-8", "surrogatepass"))
