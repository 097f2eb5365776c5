"""The training chart (AlexeyAB's chart.png, src/image_opencv.cpp draw_train_loss), from the CSV log.

Above: the loss and the average loss per iteration (log scale), and with
`--map` the mAP points (AlexeyAB's red line, in percent, on the right);
below: the learning rate.  The run's rows are `pydarknet.train.log.history`.
AlexeyAB saves chart.png when the iteration passes a multiple of 100
(`current_batch / 100 > old_batch / 100`); the trainer redraws it then, after
each mAP and at the end, each time to a temporary file renamed over the last.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from pydarknet.train.log import history
from pydarknet.weights import write_atomic

REDRAW_EVERY = 100


def draw_loss_chart(log_csv: Path, out_png: Path, title: str, max_batches: int | None = None) -> None:
    """Plot the run's loss, average loss, mAP and learning rate against the iteration; write a PNG atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = history(log_csv)
    iterations = [int(r["iteration"]) for r in rows]
    fig, (ax, lr) = plt.subplots(2, 1, figsize=(8, 6), dpi=100, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot(iterations, [float(r["loss"]) for r in rows], lw=0.6, alpha=0.5, label="loss")
    ax.plot(iterations, [float(r["avg_loss"]) for r in rows], lw=1.5, label="avg loss")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    maps = [(i, 100 * float(r["map"])) for i, r in zip(iterations, rows) if r.get("map")]
    handles, labels = ax.get_legend_handles_labels()
    if maps:
        right = ax.twinx()
        (line,) = right.plot(*zip(*maps), "o-", color="tab:red", lw=1, ms=3, label="mAP@0.50")
        last, value = maps[-1]
        right.annotate(f"{value:.1f}%", (last, value), textcoords="offset points", xytext=(-10, 6), color="tab:red")
        right.set_ylim(0, 100)
        right.set_ylabel("mAP %", color="tab:red")
        handles.append(line)
        labels.append(line.get_label())
    ax.legend(handles, labels, loc="upper right")
    lr.plot(iterations, [float(r["rate"]) for r in rows], color="tab:green", lw=1)
    lr.set_ylabel("learning rate")
    lr.set_xlabel("iteration")
    lr.grid(alpha=0.3)
    if max_batches:
        lr.set_xlim(0, max_batches)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    write_atomic(out_png, buffer.getvalue())


class TrainingChart:
    """The chart of one run: drawn when asked; one warning if it cannot be, and no more tries."""

    def __init__(self, log_csv: Path, out_png: Path, title: str, max_batches: int) -> None:
        self.log_csv, self.out_png, self.title, self.max_batches = log_csv, out_png, title, max_batches
        self.broken = False

    @staticmethod
    def due(iteration: int, previous: int) -> bool:
        """AlexeyAB's `current_batch / 100 > old_batch / 100`: the iteration passed a multiple of 100."""
        return iteration // REDRAW_EVERY > previous // REDRAW_EVERY

    def draw(self) -> None:
        if self.broken:
            return
        try:
            draw_loss_chart(self.log_csv, self.out_png, self.title, self.max_batches)
        except (OSError, ValueError, KeyError) as err:
            self.broken = True
            warnings.warn(f"{self.out_png}: cannot write the loss chart ({getattr(err, 'strerror', None) or err})")
