"""`-map` during training (AlexeyAB src/detector.c train_detector, its `calc_map`): when, what, the best.

When (`MapSchedule`): after the iteration that reaches `next_map_calc`, AlexeyAB's

    int calc_map_for_each = mAP_epochs * train_images_num / (net.batch * net.subdivisions);
    calc_map_for_each = fmax(calc_map_for_each, 100);
    int next_map_calc = iter_map + calc_map_for_each;
    next_map_calc = fmax(next_map_calc, net.burn_in);
    ...
    if (calc_map && (iteration >= next_map_calc || iteration == net.max_batches)) { iter_map = iteration; ...

i.e. every 4 epochs (mAP_epochs' default) of the train list counted in
iterations, at least 100 apart, not before burn_in, and after the last
iteration; `iter_map` starts at the run's first iteration (a resumed run
counts from where it resumes).

What (`TrainingMap.measure`): mAP@0.50 of the network as it is, on the
.data's `valid=` list (its `train=` list when there is none, as AlexeyAB's
`option_find_str(options, "valid", train_images)`), computed as `pydarknet map`
computes it for the cfg (pydarknet.eval.validation): in AlexeyAB's dialect
validate_detector_map's (thresh .005, hier_thresh 0, NMS .45, AP as the area
under the curve, the `map_points` 0 train_detector passes), in pjreddie's
(whose Darknet has no -map) the VOC devkit's 11-point AP.  The network runs
at the cfg's size (AlexeyAB resizes a random=1 net back to init_w x init_h
for it; here it is resized back to its training size after), 8 images a
forward, in eval mode (the rolling batch-norm statistics, as AlexeyAB's
net_map with the copied weights) without gradients: nothing of the training
changes, the run's weights are bit for bit those of a run without -map.
(AlexeyAB's own run also loads its next batch at init_w x init_h after a mAP;
pydarknet's multi-scale sizes keep their own schedule.)

The best (`TrainingMap.record`): `NAME_best.weights` is saved when a mAP is
>= the best of the run (`mean_average_precision >= best_map`); as in
AlexeyAB's, best_map starts at -1 in every process, so the first mAP after a
resume saves it whatever its value.  The lines are AlexeyAB's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pydarknet.cfg import read_data_file
from pydarknet.data import DataFile
from pydarknet.eval.truth import read_truth
from pydarknet.eval.validation import MAP_POINTS, detection_table, detections, read_valid_list, refuse_difficult, score
from pydarknet.infer.engine import InferenceModel
from pydarknet.network import Darknet

MAP_EPOCHS = 4  # AlexeyAB: find_int_arg(argc, argv, "-mAP_epochs", 4)
MIN_INTERVAL = 100  # calc_map_for_each = fmax(calc_map_for_each, 100)
IOU = 0.5  # AlexeyAB: find_float_arg(argc, argv, "-iou_thresh", .5)
MAP_BATCH = 8  # images a forward (AlexeyAB loads 4 at a time and forwards one)


@dataclass
class MapSchedule:
    """The iterations after which AlexeyAB's train_detector computes the mAP (see the module doc)."""

    interval: int  # calc_map_for_each
    burn_in: int
    max_batches: int
    last: int  # iter_map: the iteration of the last mAP, the run's first iteration before any

    @classmethod
    def for_run(cls, train_images: int, batch: int, burn_in: int, max_batches: int, start: int,
                epochs: int = MAP_EPOCHS) -> MapSchedule:
        """`batch`: images an iteration (AlexeyAB's `net.batch * net.subdivisions`); `start`: the run's first iteration."""
        return cls(max(epochs * train_images // batch, MIN_INTERVAL), burn_in, max_batches, start)

    def next(self) -> int:
        """next_map_calc = fmax(iter_map + calc_map_for_each, net.burn_in)."""
        return max(self.last + self.interval, self.burn_in)

    def due(self, iteration: int) -> bool:
        """`iteration >= next_map_calc || iteration == net.max_batches`."""
        return iteration >= self.next() or iteration == self.max_batches


class TrainingMap:
    """The mAP of the network in training on the valid list, its schedule, the last and the best (module doc)."""

    def __init__(self, net: Darknet, data: DataFile, schedule: MapSchedule, classes: int, quiet: bool = False) -> None:
        valid = data.valid or data.train
        assert valid is not None
        if net.dialect == "alexeyab":
            refuse_difficult(read_data_file(data.path))
        self.paths = read_valid_list(valid)
        self.labels: list[np.ndarray] = read_truth(self.paths, classes, net.dialect)  # a bad label file stops the run now
        self.classes = classes
        self.size = (net.width, net.height)  # the cfg's: AlexeyAB's init_w, init_h
        self.schedule = schedule
        self.quiet = quiet
        self.last = -1.0  # mean_average_precision
        self.best = -1.0  # best_map

    def status(self) -> list[str]:
        """AlexeyAB's lines before each iteration's progress line."""
        lines = [f"(next mAP calculation at {self.schedule.next()} iterations)"]
        if self.last > 0:
            lines.append(f"Last accuracy mAP@{IOU:0.2f} = {self.last * 100:2.2f} %, best = {self.best * 100:2.2f} %")
        return lines

    def measure(self, net: Darknet) -> float:
        """The mAP of `net` on the valid list at the cfg's size; `net` is left at its size, in training mode."""
        size = (net.width, net.height)
        if size != self.size:
            net.resize(*self.size)
        try:
            # a model of its own, freed after (the cached one would keep a copy of the weights through the run)
            found = detections(net, self.paths, "map", MAP_BATCH, InferenceModel(net), bar=None if self.quiet else "mAP")
            dets, sizes = detection_table(found)
        finally:
            if size != self.size:
                net.resize(*size)
        return score(dets, sizes, self.labels, self.classes, net.dialect, iou=IOU).mean_ap(MAP_POINTS[net.dialect])

    def record(self, value: float) -> tuple[bool, list[str]]:
        """Keep `value` as the last mAP; whether it is the best so far (>=), and AlexeyAB's lines saying so."""
        self.last = value
        lines = [f"mean_average_precision (mAP@{IOU:0.2f}) = {value:f}"]
        if value >= self.best:
            self.best = value
            lines.append("New best mAP!")
            return True, lines
        return False, lines
