#!/usr/bin/env python3
"""Make AlexeyAB's network-level training goldens: tests/golden-alexeyab-extra/{batchnorm-train,learning-rate,multiscale}/.

usage (from the repository root): make_cases.py NET_TRAIN [--out tests/golden-alexeyab-extra]

NET_TRAIN is net_train.c built by build.sh against AlexeyAB/darknet 59596d78 (CPU, -Ofast, AVX=0).

- `batchnorm-train/NAME/`: one batch-normalized [convolutional] or [connected] layer (`layer.cfg`) run forward
  and backward in training mode (`net_train layer`): `params.npy` (weights, biases, scales, rolling mean,
  rolling variance, flat float32), `input.npy` (batch, inputs), `grad.npy` (batch, outputs: the delta put in
  l.delta before the backward), and from Darknet `output.npy`, `mean.npy`, `variance.npy`, `rolling_mean.npy`,
  `rolling_variance.npy`, `input_delta.npy`, `weight_updates.npy`, `bias_updates.npy`, `scale_updates.npy`.
  All drawn from numpy Generator(PCG64(seed)).standard_normal, scaled as CASES says.
- `learning-rate/rates.json`: per cfg of RATE_CASES, `get_current_rate` at the chosen iterations.
- `multiscale/sizes.json`: train_detector's size rule (copied into the driver) on fixed draws of rand_scale.
- `ema/NAME/`: `[net] ema_alpha` (`net_train ema`): `ema.cfg`, `steps.npy` (iterations, floats: the
  [convolutional] layers' weights, biases, scales as each update left them, a seeded random walk) and from
  Darknet `trace.npy` (iterations, 2, floats: the weights and their EMA after the iteration's EMA lines).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

COMMIT = "59596d7880f6504768df41d6daa586f5cb2b932f"

# name -> layer section, input (channels, height, width), batch, seed, input scale
LAYER_CASES: dict[str, dict] = {
    "conv_leaky": dict(section="[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=leaky",
                       shape=(3, 5, 6), batch=2, seed=11, scale=1.0),
    # pre-activations of variance ~1e-5: sqrt(var + .00001) and pjreddie's sqrt(var) + .000001 differ by half
    "conv_small_variance": dict(section="[convolutional]\nbatch_normalize=1\nfilters=3\nsize=1\nstride=1\npad=0\nactivation=linear",
                                shape=(2, 3, 3), batch=2, seed=12, scale=0.004),
    # after an unused 1x1 [convolutional] on 2x2 (net_train.c: else parsing divides by zero)
    "connected_leaky": dict(section="[convolutional]\nfilters=3\nsize=1\n\n[connected]\nbatch_normalize=1\noutput=5\nactivation=leaky",
                            shape=(3, 2, 2), batch=4, seed=13, scale=1.0),
}
LAYER_OUTPUTS = ("output", "mean", "variance", "rolling_mean", "rolling_variance", "input_delta", "weight_updates",
                 "bias_updates", "scale_updates")

NET = "[net]\nbatch=64\nsubdivisions=16\nwidth=32\nheight=32\nchannels=3\n"
RATE_CASES: dict[str, dict] = {
    "steps_burn_in_power2": dict(
        net="learning_rate=0.001\nburn_in=100\npower=2\nmax_batches=400\npolicy=steps\nsteps=200,300\nscales=.1,.1",
        iterations=[0, 1, 2, 50, 99, 100, 101, 199, 200, 201, 299, 300, 301, 400, 500]),
    "sgdr_cycle20_mult2": dict(
        net="learning_rate=0.01\nburn_in=10\nmax_batches=400\npolicy=sgdr\nsgdr_cycle=20\nsgdr_mult=2\nlearning_rate_min=0.0001",
        iterations=[0, 5, 9, 10, 11, 19, 20, 21, 30, 40, 59, 60, 61, 100, 139, 140, 141, 299, 300, 301, 400]),
    "sgdr_defaults_with_steps": dict(
        net="learning_rate=0.002\nmax_batches=300\npolicy=sgdr\nsteps=100,200\nscales=.1,.1",
        iterations=[0, 1, 50, 150, 299, 300, 301, 450, 600, 899, 900, 901, 1000]),
    "sgdr_mult1": dict(
        net="learning_rate=0.005\nburn_in=3\npower=1\nmax_batches=100\npolicy=sgdr\nsgdr_cycle=25\nsgdr_mult=1\nlearning_rate_min=0",
        iterations=[0, 1, 2, 3, 4, 24, 25, 26, 49, 50, 51, 75, 76, 99, 100]),
    "poly_burn_in": dict(
        net="learning_rate=0.001\nburn_in=1000\nmax_batches=2000\npolicy=poly\npower=4",
        iterations=[0, 1, 10, 500, 999, 1000, 1001, 1500, 1999, 2000]),
    "exp": dict(net="learning_rate=0.1\nmax_batches=1000\npolicy=exp\ngamma=0.999", iterations=[0, 1, 100, 999, 5000]),
    "step": dict(net="learning_rate=0.1\nburn_in=5\nmax_batches=1000\npolicy=step\nstep=30\nscale=0.5",
                 iterations=[0, 4, 5, 29, 30, 31, 59, 60, 300]),
    "sigmoid_before_step": dict(net="learning_rate=0.1\nmax_batches=1000\npolicy=sigmoid\ngamma=0.1\nstep=50",
                                iterations=[0, 1, 10, 49, 50, 51, 100, 1000]),
    "constant_burn_in": dict(net="learning_rate=0.0013\nburn_in=20\npower=3\nmax_batches=100", iterations=[0, 1, 19, 20, 21, 99]),
}

# init (w, h), resize_step, random, iteration, max_batches, avg_loss (-1: the first resize of the process)
MULTISCALE_CASES: dict[str, dict] = {
    "416_default": dict(init=(416, 416), resize_step=32, random=1, iteration=10, max_batches=1000, avg_loss=3),
    "416_first": dict(init=(416, 416), resize_step=32, random=1, iteration=0, max_batches=1000, avg_loss=-1),
    "416_last_100": dict(init=(416, 416), resize_step=32, random=1, iteration=910, max_batches=1000, avg_loss=3),
    "416_at_900": dict(init=(416, 416), resize_step=32, random=1, iteration=900, max_batches=1000, avg_loss=3),
    "608x352_coef1.5": dict(init=(608, 352), resize_step=32, random=1.5, iteration=20, max_batches=1000, avg_loss=3),
    "512x288_step64_coef2": dict(init=(512, 288), resize_step=64, random=2, iteration=20, max_batches=1000, avg_loss=3),
    "100x60_step16_coef3": dict(init=(100, 60), resize_step=16, random=3, iteration=20, max_batches=1000, avg_loss=3),
    "320_step10": dict(init=(320, 320), resize_step=10, random=1, iteration=20, max_batches=1000, avg_loss=3),
}
MULTISCALE_DRAWS = 24
# name -> [net] max_batches and ema_alpha, the iterations traced (start max_batches/2, apply max_batches - 1000)
EMA_CASES: dict[str, dict] = {
    "start_and_apply": dict(max_batches=2010, alpha=0.75, first=1000, last=1015, seed=21),
    "apply_before_start": dict(max_batches=1500, alpha=0.9, first=745, last=755, seed=22),
}
EMA_LAYERS = ("[convolutional]\nbatch_normalize=1\nfilters=3\nsize=3\nstride=1\npad=1\nactivation=leaky\n\n"
              "[convolutional]\nfilters=2\nsize=1\nstride=1\npad=0\nactivation=linear\n")
EMA_FLOATS = 3 * 2 * 9 + 3 + 3 + 2 * 3 + 2  # the two layers' weights, biases, scales  # rand_scale draws per case, besides the edges 1, coef and 1/coef


def layer_case(driver: Path, name: str, case: dict, out: Path) -> dict:
    folder = out / "batchnorm-train" / name
    folder.mkdir(parents=True, exist_ok=True)
    c, h, w = case["shape"]
    cfg = f"[net]\nbatch={case['batch']}\nsubdivisions=1\nwidth={w}\nheight={h}\nchannels={c}\n\n{case['section']}\n"
    (folder / "layer.cfg").write_text(cfg)
    rng = np.random.Generator(np.random.PCG64(case["seed"]))
    last = case["section"].split("\n\n")[-1]
    section = dict(line.split("=") for line in last.splitlines()[1:])
    if last.startswith("[convolutional]"):
        n, size = int(section["filters"]), int(section["size"])
        nweights = n * c * size * size
        out_shape = (n, (h + 2 * int(section["pad"]) - size) + 1, (w + 2 * int(section["pad"]) - size) + 1)
    else:
        n = int(section["output"])
        nweights = n * c * h * w
        out_shape = (n, 1, 1)
    params = np.concatenate([
        rng.standard_normal(nweights) * 0.5, 0.1 * rng.standard_normal(n), 1 + 0.2 * rng.standard_normal(n),
        0.1 * rng.standard_normal(n), 1 + 0.1 * np.abs(rng.standard_normal(n))]).astype(np.float32)
    x = (rng.standard_normal((case["batch"], c * h * w)) * case["scale"]).astype(np.float32)
    grad = rng.standard_normal((case["batch"], int(np.prod(out_shape)))).astype(np.float32)
    for arr, what in ((params, "params"), (x, "input"), (grad, "grad")):
        np.save(folder / f"{what}.npy", arr)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for arr, what in ((params, "params"), (x, "input"), (grad, "grad")):
            arr.tofile(t / f"{what}.bin")
        done = subprocess.run([str(driver), "layer", str(folder / "layer.cfg"), str(t / "params.bin"), str(t / "input.bin"),
                               str(t / "grad.bin"), str(t)], check=True, capture_output=True, text=True)
        for what in LAYER_OUTPUTS:
            np.save(folder / f"{what}.npy", np.fromfile(t / f"{what}.bin", dtype=np.float32))
    return {"name": name, "layer": next(line for line in done.stdout.splitlines() if line.startswith("LAYER")),
            "nweights": nweights, "n": n, "output_shape": list(out_shape)}


def rate_cases(driver: Path) -> list[dict]:
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, case in RATE_CASES.items():
            cfg = f"{NET}{case['net']}\n\n[convolutional]\nfilters=2\nsize=1\n"
            path = Path(tmp) / f"{name}.cfg"
            path.write_text(cfg)
            done = subprocess.run([str(driver), "rate", str(path), *map(str, case["iterations"])],
                                  check=True, capture_output=True, text=True)
            rows = [line.split() for line in done.stdout.splitlines() if line[:1].isdigit()]
            cases.append({"name": name, "cfg": cfg, "rates": [[int(i), float(r)] for i, r in rows]})
    return cases


def multiscale_cases(driver: Path) -> list[dict]:
    cases = []
    for seed, (name, case) in enumerate(MULTISCALE_CASES.items()):
        coef = np.float32(1.4 if case["random"] == 1 else case["random"])
        rng = np.random.Generator(np.random.PCG64(500 + seed))
        scale = (1 + rng.random(MULTISCALE_DRAWS) * (coef - 1)).astype(np.float32)
        flip = rng.integers(0, 2, MULTISCALE_DRAWS).astype(bool)
        draws = [*np.where(flip, scale, (1 / scale.astype(np.float64)).astype(np.float32)), 1, coef, 1 / coef]
        values = [f"{float(np.float32(v)):.9g}" for v in draws]
        args = [case["init"][0], case["init"][1], case["resize_step"], case["random"], case["iteration"],
                case["max_batches"], case["avg_loss"]]
        done = subprocess.run([str(driver), "multiscale", *map(str, args), *values], check=True, capture_output=True,
                              text=True)
        rows = [[float(v), int(w), int(h)] for v, w, h in (line.split() for line in done.stdout.splitlines())]
        cases.append({"name": name, **case, "sizes": rows})
    return cases


def ema_case(driver: Path, name: str, case: dict, out: Path) -> dict:
    folder = out / "ema" / name
    folder.mkdir(parents=True, exist_ok=True)
    cfg = (f"[net]\nbatch=2\nsubdivisions=1\nwidth=6\nheight=5\nchannels=2\nmax_batches={case['max_batches']}\n"
           f"ema_alpha={case['alpha']}\n\n{EMA_LAYERS}")
    (folder / "ema.cfg").write_text(cfg)
    rng = np.random.Generator(np.random.PCG64(case["seed"]))
    iterations = case["last"] - case["first"] + 1
    steps = np.cumsum(0.05 * rng.standard_normal((iterations, EMA_FLOATS)), axis=0) + rng.standard_normal(EMA_FLOATS)
    steps = steps.astype(np.float32)
    np.save(folder / "steps.npy", steps)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        steps.tofile(t / "steps.bin")
        done = subprocess.run([str(driver), "ema", str(folder / "ema.cfg"), str(t / "steps.bin"), str(case["first"]),
                               str(case["last"]), str(t)], check=True, capture_output=True, text=True)
        trace = np.fromfile(t / "trace.bin", dtype=np.float32).reshape(iterations, 2, EMA_FLOATS)
    np.save(folder / "trace.npy", trace)
    return {"name": name, **case, "driver": next(line for line in done.stdout.splitlines() if line.startswith("EMA"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("driver", type=Path)
    parser.add_argument("--out", type=Path, default=Path("tests/golden-alexeyab-extra"))
    args = parser.parse_args()
    driver = args.driver.resolve()
    layers = [layer_case(driver, name, case, args.out) for name, case in LAYER_CASES.items()]
    (args.out / "batchnorm-train" / "manifest.json").write_text(
        json.dumps({"commit": COMMIT, "cases": layers}, indent=1) + "\n")
    (args.out / "learning-rate").mkdir(parents=True, exist_ok=True)
    (args.out / "learning-rate" / "rates.json").write_text(
        json.dumps({"commit": COMMIT, "cases": rate_cases(driver)}, indent=1) + "\n")
    emas = [ema_case(driver, name, case, args.out) for name, case in EMA_CASES.items()]
    (args.out / "ema" / "manifest.json").write_text(json.dumps({"commit": COMMIT, "cases": emas}, indent=1) + "\n")
    (args.out / "multiscale").mkdir(parents=True, exist_ok=True)
    (args.out / "multiscale" / "sizes.json").write_text(
        json.dumps({"commit": COMMIT, "cases": multiscale_cases(driver)}, indent=1) + "\n")


if __name__ == "__main__":
    main()
