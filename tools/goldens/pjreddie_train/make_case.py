#!/usr/bin/env python3
"""Make a tests/golden/train case from an existing one with a low-contrast input.

usage (from the repository root): make_case.py GOLDEN_TRAIN BASE NAME --contrast C
       [--golden tests/golden] [--random-weights ../shared/tools/random_weights.py]

GOLDEN_TRAIN is golden_train built by build.sh. The new case NAME has BASE's
cfg, weights seed, seen, steps and truth; its input is
0.5 + C * (x - 0.5) of BASE's input x (float32), so that batch-norm variances
are small and Darknet's `var + .00001` in backward_batchnorm_layer matters.
Writes GOLDEN/train/NAME/ and prints the manifest entry (add it by hand).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("golden_train")
    p.add_argument("base")
    p.add_argument("name")
    p.add_argument("--contrast", type=float, required=True)
    p.add_argument("--golden", type=Path, default=Path("tests/golden"))
    p.add_argument("--random-weights", default="../shared/tools/random_weights.py")
    a = p.parse_args()
    manifest = json.loads((a.golden / "manifest.json").read_text())
    base = next(c for c in manifest["train"] if c["name"] == a.base)
    src, out = a.golden / "train" / a.base, a.golden / "train" / a.name
    out.mkdir(parents=True)
    x = np.load(src / "input.npy")
    x = (np.float32(0.5) + np.float32(a.contrast) * (x - np.float32(0.5))).astype(np.float32)
    np.save(out / "input.npy", x)
    shutil.copy(src / "truth.npy", out / "truth.npy")
    shutil.copy(src / base["cfg"], out / base["cfg"])
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        subprocess.run([sys.executable, a.random_weights, str(out / base["cfg"]), str(t / "w.weights"),
                        "--seed", str(base["weights_seed"])], check=True)
        x.tofile(t / "input.bin")
        np.load(out / "truth.npy").astype(np.float32).tofile(t / "truth.bin")
        run = subprocess.run([a.golden_train, str(out / base["cfg"]), str(t / "w.weights"), str(base["seen"]),
                              str(base["steps"]), str(t / "input.bin"), str(t / "truth.bin"), str(out)],
                             check=True, capture_output=True, text=True)
    log = "".join(line + "\n" for line in run.stdout.splitlines() if line.startswith(("Region", "step")))
    losses = [float(line.split()[3]) for line in log.splitlines() if line.startswith("step")]
    entry = {**base, "name": a.name, "input": f"0.5 + {a.contrast} * ({a.base}/input.npy - 0.5)",
             "losses": losses, "log": log}
    print(json.dumps(entry, indent=1))


if __name__ == "__main__":
    main()
