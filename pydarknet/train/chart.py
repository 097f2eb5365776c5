"""The loss chart (AlexeyAB's chart.png): loss and average loss per iteration, from the CSV log."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pydarknet.weights import write_atomic


def draw_loss_chart(log_csv: Path, out_png: Path, title: str) -> None:
    """Plot `loss` and `avg` against `iteration` from a training log; write a PNG atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(log_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    iterations = [int(r["iteration"]) for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    ax.plot(iterations, [float(r["loss"]) for r in rows], lw=0.6, alpha=0.5, label="loss")
    ax.plot(iterations, [float(r["avg_loss"]) for r in rows], lw=1.5, label="avg loss")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    write_atomic(out_png, buffer.getvalue())
