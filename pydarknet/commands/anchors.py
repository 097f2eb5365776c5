"""`pydarknet anchors DATA --num 5 --width 416 --height 416`: dimension clusters for a cfg.

Darknet's spelling `pydarknet detector calc_anchors DATA -num_of_clusters 5`
works too.  The clustering is the YOLO9000 paper's (pydarknet.anchors:
d = 1 - IoU, k-means++ seeding from `--seed`); AlexeyAB's calc_anchors
(src/detector.c, do_kmeans in src/matrix.c) clusters with the same distance
from random boxes of `srand(time(0))`.  Both print the anchors sorted by
area, smallest first, the order the masks of a [yolo] cfg expect (`mask=0,1,2`
the smallest three, on the finest grid).  Box sizes come from the label
files of the `.data` file's `train=` list, scaled to the network input
(`--width`/`--height`, default the cfg's, else 416).  The anchors are
printed as a cfg line sorted by area, in the units the cfg wants: grid
cells of the output for `[region]` (YOLOv2), pixels for `[yolo]`; without
`--cfg`, `--units grid` (cells of a stride-32 network) or `--units pixels`.
"""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path

import numpy as np

from pydarknet.anchors import average_iou, kmeans_anchors
from pydarknet.cfg import read_cfg, read_data_file
from pydarknet.commands import verb_parser
from pydarknet.commands.arguments import positive_int
from pydarknet.data.datafile import read_lines
from pydarknet.data.labels import label_path, read_labels
from pydarknet.errors import DarknetError
from pydarknet.network import Darknet
from pydarknet.weights import write_atomic

GRID_STRIDE = 32  # YOLOv2's output stride: anchors in cells of a /32 grid


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = verb_parser(sub, "anchors")
    p.add_argument("data", help="Darknet .data file (train=)")
    p.add_argument("--num", "--num_of_clusters", type=positive_int, default=5, help="number of anchors (default 5)")
    p.add_argument("--width", type=positive_int, help="network input width (default: the cfg's, else 416)")
    p.add_argument("--height", type=positive_int, help="network input height (default: the cfg's, else 416)")
    p.add_argument("--cfg", help="cfg whose last [region]/[yolo] sets the units; its current anchors are scored too")
    p.add_argument("--units", choices=("grid", "pixels"), default="grid", help="without --cfg: grid cells of a stride-32 network (default) or pixels")
    p.add_argument("--seed", type=int, default=0, help="random seed of the k-means++ seeding (default 0)")
    p.add_argument("--write", metavar="CFG", help="replace anchors= (and num=, the last conv's filters=) in this cfg, "
                   "keeping the rest; it also serves as --cfg")
    p.add_argument("--plot", metavar="PNG", help="draw the boxes and clusters into this image")
    p.set_defaults(run=run)


def training_boxes(data_path: str) -> np.ndarray:
    """(N, 2) relative (w, h) of every labelled box of the `train=` list."""
    data = read_data_file(data_path)
    classes = data.get_int("classes", 1 << 30)
    listing = data.get_path("train")
    sizes = []
    for number, line in enumerate(read_lines(listing, "list file"), 1):
        if line.strip():
            try:
                sizes.append(read_labels(label_path(line.strip()), classes)[:, 3:5])
            except DarknetError as err:
                raise DarknetError(f"{listing}:{number}: {err}") from None
    boxes = np.concatenate(sizes) if sizes else np.zeros((0, 2))
    boxes = boxes[(boxes > 0).all(axis=1)]
    if not len(boxes):
        raise DarknetError(f"{listing}: no labelled boxes")
    return boxes


class Target:
    """Where the anchors go: the detection layer of a cfg (or none), its units and its current anchors."""

    def __init__(self, cfg: str | None, units: str, width: int | None, height: int | None) -> None:
        self.cfg, self.layer, self.current = cfg, None, None
        if cfg is None:
            self.width, self.height = width or 416, height or 416
            self.kind, self.scale = None, (GRID_STRIDE if units == "grid" else 1)
            return
        net = Darknet(cfg, width, height)
        self.width, self.height = net.width, net.height
        heads = [layer for layer in net.layers if layer.kind in ("region", "yolo")]
        if not heads:
            raise DarknetError(f"{cfg}: no [region] or [yolo] layer to take anchors")
        self.layer = heads[-1]
        self.kind = self.layer.kind
        # [region] anchors are in cells of its grid; [yolo] anchors are pixels
        self.scale = self.width / self.layer.out_shape[2] if self.kind == "region" else 1
        self.current = self.layer.anchors.detach().cpu().numpy().reshape(-1, 2).astype(np.float64)

    @property
    def units(self) -> str:
        return "pixels" if self.scale == 1 else f"grid cells (stride {self.scale:g})"

    def format(self, anchors: np.ndarray) -> str:
        """Whole pixels, else four decimals: AlexeyAB's calc_anchors (src/detector.c) prints `%3.0f` when
        width > 32 and `%2.4f` otherwise (its `-width 13 -height 13` form gives grid cells)."""
        spec = "%.0f,%.0f" if self.scale == 1 and self.width > 32 else "%.4f,%.4f"
        return ", ".join(spec % tuple(a) for a in anchors)


def run(args: argparse.Namespace) -> int:
    if args.num < 1:
        raise DarknetError(f"--num {args.num}: must be at least 1")
    target = Target(args.write or args.cfg, args.units, args.width, args.height)
    if args.write and target.kind == "yolo" and args.num != len(target.current):
        raise DarknetError(f"{args.write}: [yolo] has {len(target.current)} anchors shared through mask=; "
                           f"--num {args.num} would need new masks: edit them by hand")
    relative = training_boxes(args.data)
    boxes = relative * np.array([target.width, target.height]) / target.scale
    if len(boxes) < args.num:
        raise DarknetError(f"{args.data}: {len(boxes)} boxes cannot make {args.num} clusters")
    anchors = kmeans_anchors(boxes, args.num, seed=args.seed)
    line = target.format(anchors)
    rounded = np.array([float(v) for v in line.replace(" ", "").split(",")]).reshape(-1, 2)
    print(f"{len(boxes)} boxes, {args.num} clusters (d = 1 - IoU, seed {args.seed}), {target.width}x{target.height} input, {target.units}")
    print(f"anchors = {line}")
    print(f"average IoU {100 * average_iou(boxes, rounded):.2f}%")
    if target.current is not None:
        print(f"current anchors of {target.cfg} ({len(target.current)}): average IoU {100 * average_iou(boxes, target.current):.2f}%")
    if args.write:
        write_cfg(args.write, target, line, args.num)
        print(f"wrote {args.write}")
    if args.plot:
        plot_clusters(boxes, rounded, target.units, Path(args.plot))
    return 0


_OPTION = re.compile(r"^(\s*(\w+)\s*=\s*)(.*?)(\s*)$", re.S)


def _set_option(lines: list[str], start: int, end: int, key: str, value: str, after: int) -> None:
    """Replace the first `key=` line of lines[start:end] (Darknet reads the first), or insert one after line `after`."""
    for i in range(start, end):
        m = _OPTION.match(lines[i])
        if m and m.group(2) == key:
            lines[i] = m.group(1) + value + m.group(4)
            return
    newline = "\r\n" if lines[after].endswith("\r\n") else "\n"
    if not lines[after].endswith("\n"):  # the file's last line, without its newline
        lines[after] += newline
    lines.insert(after + 1, f"{key}={value}{newline}")


def write_cfg(path: str, target: Target, line: str, num: int) -> None:
    """Edit the anchors of the cfg's detection layer(s) in place, every other byte kept."""
    sections = read_cfg(path)
    text = Path(path).read_bytes().decode("utf-8")
    lines = text.split("\n")
    lines = [piece + "\n" for piece in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    starts = [s.line - 1 for s in sections] + [len(lines)]
    spans = {s.line - 1: (k, starts[k], starts[k + 1]) for k, s in enumerate(sections)}
    if target.kind == "yolo":
        heads = [spans[s.line - 1] for s in sections if s.kind == "yolo"]
    else:
        heads = [spans[target.layer.section.line - 1]]
    before = len(lines)
    for _, start, end in reversed(heads):
        _set_option(lines, start, end, "anchors", line, start)
    if target.kind == "region":
        k, start, end = heads[0]
        end += len(lines) - before  # the one head's section grew if anchors= was inserted
        anchors_at = next(i for i in range(start, end) if (m := _OPTION.match(lines[i])) and m.group(2) == "anchors")
        _set_option(lines, start, end, "num", str(num), anchors_at)
        layer = target.layer
        filters = num * (layer.classes + layer.coords + 1)
        previous = sections[k - 1] if k > 0 else None
        if previous is None or previous.kind not in ("convolutional", "conv"):
            raise DarknetError(f"{path}:{sections[k].line}: [region] does not follow a [convolutional]; cannot set its filters")
        if previous.get_int("filters", 1) != filters:
            p_start = previous.line - 1
            _set_option(lines, p_start, start, "filters", str(filters), p_start)
    write_atomic(path, "".join(lines).encode("utf-8"))


def plot_clusters(boxes: np.ndarray, anchors: np.ndarray, units: str, path: Path) -> None:
    """Scatter of the box sizes coloured by cluster, the anchors marked (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pydarknet.anchors import wh_iou

    shown = boxes[np.random.default_rng(0).permutation(len(boxes))[:20000]]
    cluster = wh_iou(shown, anchors).argmax(axis=1)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.scatter(shown[:, 0], shown[:, 1], c=cluster, s=3, cmap="tab10", alpha=0.4)
    ax.scatter(anchors[:, 0], anchors[:, 1], c="black", marker="x", s=80)
    ax.set(xlabel=f"width ({units})", ylabel=f"height ({units})", title=f"{len(anchors)} dimension clusters")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
