"""The training options `pydarknet train` implements, and the refusal of the others.

A cfg written for AlexeyAB's Darknet may hold training-only keys (`[net] mosaic`,
`[yolo] iou_loss`, ...: pydarknet.cfg.dialect.TRAINING_ONLY).  Inference passes
those the trainer implements in silence and warns about the others; training
with those would silently train something other than what the cfg asks for, so
`start_network` refuses them here, before anything is built: one DarknetError
naming the cfg, line, column and key.

The trainer implements the training keys pjreddie's Darknet reads (its
`parse_*` functions; pydarknet's trainer reproduces them), in AlexeyAB's
dialect AlexeyAB's [yolo] loss keys (`ALEXEYAB_TRAINED`: iou_loss,
iou_normalizer, iou_thresh, ...; pydarknet.layers.yolo_alexeyab), its
learning-rate keys (policy=sgdr, sgdr_cycle, ...; pydarknet.train.policy),
`resize_step` (pydarknet.train.multiscale), `ema_alpha` (pydarknet.train.ema)
and, for a detector, its data augmentation keys (`ALEXEYAB_DETECTION_AUGMENT`:
flip, letter_box, mosaic, mosaic_bound, mixup, blur, gaussian_noise, cutmix,
[yolo] resize; pydarknet.data.sample_alexeyab), and accepts
AlexeyAB keys set to the value with which AlexeyAB trains as pjreddie does
(`TRAINING_NEUTRAL`, e.g. `mosaic=0`) and keys with no effect on any number
(`NO_EFFECT`: GPU memory, display, tracking).  The dialect is the cfg's own
(`choose_dialect(.., "auto")`, as `pydarknet train` builds the network).  A [region] head
trains with pjreddie's loss only: in AlexeyAB's dialect (whose forward_region_layer differs) it
is refused.
"""

from __future__ import annotations

from pathlib import Path

from pydarknet.cfg.dialect import (
    ALEXEYAB_DETECTION_AUGMENT,
    TRAINING,
    alexeyab_feature,
    canonical,
    choose_dialect,
    darknet_name,
    is_neutral,
    key_role,
    trainer_implements,
)
from pydarknet.cfg.net import NetOptions
from pydarknet.cfg.parser import read_cfg
from pydarknet.cfg.section import Option, Section
from pydarknet.data.sample_alexeyab import AlexeyabAugment
from pydarknet.errors import DarknetError
from pydarknet.train.multiscale import random_problem, resize_step_problem
from pydarknet.train.policy import schedule_problem

# Options Darknet trains with and pydarknet's trainer does not reproduce, refused unless set to the value that
# changes nothing (None: whatever the value); "*": in every layer section.
_NOT_TRAINED: dict[tuple[str, str], str | None] = {
    # AlexeyAB: share_index's layers each run update_convolutional_layer on the one set of shared weights
    ("convolutional", "share_index"): None,
    # onlyforward: no loss in that layer (the GPU [region]/[yolo], AlexeyAB's backward_network skips it);
    # truth=1: the layer's output becomes the truth of the next (network.c forward_network); smooth: the GPU's
    ("*", "onlyforward"): "0", ("*", "truth"): "0", ("*", "smooth"): "0",
    # the GPU build's [cost] ratio, thresh and noobj, and [crop]'s augmentation
    ("cost", "ratio"): "0", ("cost", "thresh"): "0", ("cost", "noobj"): "1",
    ("crop", "angle"): "0", ("crop", "saturation"): "1", ("crop", "exposure"): "1", ("crop", "shift"): "0",
    # Darknet's Adam update (update_*_layer with l.adam); pydarknet trains with its SGD only
    ("net", "adam"): "0",
    # letter_box=1: AlexeyAB's load_data_detection letterboxes the training images (implemented in AlexeyAB's
    # dialect for a detector, pydarknet.data.augment_alexeyab); pjreddie's loader stretches
    ("net", "letter_box"): "0",
}


def _not_trained(kind: str, opt: Option, dialect: str, detector: bool) -> bool:
    kind = canonical(kind)
    if dialect == "alexeyab" and detector and opt.key in ALEXEYAB_DETECTION_AUGMENT.get(kind, frozenset()):
        return False
    for key in ((kind, opt.key), ("*", opt.key) if kind != "net" else None):
        if key in _NOT_TRAINED:
            off = _NOT_TRAINED[key]
            return off is None or not is_neutral(opt.value, off)
    return False


def unimplemented_training_options(
    sections: list[Section], dialect: str, detector: bool = True
) -> list[tuple[Section, Option]]:
    """Every training option of the cfg that the trainer (a detector's or a classifier's) does not implement for
    `dialect`, with its section."""
    return [(section, opt) for section in sections for opt in section.options.values()
            if _not_trained(section.kind, opt, dialect, detector) or key_role(section.kind, opt.key) == TRAINING
            and not trainer_implements(section.kind, opt.key, opt.value, dialect, detector)]


# AlexeyAB's layers pydarknet runs at inference only: their losses are not implemented.
_NOT_TRAINED_SECTIONS = {"contrastive": "its contrastive loss", "gaussian_yolo": "its Gaussian YOLO loss"}


def check_training_cfg(cfg: str | Path, detector: bool = True) -> None:
    """Refuse to train a cfg with a layer or a training option pydarknet's trainer (a detector's, or a
    classifier's) does not implement, or with a learning-rate schedule or sizes Darknet could not run
    (policy.schedule_problem, multiscale.resize_step_problem, multiscale.random_problem)."""
    sections = read_cfg(cfg)
    for section in sections:
        loss = _NOT_TRAINED_SECTIONS.get(canonical(section.kind))
        if loss:
            raise DarknetError(f"{section.where()}: [{section.kind}] is AlexeyAB's and pydarknet train does not "
                               f"implement {loss}; pydarknet runs it at inference only")
    net = NetOptions.from_section(sections[0])
    problem = schedule_problem(net) or resize_step_problem(net.resize_step)
    if problem:
        raise DarknetError(f"{sections[0].where()}: [{sections[0].kind}] {problem}")
    dialect = choose_dialect(sections, "auto")[0]
    region = next((section for section in sections if canonical(section.kind) == "region"), None)
    if dialect == "alexeyab" and region is not None:
        raise DarknetError(
            f"{region.where()}: [region] in AlexeyAB's dialect: pydarknet train implements pjreddie's [region] "
            "loss, not AlexeyAB's forward_region_layer (its deltas differ: the logistic gradient inside, no 2 - w*h "
            f"box scale, classfix, focal_loss); the cfg is AlexeyAB's by {alexeyab_feature(sections)}; without "
            "AlexeyAB's keys it trains with pjreddie's")
    last = sections[-1]
    problem = random_problem(last.get_float("random", 0)) if dialect == "alexeyab" and last.has("random") else None
    if problem:
        raise DarknetError(f"{last.where(last.options['random'])}: [{last.kind}] {problem}")
    if detector and dialect == "alexeyab":
        AlexeyabAugment.from_sections(sections)  # refuses what AlexeyAB's load_data_detection stops on
    found = unimplemented_training_options(sections, dialect, detector)
    if not found:
        return
    (section, opt), others = found[0], [f"{o.key}={o.value}" for _, o in found[1:]]
    more = f" (and {len(others)} more: {', '.join(others[:6])}{', ...' if len(others) > 6 else ''})" if others else ""
    raise DarknetError(f"{section.where(opt)}: [{section.kind}] {opt.key}={opt.value}: pydarknet train does not "
                       f"implement training with this option of {darknet_name(section.kind, opt.key, opt.value)}{more}; "
                       "remove it (or set it off) to train here")
