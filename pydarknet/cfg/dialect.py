"""The two Darknets a cfg can be written for, and which one a cfg needs.

pjreddie/darknet (v1, v2, v3, 9000) and AlexeyAB/darknet (v4, v4-tiny,
v7-tiny, ...; the reference is commit 59596d78, as the AlexeyAB goldens)
read one cfg format, but AlexeyAB's parser (src/parser.c) knows more
sections and more keys, and where both read a cfg they compute some numbers
differently (tests/golden-alexeyab/README.md): the preprocessing (AlexeyAB
stretches the image with `resize_image` unless `letter_box=1`), batch norm
at inference (`sqrt(var + .00001)`, folded by `fuse_conv_batchnorm`, against
pjreddie's `sqrt(var) + .000001`), the box correction, and NMS (the kind
named by the last `[yolo]`).

`dialect="auto"` picks AlexeyAB's when the cfg has a section or a key that
only AlexeyAB's parser reads (`alexeyab_feature`), else pjreddie's.  The
tables below are the difference of the two parsers' `option_find*` calls,
function by function (parse_net_options, parse_convolutional, ...; the
per-layer options of parse_network_cfg(_custom) under "*").
"""

from __future__ import annotations

from pydarknet.cfg.section import Section
from pydarknet.errors import CfgError

DIALECTS = ("pjreddie", "alexeyab")
CHOICES = ("auto", *DIALECTS)

# AlexeyAB src/parser.c string_to_layer_type, less pjreddie's (section names lower-cased, as pydarknet reads them).
ALEXEYAB_SECTIONS = frozenset({
    "scale_channels", "sam", "gaussian_yolo", "conv_lstm", "history", "local_avg", "local_avgpool", "reorg3d",
    "contrastive", "empty", "silence", "implicit",
})

# Keys AlexeyAB's parser reads in a section and pjreddie's does not ("*": every layer section).
ALEXEYAB_KEYS: dict[str, frozenset[str]] = {
    "net": frozenset({
        "adversarial_lr", "attention", "augment_speed", "badlabels_rejection_percentage", "blur", "contrastive",
        "contrastive_color", "contrastive_jit_flip", "cutmix", "dynamic_minibatch", "ema_alpha", "equidistant_point",
        "flip", "gaussian_noise", "label_smooth_eps", "learning_rate_min", "letter_box", "loss_scale", "max_chart_loss",
        "mixup", "mosaic", "mosaic_bound", "num_sigmas_reject_badlabels", "optimized_memory", "resize_step",
        "seq_scales", "sequential_subdivisions", "sgdr_cycle", "sgdr_mult", "track", "try_fix_nan", "unsupervised",
        "use_cuda_graph", "weights_reject_freq", "workspace_size_limit_MB",
    }),
    "*": frozenset({"burnin_update", "clip", "dont_update", "show_receptive_field", "train_only_bn"}),
    "convolutional": frozenset({
        "angle", "antialiasing", "assisted_excitation", "bin_output", "cbn", "coordconv", "dilation", "grad_centr",
        "reverse", "rotate", "share_index", "stream", "stretch", "stretch_sway", "stride_x", "stride_y", "sway",
        "wait_stream",
    }),
    "crnn": frozenset({"dilation", "groups", "hidden", "output", "pad", "padding", "size", "stride", "xnor"}),
    "detection": frozenset({"resize"}),
    "dropout": frozenset({"dropblock", "dropblock_size_abs", "dropblock_size_rel"}),
    "maxpool": frozenset({"antialiasing", "maxpool_depth", "maxpool_zero_nonmax", "out_channels", "stride_x", "stride_y"}),
    "region": frozenset({"focal_loss", "resize"}),
    "rnn": frozenset({"hidden", "logistic"}),
    "route": frozenset({"group_id", "groups", "stream", "wait_stream"}),
    "shortcut": frozenset({"weights_normalization", "weights_type"}),
    "yolo": frozenset({
        "beta_nms", "cls_normalizer", "counters_per_class", "delta_normalizer", "dets_for_show", "dets_for_track",
        "embedding_layer", "focal_loss", "iou_loss", "iou_normalizer", "iou_thresh", "iou_thresh_kind",
        "label_smooth_eps", "max_delta", "new_coords", "nms_kind", "obj_normalizer", "objectness_smooth", "resize",
        "scale_x_y", "show_details", "sim_thresh", "track_ciou_norm", "track_history_size",
    }),
}

# Values of keys both parsers read that only AlexeyAB's knows (pjreddie's get_policy: "Couldn't find policy").
ALEXEYAB_VALUES: dict[str, dict[str, frozenset[str]]] = {"net": {"policy": frozenset({"sgdr"})}}

# Section names as spelled in cfgs -> the name the tables use.
_CANONICAL = {"conv": "convolutional", "max": "maxpool", "network": "net"}

# AlexeyAB's activations (src/activations.c get_activation) that pjreddie's does not have.
ALEXEYAB_ACTIVATIONS = frozenset({
    "swish", "mish", "hard_mish", "normalize_channels", "normalize_channels_softmax",
    "normalize_channels_softmax_maxval", "relu6", "gelu", "revleaky",
})


def alexeyab_feature(sections: list[Section]) -> str | None:
    """Where the cfg first uses something only AlexeyAB's Darknet reads (`file:line:col: [kind] key=value`), or None."""
    for section in sections:
        kind = _CANONICAL.get(section.kind, section.kind)
        if kind in ALEXEYAB_SECTIONS:
            return f"{section.where()}: [{section.kind}]"
        keys = ALEXEYAB_KEYS.get(kind, frozenset()) | (ALEXEYAB_KEYS["*"] if kind != "net" else frozenset())
        for opt in section.options.values():
            alexeyab_values = ALEXEYAB_VALUES.get(kind, {}).get(opt.key, frozenset())
            if opt.key in keys or opt.value in alexeyab_values or (
                    opt.key == "activation" and opt.value in ALEXEYAB_ACTIVATIONS):
                return f"{section.where(opt)}: [{section.kind}] {opt.key}={opt.value}"
    return None


def choose_dialect(sections: list[Section], dialect: str) -> tuple[str, str]:
    """(dialect, why): the one asked for, or for "auto" AlexeyAB's when the cfg uses anything only it reads."""
    if dialect not in CHOICES:
        raise CfgError(f"dialect '{dialect}': expected one of {', '.join(CHOICES)}")
    if dialect != "auto":
        return dialect, "asked for"
    feature = alexeyab_feature(sections)
    if feature is not None:
        return "alexeyab", f"auto: {feature} is read by AlexeyAB's Darknet only"
    return "pjreddie", "auto: nothing in the cfg is AlexeyAB's only"


# ---------------------------------------------------------------------------------------------------------------
# Which keys each Darknet reads, and what they are for ("never silently different", issue #18 part 3).
#
# READS_*: every key the parser's option_find* calls read, per section (pjreddie src/parser.c at f6afaab,
# AlexeyAB src/parser.c at 59596d78; "*" = the per-layer options parse_network_cfg(_custom) reads for every
# layer section).  A key a Darknet reads is one of:
#   - inference: it changes a layer's output, the boxes, or the weights loaded (the default: not in the tables
#     below).  pydarknet must implement it, else the cfg is refused (network._report_unused).
#   - TRAINING_ONLY: read by the C only in training or data loading (backward, update, the loss and its
#     deltas, augmentation, the learning-rate schedule, truth handling) -- checked in the C: the field is not
#     used by forward_*_layer with state.train = 0, get_*_detections, or load_weights.  No effect at
#     inference: silent there when `pydarknet train` implements it (trainer_implements), else a warning there
#     and a refusal at `pydarknet train` (pydarknet.train.options).
#   - NO_EFFECT: changes neither the numbers of inference nor of training (GPU streams and memory, CUDA
#     graphs, display, video tracking in `detector demo`): a warning at inference, accepted by train.
# ---------------------------------------------------------------------------------------------------------------

_LAYER_COMMON_PJREDDIE = frozenset({"truth", "onlyforward", "stopbackward", "dontsave", "dontload", "numload",
                                    "dontloadscales", "learning_rate", "smooth"})
_LAYER_COMMON_ALEXEYAB = frozenset({"show_receptive_field", "clip", "onlyforward", "dont_update", "burnin_update",
                                    "stopbackward", "train_only_bn", "dontload", "dontloadscales", "learning_rate"})

READS_PJREDDIE: dict[str, frozenset[str]] = {
    "*": _LAYER_COMMON_PJREDDIE,
    "net": frozenset({
        "batch", "learning_rate", "momentum", "decay", "subdivisions", "time_steps", "notruth", "random", "adam",
        "B1", "B2", "eps", "height", "width", "channels", "inputs", "max_crop", "min_crop", "max_ratio", "min_ratio",
        "center", "clip", "angle", "aspect", "saturation", "exposure", "hue", "policy", "burn_in", "power", "step",
        "scale", "steps", "scales", "gamma", "max_batches",
    }),
    "activation": frozenset({"activation"}),
    "avgpool": frozenset(),
    "batchnorm": frozenset(),
    "connected": frozenset({"output", "activation", "batch_normalize"}),
    "convolutional": frozenset({"filters", "size", "stride", "pad", "padding", "groups", "activation",
                                "batch_normalize", "binary", "xnor", "flipped", "dot"}),
    "cost": frozenset({"type", "scale", "ratio", "noobj", "thresh"}),
    "crnn": frozenset({"output_filters", "hidden_filters", "activation", "batch_normalize", "shortcut"}),
    "crop": frozenset({"crop_height", "crop_width", "flip", "angle", "saturation", "exposure", "noadjust", "shift"}),
    "deconvolutional": frozenset({"filters", "size", "stride", "activation", "batch_normalize", "pad", "padding"}),
    "detection": frozenset({"coords", "classes", "rescore", "num", "side", "softmax", "sqrt", "max", "coord_scale",
                            "forced", "object_scale", "noobject_scale", "class_scale", "jitter", "random", "reorg"}),
    "dropout": frozenset({"probability"}),
    "gru": frozenset({"output", "batch_normalize", "tanh"}),
    "iseg": frozenset({"classes", "ids"}),
    "l2norm": frozenset(),
    "local": frozenset({"filters", "size", "stride", "pad", "activation"}),
    "logistic": frozenset(),
    "lstm": frozenset({"output", "batch_normalize"}),
    "maxpool": frozenset({"stride", "size", "padding"}),
    "normalization": frozenset({"alpha", "beta", "kappa", "size"}),
    "region": frozenset({"coords", "classes", "num", "log", "sqrt", "softmax", "background", "max", "jitter",
                         "rescore", "thresh", "classfix", "absolute", "random", "coord_scale", "object_scale",
                         "noobject_scale", "mask_scale", "class_scale", "bias_match", "tree", "map", "anchors"}),
    "reorg": frozenset({"stride", "reverse", "flatten", "extra"}),
    "rnn": frozenset({"output", "activation", "batch_normalize", "shortcut"}),
    "route": frozenset({"layers"}),
    "shortcut": frozenset({"from", "activation", "alpha", "beta"}),
    "softmax": frozenset({"groups", "temperature", "tree", "spatial", "noloss"}),
    "upsample": frozenset({"stride", "scale"}),
    "yolo": frozenset({"classes", "num", "mask", "max", "jitter", "ignore_thresh", "truth_thresh", "random", "map",
                       "anchors"}),
}

_YOLO_ALEXEYAB = frozenset({
    "classes", "num", "mask", "max", "show_details", "max_delta", "counters_per_class", "label_smooth_eps",
    "scale_x_y", "objectness_smooth", "iou_normalizer", "obj_normalizer", "cls_normalizer", "delta_normalizer",
    "iou_loss", "iou_thresh_kind", "beta_nms", "nms_kind", "jitter", "resize", "ignore_thresh", "truth_thresh",
    "iou_thresh", "random", "map", "anchors",
})

READS_ALEXEYAB: dict[str, frozenset[str]] = {
    "*": _LAYER_COMMON_ALEXEYAB,
    "net": frozenset({
        "max_batches", "batch", "learning_rate", "learning_rate_min", "sgdr_cycle", "sgdr_mult", "momentum", "decay",
        "subdivisions", "time_steps", "track", "augment_speed", "sequential_subdivisions", "try_fix_nan",
        "weights_reject_freq", "equidistant_point", "badlabels_rejection_percentage", "num_sigmas_reject_badlabels",
        "ema_alpha", "use_cuda_graph", "loss_scale", "dynamic_minibatch", "optimized_memory",
        "workspace_size_limit_MB", "adam", "B1", "B2", "eps", "height", "width", "channels", "inputs", "max_crop",
        "min_crop", "flip", "blur", "gaussian_noise", "mixup", "cutmix", "mosaic", "letter_box", "mosaic_bound",
        "contrastive", "contrastive_jit_flip", "contrastive_color", "unsupervised", "label_smooth_eps", "resize_step",
        "attention", "adversarial_lr", "max_chart_loss", "angle", "aspect", "saturation", "exposure", "hue", "power",
        "policy", "burn_in", "step", "scale", "steps", "scales", "seq_scales", "gamma",
    }),
    "activation": frozenset({"activation"}),
    "avgpool": frozenset(),
    "batchnorm": frozenset(),
    "connected": frozenset({"output", "activation", "batch_normalize"}),
    "contrastive": frozenset({"classes", "yolo_layer", "temperature", "cls_normalizer", "max_delta",
                              "contrastive_neg_max"}),
    "conv_lstm": frozenset({"size", "stride", "dilation", "pad", "padding", "output", "groups", "activation",
                            "batch_normalize", "xnor", "peephole", "bottleneck", "state_constrain", "shortcut",
                            "lstm_activation", "time_normalizer"}),
    "convolutional": frozenset({
        "filters", "groups", "size", "stride", "stride_x", "stride_y", "dilation", "antialiasing", "pad", "padding",
        "activation", "assisted_excitation", "share_index", "batch_normalize", "cbn", "binary", "xnor", "bin_output",
        "sway", "rotate", "stretch", "stretch_sway", "flipped", "dot", "angle", "grad_centr", "reverse", "coordconv",
        "stream", "wait_stream",
    }),
    "cost": frozenset({"type", "scale", "ratio"}),
    "crnn": frozenset({"size", "stride", "dilation", "pad", "padding", "output", "hidden", "groups", "activation",
                       "batch_normalize", "xnor", "shortcut"}),
    "crop": frozenset({"crop_height", "crop_width", "flip", "angle", "saturation", "exposure", "noadjust", "shift"}),
    "detection": frozenset({"coords", "classes", "rescore", "num", "side", "softmax", "sqrt", "max", "coord_scale",
                            "forced", "object_scale", "noobject_scale", "class_scale", "jitter", "resize", "random",
                            "reorg"}),
    "dropout": frozenset({"probability", "dropblock", "dropblock_size_rel", "dropblock_size_abs"}),
    "empty": frozenset(),
    "gaussian_yolo": (_YOLO_ALEXEYAB - {"show_details"}) | {"uc_normalizer", "yolo_point"},
    "gru": frozenset({"output", "batch_normalize"}),
    "history": frozenset({"history_size"}),
    "implicit": frozenset({"mean", "std", "filters", "atoms"}),
    "local": frozenset({"filters", "size", "stride", "pad", "activation"}),
    "local_avgpool": frozenset({"stride", "stride_x", "stride_y", "size", "padding"}),
    "lstm": frozenset({"output", "batch_normalize"}),
    "maxpool": frozenset({"stride", "stride_x", "stride_y", "size", "padding", "maxpool_depth", "out_channels",
                          "antialiasing", "maxpool_zero_nonmax"}),
    "normalization": frozenset({"alpha", "beta", "kappa", "size"}),
    "region": frozenset({"coords", "classes", "num", "max", "log", "sqrt", "softmax", "focal_loss", "jitter", "resize",
                         "rescore", "thresh", "classfix", "absolute", "random", "coord_scale", "object_scale",
                         "noobject_scale", "mask_scale", "class_scale", "bias_match", "tree", "map", "anchors"}),
    "reorg": frozenset({"stride", "reverse"}),  # AlexeyAB's [reorg] is make_reorg_old_layer
    "reorg3d": frozenset({"stride", "reverse"}),
    "rnn": frozenset({"output", "hidden", "activation", "batch_normalize", "logistic", "shortcut"}),
    "route": frozenset({"layers", "groups", "group_id", "stream", "wait_stream"}),
    "sam": frozenset({"from", "activation"}),
    "scale_channels": frozenset({"from", "scale_wh", "activation"}),
    "shortcut": frozenset({"activation", "weights_type", "weights_normalization", "from"}),
    "softmax": frozenset({"groups", "temperature", "tree", "spatial", "noloss"}),
    "upsample": frozenset({"stride", "scale"}),
    "yolo": _YOLO_ALEXEYAB | {"new_coords", "focal_loss", "track_history_size", "sim_thresh", "dets_for_track",
                              "dets_for_show", "track_ciou_norm", "embedding_layer"},
}

_LOSS_YOLO = frozenset({
    "max", "max_delta", "counters_per_class", "label_smooth_eps", "objectness_smooth", "iou_normalizer",
    "obj_normalizer", "cls_normalizer", "delta_normalizer", "uc_normalizer", "iou_loss", "iou_thresh_kind",
    "jitter", "resize", "focal_loss", "ignore_thresh", "truth_thresh", "iou_thresh", "random",
})

# Read only by training / data loading (see the header above); per section, "*" = every layer section.
TRAINING_ONLY: dict[str, frozenset[str]] = {
    "*": frozenset({"truth", "onlyforward", "stopbackward", "dontsave", "learning_rate", "smooth", "clip",
                    "dont_update", "burnin_update", "train_only_bn"}),
    "net": (READS_PJREDDIE["net"] | READS_ALEXEYAB["net"]) - {
        "height", "width", "channels", "inputs", "letter_box",
        # batch: the network is built at batch 1 for inference by both; time_steps: recurrent layers' unroll
        "batch", "subdivisions", "time_steps",
    },
    "convolutional": frozenset({"assisted_excitation", "cbn", "sway", "rotate", "stretch", "stretch_sway", "angle",
                                "grad_centr", "reverse", "dot"}),
    "maxpool": frozenset({"maxpool_zero_nonmax"}),
    "dropout": frozenset({"probability", "dropblock", "dropblock_size_rel", "dropblock_size_abs"}),
    "crop": frozenset({"flip", "angle", "saturation", "exposure", "shift"}),
    "cost": frozenset({"type", "scale", "ratio", "noobj", "thresh"}),
    "softmax": frozenset({"noloss"}),
    "implicit": frozenset({"mean", "std"}),
    "contrastive": READS_ALEXEYAB["contrastive"],
    "detection": frozenset({"rescore", "max", "coord_scale", "forced", "object_scale", "noobject_scale", "class_scale",
                            "jitter", "resize", "random", "reorg"}),
    "region": frozenset({"max", "log", "sqrt", "focal_loss", "jitter", "resize", "rescore", "thresh", "classfix",
                         "absolute", "random", "coord_scale", "object_scale", "noobject_scale", "mask_scale",
                         "class_scale", "bias_match"}),
    "yolo": (_LOSS_YOLO - {"uc_normalizer"}) | {"show_details"},  # show_details: the cost forward_yolo_layer reports
    # map: parse_gaussian_yolo reads it into l.map, used only by the loss (get_gaussian_yolo_detections ignores it)
    "gaussian_yolo": (_LOSS_YOLO - {"focal_loss"}) | {"map"},
}

# Neither inference nor training numbers: GPU memory/streams, display, `detector demo` tracking.
NO_EFFECT: dict[str, frozenset[str]] = {
    "*": frozenset({"show_receptive_field"}),
    "net": frozenset({"use_cuda_graph", "loss_scale", "optimized_memory", "workspace_size_limit_MB",
                      "max_chart_loss"}),
    "convolutional": frozenset({"stream", "wait_stream"}),
    "route": frozenset({"stream", "wait_stream"}),
    # embedding_layer: the embeddings get_yolo_detections copies out for `detector demo`'s tracking
    "yolo": frozenset({"track_history_size", "sim_thresh", "dets_for_track", "dets_for_show", "track_ciou_norm",
                       "embedding_layer"}),
}

# [net] values with which AlexeyAB's training does what pjreddie's (and pydarknet's trainer) does.
TRAINING_NEUTRAL: dict[str, dict[str, str]] = {
    "net": {key: "0" for key in ("mosaic", "cutmix", "mixup", "blur", "gaussian_noise", "label_smooth_eps",
                                 "ema_alpha", "track", "contrastive", "unsupervised", "attention", "adversarial_lr",
                                 "dynamic_minibatch", "try_fix_nan", "equidistant_point",
                                 "badlabels_rejection_percentage", "num_sigmas_reject_badlabels")},
    # resize: load_data_detection's extra random crop scale
    "yolo": {"resize": "1"},
}

# AlexeyAB's training keys pydarknet's trainer implements in AlexeyAB's dialect: its [yolo] loss keys
# (pydarknet.layers.yolo_alexeyab; pjreddie's loss has none of them: Yolo.delta refuses them in pjreddie's dialect),
# its learning-rate policies with policy=sgdr (pydarknet.train.policy), its multi-scale rounding
# (pydarknet.train.multiscale), its EMA of the weights (pydarknet.train.ema).
ALEXEYAB_TRAINED: dict[str, frozenset[str]] = {
    "net": frozenset({"policy", "learning_rate_min", "sgdr_cycle", "sgdr_mult", "resize_step", "ema_alpha"}),
    "yolo": frozenset({"iou_loss", "iou_normalizer", "obj_normalizer", "cls_normalizer", "iou_thresh", "iou_thresh_kind",
                       "max_delta", "counters_per_class", "label_smooth_eps", "objectness_smooth", "focal_loss",
                       "show_details", "delta_normalizer"}),
}

# AlexeyAB's load_data_detection keys pydarknet's detector training implements in AlexeyAB's dialect
# (pydarknet.data.sample_alexeyab); a classifier's training does not read them there (refused unless neutral).
# cutmix: load_data_detection turns it off ("cutmix=1 - isn't supported for Detector"), with mosaic=1 too.
ALEXEYAB_DETECTION_AUGMENT: dict[str, frozenset[str]] = {
    "net": frozenset({"blur", "cutmix", "flip", "gaussian_noise", "letter_box", "mixup", "mosaic", "mosaic_bound"}),
    "yolo": frozenset({"resize"}),
}

# Every alias a cfg may spell a section with -> the name the tables use.
_CANONICAL.update({"avg": "avgpool", "soft": "softmax", "lrn": "normalization", "conn": "connected",
                   "deconv": "deconvolutional", "local_avg": "local_avgpool", "silence": "empty"})

INFERENCE, TRAINING, HARMLESS = "inference", "training", "no effect"


def canonical(kind: str) -> str:
    return _CANONICAL.get(kind, kind)


def _table(table: dict[str, frozenset[str]], kind: str) -> frozenset[str]:
    return table.get(kind, frozenset()) | (table.get("*", frozenset()) if kind != "net" else frozenset())


def readers(kind: str, key: str) -> tuple[str, ...]:
    """Which Darknets read `key` in a `[kind]` section: a subset of ("pjreddie", "alexeyab")."""
    kind = canonical(kind)
    return tuple(name for name, table in (("pjreddie", READS_PJREDDIE), ("alexeyab", READS_ALEXEYAB))
                 if key in _table(table, kind))


def key_role(kind: str, key: str) -> str | None:
    """INFERENCE, TRAINING or HARMLESS for a key some Darknet reads in `[kind]`; None when no Darknet reads it."""
    kind = canonical(kind)
    if not readers(kind, key):
        return None
    if key in _table(NO_EFFECT, kind):
        return HARMLESS
    if key in _table(TRAINING_ONLY, kind):
        return TRAINING
    return INFERENCE


def readers_phrase(kind: str, key: str) -> str:
    who = readers(kind, key)
    if who == ("alexeyab",):
        return "AlexeyAB's Darknet reads this"
    if who == ("pjreddie",):
        return "pjreddie's Darknet reads this"
    return "Darknet (pjreddie's and AlexeyAB's) reads this"


def darknet_name(kind: str, key: str, value: str | None = None) -> str:
    if value in ALEXEYAB_VALUES.get(canonical(kind), {}).get(key, frozenset()):
        return "AlexeyAB's Darknet"
    who = readers(kind, key)
    return {("alexeyab",): "AlexeyAB's Darknet", ("pjreddie",): "pjreddie's Darknet"}.get(who, "Darknet")


def is_neutral(value: str, neutral: str) -> bool:
    """Whether a cfg value is `neutral` (numerically when both are numbers)."""
    try:
        return float(value) == float(neutral)
    except ValueError:
        return value == neutral


def trainer_implements(
    kind: str, key: str, value: str | None = None, dialect: str = "pjreddie", detector: bool = True
) -> bool:
    """Whether `pydarknet train` implements the training key `key` of a `[kind]` section (with this value) for a
    network of `dialect` (a detector's training, or a classifier's).

    It implements the training keys pjreddie's Darknet reads, with the values pjreddie's knows (not
    `ALEXEYAB_VALUES`, e.g. `policy=sgdr`), AlexeyAB's set to the value with which AlexeyAB trains as
    pjreddie does (`TRAINING_NEUTRAL`, e.g. `mosaic=0`), and in AlexeyAB's dialect its [yolo] loss keys and
    learning-rate policies (`ALEXEYAB_TRAINED`) and a detector's augmentation keys (`ALEXEYAB_DETECTION_AUGMENT`).
    """
    kind = canonical(kind)
    if dialect == "alexeyab" and key in ALEXEYAB_TRAINED.get(kind, frozenset()):
        return True
    if dialect == "alexeyab" and detector and key in ALEXEYAB_DETECTION_AUGMENT.get(kind, frozenset()):
        return True
    pjreddie = READS_PJREDDIE.get(kind, frozenset()) | (READS_PJREDDIE["*"] if kind != "net" else frozenset())
    if key in pjreddie:
        return value not in ALEXEYAB_VALUES.get(kind, {}).get(key, frozenset())
    neutral = TRAINING_NEUTRAL.get(kind, {}).get(key)
    return neutral is not None and value is not None and is_neutral(value, neutral)
