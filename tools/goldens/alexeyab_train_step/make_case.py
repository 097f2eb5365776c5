#!/usr/bin/env python3
"""Make tests/golden-alexeyab-extra/train-step/: two whole training steps of AlexeyAB's Darknet on a slim
yolov4-tiny (yolov4-tiny-slim.cfg, beside this script).

usage (from the repository root): make_case.py TRAIN_STEP [--out tests/golden-alexeyab-extra/train-step]
       [--random-weights ../shared/tools/random_weights.py]

TRAIN_STEP is train_step.c built by build.sh against AlexeyAB/darknet 59596d78 (CPU, -Ofast, AVX=0).
The input (2, 3, 96, 96) float32 is numpy Generator(PCG64(INPUT_SEED)).random(), not stored (the test
draws it again).  Writes OUT/network.cfg (the cfg), truth.npy (2, 4, 6) float32 (TRUTHS, x y w h class track_id; a zero row ends an image's boxes,
the driver gets them padded with zero rows to [yolo] max=200), and from Darknet: step1.weights,
step2.weights (save_weights after each train_network call), output_LLL.npy and delta_LLL.npy (2, 21*H*W)
of each [yolo] layer LLL in the forward of step 1, and manifest.json: the weights' seed, bytes and sha256
(random_weights.py rebuilds them), and per step Darknet's returned loss, seen, iteration and the rate of
the update; `log` has its "v3 (...)" lines, each mini-batch's followed by its " total_bbox = ..." line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
COMMIT = "59596d7880f6504768df41d6daa586f5cb2b932f"
CFG = HERE / "yolov4-tiny-slim.cfg"
WEIGHTS_SEED, INPUT_SEED, STEPS, MAX_BOXES = 2024, 2025, 2, 200
# per image up to 4 boxes (x y w h class track_id), relative to the 96x96 input; image 1 has 2
TRUTHS = [
    [[0.30, 0.40, 0.25, 0.30, 0, 1], [0.70, 0.65, 0.45, 0.50, 1, 2], [0.52, 0.21, 0.12, 0.15, 1, 3],
     [0.15, 0.80, 0.20, 0.18, 0, 4]],
    [[0.48, 0.52, 0.60, 0.55, 1, 5], [0.81, 0.27, 0.16, 0.22, 0, 6], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]],
]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("train_step")
    p.add_argument("--out", type=Path, default=Path("tests/golden-alexeyab-extra/train-step"))
    p.add_argument("--random-weights", default="../shared/tools/random_weights.py")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    shutil.copy(CFG, a.out / "network.cfg")
    x = np.random.Generator(np.random.PCG64(INPUT_SEED)).random((2, 3, 96, 96)).astype(np.float32)
    truth = np.array(TRUTHS, dtype=np.float32)
    np.save(a.out / "truth.npy", truth)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        subprocess.run([sys.executable, a.random_weights, str(CFG), str(t / "w.weights"), "--seed", str(WEIGHTS_SEED)],
                       check=True)
        weights = (t / "w.weights").read_bytes()
        x.tofile(t / "input.bin")
        padded = np.zeros((2, MAX_BOXES, 6), dtype=np.float32)
        padded[:, : truth.shape[1]] = truth
        padded.tofile(t / "truth.bin")
        run = subprocess.run([a.train_step, str(CFG), str(t / "w.weights"), str(STEPS), str(t / "input.bin"),
                              str(t / "truth.bin"), str(t)], check=True, capture_output=True, text=True)
        for k in range(1, STEPS + 1):
            shutil.copy(t / f"step{k}.weights", a.out / f"step{k}.weights")
        for f in sorted(t.glob("*_[0-9][0-9][0-9].bin")):
            np.save(a.out / f"{f.stem}.npy", np.fromfile(f, dtype=np.float32).reshape(2, -1))
    steps = []
    for line in run.stdout.splitlines():
        if line.startswith("step "):
            w = line.split()
            steps.append({"loss": float(w[3]), "seen": int(w[5]), "iteration": int(w[7]), "rate": float(w[9])})
    log = [line if line.startswith(" total_bbox") else line.strip() for line in run.stderr.splitlines()
           if line.strip().startswith(("v3 (", "total_bbox = "))]  # the count line as printed, its spaces too
    manifest = {"commit": COMMIT, "cfg": "network.cfg", "weights_seed": WEIGHTS_SEED, "weights_bytes": len(weights),
                "weights_sha256": hashlib.sha256(weights).hexdigest(), "input_seed": INPUT_SEED, "steps": steps,
                "log": log}
    (a.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(json.dumps(steps))


if __name__ == "__main__":
    main()
