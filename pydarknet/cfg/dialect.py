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
    "*": frozenset({"burnin_update", "dont_update", "show_receptive_field", "train_only_bn"}),
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
            if opt.key in keys or (opt.key == "activation" and opt.value in ALEXEYAB_ACTIVATIONS):
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
