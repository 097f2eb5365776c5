"""AlexeyAB's cfg zoo: every cfg forwards at a small size or is refused with a one-line DarknetError.

Runs only with a snapshot of AlexeyAB/darknet's cfg/ folder: PYDARKNET_ALEXEYAB_CFG=/path/to/cfg
(CI has none: skipped).  Slow (one subprocess per cfg; minutes): tools/alexeyab_zoo.py does the work.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CFG_DIR = os.environ.get("PYDARKNET_ALEXEYAB_CFG")

pytestmark = pytest.mark.skipif(not CFG_DIR or not Path(CFG_DIR).is_dir(),
                                reason="set PYDARKNET_ALEXEYAB_CFG to AlexeyAB/darknet's cfg/ folder")


def test_every_cfg_forwards_or_is_refused_in_one_line() -> None:
    from tools import alexeyab_zoo

    rows = alexeyab_zoo.run_all(Path(CFG_DIR), None, timeout=600)
    assert rows, f"no .cfg in {CFG_DIR}"
    bad = [f"{r['cfg']}: {r['crash']}" for r in rows if r["crash"]]
    bad += [f"{r['cfg']}: refusal is not one line: {r['refused']}" for r in rows if r["refused"] and not r["one_line"]]
    bad += [f"{r['cfg']}: neither forwards nor refused" for r in rows if not r["forwards"] and not r["refused"]
            and not r["crash"]]
    assert not bad, "\n".join(bad)
