"""The training options `pydarknet train` implements, and the refusal of the others.

A cfg written for AlexeyAB's Darknet may hold training-only keys (`[net] mosaic`,
`[yolo] iou_loss`, ...: pydarknet.cfg.dialect.TRAINING_ONLY).  Inference ignores
them with a warning; training with them would silently train something other
than what the cfg asks for, so `start_network` refuses them here, before
anything is built: one DarknetError naming the cfg, line, column and key.

The trainer implements the training keys pjreddie's Darknet reads (its
`parse_*` functions; pydarknet's trainer reproduces them), and accepts
AlexeyAB keys set to the value with which AlexeyAB trains as pjreddie does
(`TRAINING_NEUTRAL`, e.g. `mosaic=0`) and keys with no effect on any number
(`NO_EFFECT`: GPU memory, display, tracking).
"""

from __future__ import annotations

from pathlib import Path

from pydarknet.cfg.dialect import (
    TRAINING,
    canonical,
    darknet_name,
    key_role,
    trainer_implements,
)
from pydarknet.cfg.parser import read_cfg
from pydarknet.cfg.section import Option, Section
from pydarknet.errors import DarknetError

# Inference options whose training differs in AlexeyAB's Darknet and is not reproduced: share_index's layers
# each run update_convolutional_layer (src/convolutional_layer.c) on the one set of shared weights.
_NOT_TRAINED = {("convolutional", "share_index")}


def unimplemented_training_options(sections: list[Section]) -> list[tuple[Section, Option]]:
    """Every training option of the cfg that the trainer does not implement, with its section."""
    return [(section, opt) for section in sections for opt in section.options.values()
            if (canonical(section.kind), opt.key) in _NOT_TRAINED
            or key_role(section.kind, opt.key) == TRAINING and not trainer_implements(section.kind, opt.key, opt.value)]


# AlexeyAB's layers pydarknet runs at inference only: their losses are not implemented.
_NOT_TRAINED_SECTIONS = {"contrastive": "its contrastive loss", "gaussian_yolo": "its Gaussian YOLO loss"}


def check_training_cfg(cfg: str | Path) -> None:
    """Refuse to train a cfg with a layer or a training option pydarknet's trainer does not implement."""
    sections = read_cfg(cfg)
    for section in sections:
        loss = _NOT_TRAINED_SECTIONS.get(canonical(section.kind))
        if loss:
            raise DarknetError(f"{section.where()}: [{section.kind}] is AlexeyAB's and pydarknet train does not "
                               f"implement {loss}; pydarknet runs it at inference only")
    found = unimplemented_training_options(sections)
    if not found:
        return
    (section, opt), others = found[0], [f"{o.key}={o.value}" for _, o in found[1:]]
    more = f" (and {len(others)} more: {', '.join(others[:6])}{', ...' if len(others) > 6 else ''})" if others else ""
    raise DarknetError(f"{section.where(opt)}: [{section.kind}] {opt.key}={opt.value}: pydarknet train does not "
                       f"implement training with this option of {darknet_name(section.kind, opt.key, opt.value)}{more}; "
                       "remove it (or set it off) to train here")
