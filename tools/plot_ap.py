#!/usr/bin/env python3
"""Per-class AP bars of several `pydarknet detector map --json` results, side by side.

    python tools/plot_ap.py OUT.png joint=joint.json baseline=baseline.json [--mark red_circle,green_square]

Classes without ground truth (e.g. a WordTree's inner nodes) are left out; `--mark` shades
the named classes (the box-less leaves of docs/yolo9000-joint-training.md) and the title gives
each run's mean AP over the shaded and the unshaded classes.  The PNG is written under a
temporary name, then renamed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def class_aps(path: Path, points: str) -> dict[str, float]:
    """{class name: AP} of the classes with ground truth in a `map --json` file."""
    result = json.loads(path.read_text())
    return {c["name"]: c["ap"][points] or 0.0 for c in result["classes"] if c["ground_truth"]}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def plot(out: Path, runs: dict[str, dict[str, float]], marked: set[str]) -> None:
    names = list(next(iter(runs.values())))
    width = 0.8 / len(runs)
    fig, ax = plt.subplots(figsize=(max(8, len(names) * 0.55), 4.5))
    for k, name in enumerate(names):
        if name in marked:
            ax.axvspan(k - 0.45, k + 0.45, color="0.92", zorder=0)
    summary = []
    for r, (label, aps) in enumerate(runs.items()):
        ax.bar([k - 0.4 + width * (r + 0.5) for k in range(len(names))], [aps.get(n, 0.0) for n in names], width, label=label)
        summary.append(f"{label}: {_mean([aps.get(n, 0.0) for n in names if n in marked]):.3f} shaded, "
                       f"{_mean([aps.get(n, 0.0) for n in names if n not in marked]):.3f} unshaded")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right")
    ax.set_ylabel("AP (IoU 0.5)")
    ax.set_ylim(0, 1)
    ax.set_title("mean AP  " + ";  ".join(summary), fontsize=9)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("runs", nargs="+", metavar="LABEL=MAP.json", help="a label and a `detector map --json` output")
    parser.add_argument("--mark", default="", help="comma-separated class names to shade")
    parser.add_argument("--points", default="0", choices=("0", "11", "101"), help="which AP of the JSON (default 0: every point)")
    args = parser.parse_args(argv)
    runs = {}
    for run in args.runs:
        label, sep, path = run.partition("=")
        if not sep:
            parser.error(f"{run}: expected LABEL=MAP.json")
        try:
            runs[label] = class_aps(Path(path), args.points)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"plot_ap.py: {path}: not a `detector map --json` result ({exc})", file=sys.stderr)
            return 1
    marked = set(filter(None, args.mark.split(",")))
    unknown = sorted(marked - {name for aps in runs.values() for name in aps})
    if unknown:
        print(f"plot_ap.py: --mark names no class with ground truth: {', '.join(unknown)}", file=sys.stderr)
        return 1
    plot(args.out, runs, marked)
    return 0


if __name__ == "__main__":
    sys.exit(main())
