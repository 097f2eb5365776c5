#!/usr/bin/env python3
"""Regenerate tests/golden-alexeyab-extra/: every layer's output of AlexeyAB's Darknet on small cfgs of ours.

usage: make_extra.py AB_LAYERS [--out tests/golden-alexeyab-extra] [--only NAME ...]

AB_LAYERS is tools/goldens/ab_layers.c linked against AlexeyAB/darknet at the
commit below, built CPU-only by ../shared/harness/alexeyab/build.sh SRC and
then tools/goldens/ab_layers.c linked against SRC/obj as that script links its ab_golden.c (GPU=0 CUDNN=0 OPENCV=0 OPENMP=1
AVX=0, -Ofast).  For each case: the cfg (tools/goldens/cfg/NAME.cfg, ours), a
seeded weights file laid out as AlexeyAB's load_weights reads it (the layout
comes from `ab_layers layout CFG`, i.e. from Darknet's own parse, and is kept
in the manifest), a seeded input, and `ab_layers forward`.

Weights (same stream and same bytes as ../shared/tools/random_weights.py for
cfgs that tool understands): numpy Generator(PCG64(seed)).random(), one stream,
uniform(lo, hi) = lo + (hi - lo) * u in float64 stored as float32; header int32
0, 2, 0 + uint64 seen 0; per [convolutional] in layer order: biases n
U(-0.1, 0.1); if batch_normalize: scales U(0.5, 1.5), rolling_mean
U(-0.1, 0.1), rolling_variance U(0.5, 2.0); weights n*(c/groups)*size*size
U(-a, a), a = sqrt(6 / ((c/groups)*size*size)); per [shortcut] with
weights_type: nweights U(-1, 1) (negative ones exercise the relu
normalization's clamp).

Input: Generator(PCG64(seed)).random((C, H, W)) -> low + (high - low) * u, float32.

Detections (cases in DETECTIONS): `ab_layers forward ... THRESH IMAGE_W IMAGE_H NMS` also writes
detections.txt (get_network_boxes for an image of IMAGE_W x IMAGE_H) and detections_nms.txt (after
test_detector's NMS); the manifest records the arguments.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
COMMIT = "59596d7880f6504768df41d6daa586f5cb2b932f"

# name, cfg, weights seed, input seed, input range, fuse_conv_batchnorm
CASES = [
    ("activations", "activations.cfg", 101, 201, (-1.0, 1.0), 1),
    ("activations_wide", "activations.cfg", 102, 202, (-16.0, 16.0), 1),
    ("conv", "conv.cfg", 103, 203, (0.0, 1.0), 1),
    ("conv_nofuse", "conv.cfg", 103, 203, (0.0, 1.0), 0),
    ("pool", "pool.cfg", 104, 204, (-1.0, 1.0), 1),
    ("sam_scale", "sam_scale.cfg", 105, 205, (0.0, 1.0), 1),
    ("shortcut", "shortcut.cfg", 106, 206, (0.0, 1.0), 1),
    ("shortcut_nofuse", "shortcut.cfg", 106, 206, (0.0, 1.0), 0),
    ("gaussian_yolo", "gaussian_yolo.cfg", 107, 207, (0.0, 1.0), 1),
    ("share", "share.cfg", 108, 208, (0.0, 1.0), 1),
    ("share_nofuse", "share.cfg", 108, 208, (0.0, 1.0), 0),
]
# name -> (thresh, image width, image height, nms) for the detections (ab_layers forward's optional arguments)
DETECTIONS = {"gaussian_yolo": (0.15, 100, 60, 0.3)}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def layout(ab_layers: str, cfg: Path) -> list[list]:
    out = subprocess.run([ab_layers, "layout", str(cfg)], check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == "conv" and len(parts) == 8:
            rows.append(["conv", *map(int, parts[1:])])
        elif parts and parts[0] == "shortcut" and len(parts) == 3:
            rows.append(["shortcut", *map(int, parts[1:])])
    return rows


def write_weights(rows: list[list], seed: int, path: Path) -> None:
    """rows: ["conv", index, n, c, groups, size, batch_normalize, nweights] or ["shortcut", index, nweights]."""
    rng = np.random.Generator(np.random.PCG64(seed))

    def uniform(lo, hi, count):
        return (lo + (hi - lo) * rng.random(count)).astype(np.float32)

    with open(path, "wb") as f:
        np.array([0, 2, 0], dtype=np.int32).tofile(f)
        np.array([0], dtype=np.uint64).tofile(f)
        for row in rows:
            if row[0] == "shortcut":
                uniform(-1.0, 1.0, row[2]).tofile(f)
                continue
            _, _, n, c, groups, size, bn, nweights = row
            fan_in = c // groups * size * size
            assert nweights == n * fan_in, row
            uniform(-0.1, 0.1, n).tofile(f)
            if bn:
                uniform(0.5, 1.5, n).tofile(f)
                uniform(-0.1, 0.1, n).tofile(f)
                uniform(0.5, 2.0, n).tofile(f)
            a = math.sqrt(6.0 / fan_in)
            uniform(-a, a, n * fan_in).tofile(f)


def net_shape(cfg: Path) -> tuple[int, int, int]:
    opts, in_net = {}, False
    for raw in cfg.read_text().splitlines():
        line = raw.split("#")[0].strip()
        if line.startswith("["):
            if in_net:
                break
            in_net = line in ("[net]", "[network]")
        elif in_net and "=" in line:
            k, v = line.split("=", 1)
            opts[k.strip()] = v.strip()
    return int(opts.get("channels", 3)), int(opts["height"]), int(opts["width"])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("ab_layers")
    ap.add_argument("--out", default=str(ROOT / "tests" / "golden-alexeyab-extra"))
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest.update({
        "darknet": "AlexeyAB/darknet",
        "commit": COMMIT,
        "build": "GPU=0 CUDNN=0 OPENCV=0 OPENMP=1 AVX=0 LIBSO=0, -Ofast (../shared/harness/alexeyab/build.sh)",
        "driver": "tools/goldens/ab_layers.c (linked as ../shared/harness/alexeyab/build.sh links ab_golden.c)",
        "generator": "tools/goldens/make_extra.py",
    })
    cases = {c["name"]: c for c in manifest.get("cases", [])}
    for name, cfg_name, wseed, iseed, (lo, hi), fuse in CASES:
        if args.only and name not in args.only:
            continue
        cfg = HERE / "cfg" / cfg_name
        case_dir = out / name
        if case_dir.exists():
            shutil.rmtree(case_dir)
        case_dir.mkdir()
        shutil.copy(cfg, case_dir / "network.cfg")
        rows = layout(args.ab_layers, cfg)
        weights = case_dir / "network.weights"
        write_weights(rows, wseed, weights)
        c, h, w = net_shape(cfg)
        rng = np.random.Generator(np.random.PCG64(iseed))
        x = (lo + (hi - lo) * rng.random((c, h, w))).astype(np.float32)
        np.save(case_dir / "input.npy", x)
        detections = DETECTIONS.get(name)
        with tempfile.NamedTemporaryFile(suffix=".f32") as tmp:
            x.tofile(tmp.name)
            run = subprocess.run([args.ab_layers, "forward", str(cfg), str(weights), tmp.name, str(fuse), str(case_dir),
                                  *map(str, detections or ())], check=False, capture_output=True, text=True)
        if run.returncode:
            sys.stderr.write(run.stdout[-3000:] + run.stderr[-3000:])
            raise SystemExit(f"{name}: ab_layers failed")
        layers = []
        for line in (case_dir / "layers.txt").read_text().splitlines():
            i, kind, lc, lh, lw = line.split()
            arr = np.load(case_dir / f"layer_{int(i):03d}.npy")
            layers.append({"index": int(i), "type": kind, "shape": [int(lc), int(lh), int(lw)],
                           "absmax": float(np.abs(arr).max()), "finite": bool(np.isfinite(arr).all()),
                           "sha256": sha256(case_dir / f"layer_{int(i):03d}.npy")})
        cases[name] = {
            "name": name,
            "cfg": f"tools/goldens/cfg/{cfg_name}",
            "cfg_sha256": sha256(cfg),
            "fuse_conv_batchnorm": bool(fuse),
            "weights": {"file": "network.weights", "seed": wseed, "bytes": weights.stat().st_size,
                        "sha256": sha256(weights), "layout": rows},
            "input": {"seed": iseed, "low": lo, "high": hi, "shape": [c, h, w], "sha256": sha256(case_dir / "input.npy")},
            "layers": layers,
        }
        if detections:
            thresh, image_w, image_h, nms = detections
            cases[name]["detections"] = {"thresh": thresh, "image": [image_w, image_h], "nms": nms,
                                         "files": ["detections.txt", "detections_nms.txt"]}
        print(f"{name}: {len(layers)} layers, weights {weights.stat().st_size} bytes")
    manifest["cases"] = [cases[n] for n, *_ in CASES if n in cases]
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
