"""`pydarknet valid|map|recall DATA CFG WEIGHTS`: Darknet's `detector valid` result files, mAP, and `detector recall`.

Both run every image of the `.data` file's `valid=` list the way Darknet's
`validate_detector` does (pjreddie's: letterboxed, thresh .005, hier_thresh
.5, NMS .45; AlexeyAB's `valid`: thresh .001, NMS .6 with the last layer's
nms_kind, and its `map` (validate_detector_map): thresh .005, hier_thresh 0,
NMS .45; resized unless letter_box; pydarknet.eval.validation, which
`train --map` shares), in batches (the next one loaded and
letterboxed in a background thread), with the fast inference mode (pydarknet.infer.engine; compiled when the list is long)
and a progress bar.  `valid` writes Darknet's result files into
`results=` (default `results/`); `map` scores the detections against the
label files: AP per class, mAP@IoU (11-point, all-point, 101-point),
precision/recall/F1/average IoU at `--thresh` (the VOC devkit's rules on the
boxes clamped to the image, or in AlexeyAB's dialect its `detector map`'s on
Darknet's boxes: pydarknet.eval.alexeyab), and COCO mAP@[.5:.95] with
pycocotools (`--coco`, or `--coco-gt instances.json`).  `recall` prints
validate_detector_recall's lines (pydarknet.eval.recall).
"""

from __future__ import annotations

import argparse
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from pydarknet.cfg import read_data_file
from pydarknet.cfg.section import Section
from pydarknet.commands import verb_parser
from pydarknet.commands.arguments import (add_dialect, add_precision, apply_dialect, device, positive_int, precision_options,
                                         probability, save_calibration)
from pydarknet.convert import network_with_weights
from pydarknet.data.datafile import read_names
from pydarknet.errors import DarknetError
from pydarknet.eval.ap import INTERPOLATIONS, Evaluation
from pydarknet.eval.coco import coco_results, coco_stats, ground_truth_from_json, ground_truth_from_labels
from pydarknet.eval.results import ResultWriter, check_file_names, coco_image_id
from pydarknet.eval.truth import read_truth, truth_table
from pydarknet.eval.recall import RecallCount, batch_proposals
from pydarknet.eval.validation import (MAP_POINTS, Found, detection_table, detections, pixel_table, read_valid_list,
                                       refuse_difficult, score)
from pydarknet.image import load_frame, resize_frame
from pydarknet.infer.detect import predict
from pydarknet.infer.engine import InferenceModel, compile_pays_back
from pydarknet.infer.prefetch import batched, prefetch
from pydarknet.weights import write_atomic


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="Darknet .data file (valid=, names=, results=, eval=)")
    p.add_argument("cfg", help="Darknet .cfg file")
    p.add_argument("weights", help=".weights file (or a .pt/.h5 made by pydarknet convert)")
    p.add_argument("--batch", type=positive_int, default=8, help="images per forward pass (default 8)")
    p.add_argument("--device", type=device, default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the network (default: when the valid list is long enough to pay back; int8 always)")
    add_dialect(p, inference=True)
    add_precision(p, "the .data file's train= images (else valid=)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = verb_parser(sub, "valid")
    _common(p)
    p.add_argument("--out", help="result file name prefix (Darknet's -out; default comp4_det_test_ / coco_results)")
    p.set_defaults(run=run_valid)
    p = verb_parser(sub, "map")
    _common(p)
    p.add_argument("--iou", "--iou_thresh", "--iou-thresh", dest="iou", type=probability, default=0.5,
                   help="IoU for a true positive (default .5; AlexeyAB's -iou_thresh)")
    p.add_argument("--points", type=int, choices=INTERPOLATIONS, default=None,
                   help="AP interpolation: 11 (VOC2007), 0 (all-point, VOC2010+), 101 (COCO); the table's column "
                        "(default 11, in AlexeyAB's dialect 0 as its -points)")
    p.add_argument("--thresh", type=probability, default=0.25, help="score threshold for precision/recall/F1/TP/FP (default .25)")
    p.add_argument("--coco", action="store_true", help="also COCO mAP@[.5:.95] (pycocotools) with the label files as ground truth")
    p.add_argument("--coco-gt", metavar="JSON", help="COCO mAP@[.5:.95] against this annotation file (image ids from file names)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--plot", metavar="DIR", help="write a precision-recall curve PNG per class into DIR")
    p.set_defaults(run=run_map)
    p = verb_parser(sub, "recall", description=RECALL_DESCRIPTION)
    p.add_argument("data", help="Darknet .data file (valid=)")
    p.add_argument("cfg", help="Darknet .cfg file")
    p.add_argument("weights", help=".weights file (or a .pt/.h5 made by pydarknet convert)")
    p.add_argument("--batch", type=positive_int, default=8, help="images per forward pass (default 8)")
    p.add_argument("--device", type=device, default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    add_dialect(p)
    p.set_defaults(run=run_recall)


class ValidSet:
    """What `validate_detector` reads: the `.data` options, the image list, the names, the network,
    and the thresholds of `verb` ("valid" or "map") in the network's dialect."""

    def __init__(self, args: argparse.Namespace, verb: str) -> None:
        if args.batch < 1:
            raise DarknetError(f"--batch {args.batch}: must be at least 1")
        self.data = read_data_file(args.data)
        self.paths = read_valid_list(self.data.get_path("valid"))
        self.names_path = self.data.get_path("names")
        self.names = read_names(self.names_path)
        self.results = self.data.get_path_text("results", "results")
        self.coco = self.data.get_str("eval", "voc") == "coco"
        self.net = apply_dialect(network_with_weights(args.cfg, args.weights), args)
        if self.net.dialect == "alexeyab":
            _refuse_what_alexeyab_reads_otherwise(args, self.data, verb)
        self.net.eval().to(torch.device(args.device))
        head = self.net.layers[self.net.output_indices[-1]]  # AlexeyAB: the last [yolo]/[Gaussian_yolo]/[region]
        self.classes = int(getattr(head, "classes", 0))
        if self.classes < 1:
            raise DarknetError(f"{args.cfg}: the last layer is [{head.kind}], not a detection layer")
        if len(self.names) < self.classes:
            raise DarknetError(f"{args.data}: names file has {len(self.names)} names, the network {self.classes} classes")
        self.batch = args.batch
        self.verb = verb
        compile = args.compile if args.compile is not None else compile_pays_back(len(self.paths))
        self.model = InferenceModel(self.net, compile=compile, in_place=True, **precision_options(args, args.data))
        save_calibration(self.model, args)

    def detections(self) -> Iterator[Found]:
        """(path, width, height, boxes (N, 4) relative x y w h, probs (N, classes)) per image, in list order
        (pydarknet.eval.validation.detections, with the fast inference model)."""
        return detections(self.net, self.paths, self.verb, self.batch, model=self.model)


def _refuse_what_alexeyab_reads_otherwise(args: argparse.Namespace, data: Section, verb: str) -> None:
    """What AlexeyAB's validate_detector / validate_detector_map do with an option that pydarknet does not
    reproduce: refused, so that no number differs silently."""
    if args.letter_box:
        raise DarknetError("--letter-box: AlexeyAB's detector valid and map ignore -letter_box (they letterbox only "
                           "with [net] letter_box=1 in the cfg); set that instead")
    if verb == "map":
        refuse_difficult(data)


RECALL_DESCRIPTION = (
    "validate_detector_recall: each image of valid= resized to the network, proposals = the boxes left by "
    "do_nms_obj(.4) with objectness > .001; a label box is found when its best IoU with a proposal is > .5. "
    "Prints Darknet's line after every image (on stdout; Darknet prints it on stderr). The label files are where "
    "the dialect's `map` reads them.")


def run_recall(args: argparse.Namespace) -> int:
    data = read_data_file(args.data)
    paths = read_valid_list(data.get_path("valid"))
    net = apply_dialect(network_with_weights(args.cfg, args.weights), args).eval().to(torch.device(args.device))
    head = net.layers[net.output_indices[-1]]
    if int(getattr(head, "classes", 0)) < 1:
        raise DarknetError(f"{args.cfg}: the last layer is [{head.kind}], not a detection layer")
    labels = read_truth(paths, head.classes, net.dialect)

    def load(chunk: list[str]) -> torch.Tensor:  # C: resize_image(load_image(path), net.w, net.h), never a letterbox
        return torch.from_numpy(np.stack([resize_frame(load_frame(p), net.width, net.height) for p in chunk]))

    count, model = RecallCount(), InferenceModel(net, in_place=True)
    for batch in prefetch(map(load, batched(paths, args.batch))):
        for proposals in batch_proposals(net, predict(net, batch, model)):
            count.add(proposals, labels[count.images][:, 1:5].astype(np.float32))
            print(count.line(), flush=True)
    return 0


def run_valid(args: argparse.Namespace) -> int:
    vs = ValidSet(args, "valid")
    with ResultWriter(vs.results, vs.names[:vs.classes], coco=vs.coco, outfile=args.out, names_path=vs.names_path) as writer:
        for path, width, height, boxes, probs in vs.detections():
            writer.add(path, boxes, probs, width, height)
    print(f"{writer.written} detections of {len(vs.paths)} images written to {'; '.join(map(str, writer.targets[:1]))}"
          f"{' ...' if len(writer.targets) > 1 else ''}")
    return 0


def run_map(args: argparse.Namespace) -> int:
    if not 0 < args.iou < 1:
        raise DarknetError(f"--iou {args.iou}: must be between 0 and 1")
    vs = ValidSet(args, "map")
    if args.plot:
        check_file_names(vs.names[:vs.classes], vs.names_path)  # pr_<name>.png
    labels = read_truth(vs.paths, vs.classes, vs.net.dialect)
    boxes, sizes = detection_table(vs.detections())
    ev = score(boxes, sizes, labels, vs.classes, vs.net.dialect, iou=args.iou, thresh=args.thresh)
    coco = None
    if args.coco_gt or args.coco:  # the pixel boxes again: score() keeps its own
        if args.coco_gt:
            ids = [coco_image_id(p) for p in vs.paths]
            truth = ground_truth_from_json(args.coco_gt)
        else:
            ids = list(range(1, len(vs.paths) + 1))
            truth = ground_truth_from_labels(truth_table(labels, sizes), sizes, vs.classes, ids)
        coco = coco_stats(truth, coco_results(pixel_table(boxes, sizes), vs.classes, ids), ids)
    names = vs.names[:vs.classes]
    points = args.points if args.points is not None else MAP_POINTS[vs.net.dialect]
    print(json.dumps(report(ev, names, points, coco), indent=1) if args.json else format_table(ev, names, points, coco))
    if args.plot:
        plot_curves(ev, names, Path(args.plot))
    return 0


def _number(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def report(ev: Evaluation, names: list[str], points: int, coco: dict[str, float] | None) -> dict:
    """The numbers of `map` as a JSON-ready dict (NaN AP, a class without ground truth, as null)."""
    return {
        "method": ev.method, "iou": ev.iou, "thresh": ev.thresh, "points": points,
        "map": {str(p): ev.mean_ap(p) for p in INTERPOLATIONS},
        "classes": [{"name": n, "ap": {str(p): _number(ev.ap[p][c]) for p in INTERPOLATIONS}, "ground_truth": int(ev.positives[c]),
                     "detections": int(ev.detections[c]), "tp": int(ev.tp[c]), "fp": int(ev.fp[c])} for c, n in enumerate(names)],
        "precision": ev.precision, "recall": ev.recall, "f1": ev.f1, "average_iou": ev.average_iou,
        "tp": int(ev.tp.sum()), "fp": int(ev.fp.sum()), "fn": int(ev.positives.sum() - ev.tp.sum()),
        "coco": coco,
    }


def format_table(ev: Evaluation, names: list[str], points: int, coco: dict[str, float] | None) -> str:
    """A readable table: one row per class, then the means and the threshold figures."""
    label = {11: "11-point", 0: "all-point", 101: "101-point"}
    width = max(12, *map(len, names))
    header = f"{'class':<{width}s}  {'AP':>7s}  {'truth':>6s}  {'dets':>7s}  {'TP':>6s}  {'FP':>6s}"
    lines = [f"{header}   (AP {label[points]} at IoU {ev.iou:g}; TP/FP at score {ev.compare} {ev.thresh:g}; {ev.method})"]
    for c, name in enumerate(names):
        ap = ev.ap[points][c]
        shown = "      -" if math.isnan(ap) else f"{100 * ap:6.2f}%"
        lines.append(f"{name:<{width}s}  {shown}  {ev.positives[c]:6d}  {ev.detections[c]:7d}  {ev.tp[c]:6d}  {ev.fp[c]:6d}")
    lines.append("")
    lines.append(f"mAP@{ev.iou:g}: " + ", ".join(f"{100 * ev.mean_ap(p):.2f}% ({label[p]})" for p in INTERPOLATIONS))
    lines.append(f"at score {ev.compare} {ev.thresh:g}: precision {ev.precision:.4f}, recall {ev.recall:.4f}, F1 {ev.f1:.4f}, "
                 f"TP {int(ev.tp.sum())}, FP {int(ev.fp.sum())}, FN {int(ev.positives.sum() - ev.tp.sum())}, "
                 f"average IoU {100 * ev.average_iou:.2f}%")
    if coco is not None:
        lines.append("COCO (pycocotools): " + ", ".join(f"{k} {v:.4f}" for k, v in coco.items()))
    return "\n".join(lines)


def plot_curves(ev: Evaluation, names: list[str], directory: Path) -> None:
    """One precision-recall PNG per class, `DIR/pr_<name>.png` (each written to a temp file, then renamed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    for c, name in enumerate(names):
        precision, recall = ev.curves[c]
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot(recall, precision, drawstyle="steps-post")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision",
               title=f"{name}: AP {100 * np.nan_to_num(ev.ap[0][c]):.2f}% (all-point, IoU {ev.iou:g})")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        plt.close(fig)
        write_atomic(directory / f"pr_{name}.png", buffer.getvalue())
