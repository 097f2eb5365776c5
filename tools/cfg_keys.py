#!/usr/bin/env python3
"""docs/cfg-keys.md: every cfg key some Darknet reads, and what pydarknet does with it.

usage: python tools/cfg_keys.py            (rewrites docs/cfg-keys.md)

Generated from the code, so it cannot drift:

- the sections are `pydarknet.network.LAYER_TYPES` (built) and `DARKNET_ONLY`
  (refused), plus `[net]`; the keys of a section and which Darknet reads them
  are `pydarknet.cfg.dialect.readers` (the `option_find*` calls of each
  parser.c); what a key does in the C (inference, training only, no effect)
  is `dialect.key_role`;
- what pydarknet does is *observed*: for every (section, key) a small cfg
  holding the section in the least context it needs (`CONTEXTS`), with the key
  set (`PROBES`, else `key=1`), is built with `Darknet(cfg)`.  The key is
  implemented when the build reads it without a word, refused when the build
  raises CfgError (the message is quoted), ignored when it warns (CfgWarning:
  network._report_unused).  Then training is tried as `pydarknet train` does:
  `check_training_cfg` (pydarknet.train.options) and one `train_network` step
  (pydarknet.train.step) on that network; either raising DarknetError means
  `train` refuses it.  A refusal is tried again with the key set to 0.

The probe cfgs are scaffolding: a probe that fails because of its context
rather than its key stops the tool (fix CONTEXTS / PROBES) instead of being
reported.  Networks are 16x16 and built on the CPU with one thread: at that
size faster than the meta device, and trainable.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from a checkout
from pydarknet.cfg.dialect import ALEXEYAB_DETECTION_AUGMENT  # noqa: E402

OUT = ROOT / "docs" / "cfg-keys.md"

SIZE = 16  # probe networks take SIZE x SIZE x 3


def _conv(filters: int, size: int = 1) -> str:
    return f"[convolutional]\nfilters={filters}\nsize={size}\nactivation=linear\n\n"


CONV4 = _conv(4)
TAIL = "[avgpool]\n\n[softmax]\n"  # makes any probe trainable (as a classifier)
DETECTOR_TAIL = _conv(6) + "[yolo]\nclasses=1\nnum=1\n"  # ... or as a detector


@dataclass(frozen=True)
class Context:
    """A probe cfg around the section: the layers before it, its own required options, the layers after it."""

    pre: str = CONV4
    base: dict[str, str] = field(default_factory=dict)
    post: str = TAIL


CONTEXTS: dict[str, Context] = {
    "net": Context(pre="", post=CONV4 + TAIL),
    "convolutional": Context(pre=CONV4 + CONV4, base={"filters": "4", "size": "1"}),
    "maxpool": Context(base={"size": "2", "stride": "2"}),
    "avgpool": Context(post="[softmax]\n"),
    "local_avgpool": Context(base={"size": "2", "stride": "2"}),
    "route": Context(pre=CONV4 + CONV4, base={"layers": "-1"}),
    "shortcut": Context(pre=CONV4 + CONV4, base={"from": "-2"}),
    "sam": Context(pre=CONV4 + CONV4, base={"from": "-2"}),
    # [scale_channels] scales the from= layer (4x16x16) by its input (4x1x1)
    "scale_channels": Context(pre=CONV4 + CONV4 + "[avgpool]\n\n", base={"from": "-2"}),
    "upsample": Context(base={"stride": "2"}),
    "reorg": Context(base={"stride": "2"}),
    "reorg3d": Context(base={"stride": "2"}),
    "dropout": Context(),
    "empty": Context(),
    "implicit": Context(base={"filters": "4"}),
    "local": Context(base={"filters": "4", "size": "1"}),
    "crop": Context(pre="", base={"crop_height": "8", "crop_width": "8"}, post=CONV4 + TAIL),
    "connected": Context(base={"output": "4"}, post="[softmax]\n"),
    "softmax": Context(pre=CONV4 + "[avgpool]\n\n", post=""),
    "cost": Context(pre=CONV4 + "[avgpool]\n\n[softmax]\n\n", post=""),
    "region": Context(pre=_conv(6), base={"classes": "1", "num": "1"}, post=""),
    "yolo": Context(pre=_conv(6), base={"classes": "1", "num": "1"}, post=""),
    "gaussian_yolo": Context(pre=_conv(10), base={"classes": "1", "num": "1"}, post=""),
    "detection": Context(pre="[connected]\noutput=24\nactivation=linear\n\n",
                         base={"classes": "1", "coords": "4", "num": "1", "side": "2"}, post=""),
    # a [yolo] whose embedding_layer= (layer 0) has as many filters per anchor as the [contrastive] has inputs
    "contrastive": Context(pre=CONV4 + _conv(6) + "[yolo]\nclasses=1\nnum=1\nembedding_layer=0\n\n" + CONV4,
                           base={"yolo_layer": "2"}, post=""),
}


@dataclass(frozen=True)
class Spec:
    """What a probe sets: options (the key and any it needs alongside), and another context if the default won't do."""

    options: dict[str, str]
    context: Context | None = None


# How a key is probed, per (section or "*", key); any other key is probed as `key=1`.  Where a key's default
# is 1, another value shows what a cfg that sets it gets.
PROBES: dict[tuple[str, str], Spec] = {
    ("*", "activation"): Spec({"activation": "leaky"}),
    ("*", "layers"): Spec({"layers": "-1"}),
    ("*", "from"): Spec({"from": "-2"}),
    ("*", "mask"): Spec({"mask": "0"}),
    ("*", "anchors"): Spec({"anchors": "10,14"}),
    ("*", "scale_x_y"): Spec({"scale_x_y": "2"}),
    ("*", "nms_kind"): Spec({"nms_kind": "greedynms"}),
    ("*", "iou_loss"): Spec({"iou_loss": "ciou"}),
    ("*", "iou_thresh_kind"): Spec({"iou_thresh_kind": "giou"}),
    ("*", "beta_nms"): Spec({"beta_nms": "0.5"}),
    ("*", "temperature"): Spec({"temperature": "2"}),
    ("*", "probability"): Spec({"probability": "0.5"}),
    ("*", "scales"): Spec({"scales": "0.1"}),
    ("*", "stride"): Spec({"stride": "2"}),
    ("*", "groups"): Spec({"groups": "2"}),
    ("*", "group_id"): Spec({"group_id": "1", "groups": "2"}),
    ("*", "tree"): Spec({"tree": "probe.tree"}),
    ("*", "map"): Spec({"map": "probe.map"}),
    ("*", "learning_rate"): Spec({"learning_rate": "0.5"}),
    ("net", "policy"): Spec({"policy": "poly", "max_batches": "100"}),
    ("net", "scale"): Spec({"scale": "0.5"}),
    # a detector's data augmentation: trained by a detector (in AlexeyAB's dialect), refused by a classifier
    **{("net", key): Spec({key: "1"}, Context(pre="", post=DETECTOR_TAIL)) for key in ALEXEYAB_DETECTION_AUGMENT["net"]},
    ("convolutional", "size"): Spec({"size": "3"}),
    ("convolutional", "dilation"): Spec({"dilation": "2", "size": "3", "pad": "1"}),
    ("convolutional", "share_index"): Spec({"share_index": "1"}),  # layer 1: 4 -> 4 filters, size 1, as this one
    ("cost", "type"): Spec({"type": "smooth"}),
    ("shortcut", "weights_type"): Spec({"weights_type": "per_feature", "weights_normalization": "relu"}),
    ("shortcut", "weights_normalization"): Spec({"weights_normalization": "relu"}),
    ("gaussian_yolo", "yolo_point"): Spec({"yolo_point": "left_top"}),
    ("local", "pad"): Spec({"pad": "1", "size": "3"}),
    ("local", "size"): Spec({"size": "3", "pad": "1"}),
    ("yolo", "embedding_layer"): Spec({"embedding_layer": "0"}),
    ("yolo", "resize"): Spec({"resize": "1.5"}),
    ("yolo", "delta_normalizer"): Spec({"delta_normalizer": "2"}),
    ("yolo", "show_details"): Spec({"show_details": "0"}),
    # coords > 4: masks after the box (4 + coords - 4 + 1 + classes entries per anchor)
    ("region", "coords"): Spec({"coords": "5"}, Context(pre=_conv(7), base={"classes": "1", "num": "1"}, post="")),
    # reverse=1 at stride 2 needs 16 channels (C/s^4 planes)
    ("reorg", "reverse"): Spec({"reverse": "1"}, Context(pre=_conv(16), base={"stride": "2"})),
    ("reorg3d", "reverse"): Spec({"reverse": "1"}, Context(pre=_conv(16), base={"stride": "2"})),
    # scale_wh=1: the input is a 1 x H x W map scaling every channel of the from= layer
    ("scale_channels", "scale_wh"): Spec({"scale_wh": "1"}, Context(pre=CONV4 + CONV4 + _conv(1), base={"from": "-2"})),
}

# Files named by tree= / map=, written next to the probe cfgs.
FILES = {"probe.tree": "a -1\n", "probe.map": "0\n"}

ROLE_TEXT = {"inference": "inference", "training": "training only", "no effect": "no effect"}


@dataclass
class Probe:
    """What pydarknet did with one cfg: at load ("read", "refused", "warned", "crash") and in training
    ("ok", "refused", "crash", or "" when not tried).  A crash is an exception other than DarknetError: a bug."""

    load: str
    load_message: str = ""
    train: str = ""
    train_message: str = ""


@dataclass
class Row:
    key: str
    readers: tuple[str, ...]
    role: str
    spec: Spec
    probe: Probe
    zero: Probe | None = None  # the key set to 0, after a refusal


def _short(message: str) -> str:
    """A pydarknet message without the probe cfg's `file:line:col: [section] 'key=value'` prefix."""
    text = str(message).strip().splitlines()[0]
    text = re.sub(r"\S*probe\d+\.cfg(:\d+)*: ", "", text)
    return re.sub(r"^\[[a-z0-9_]+\] ('[^']*'(: | is | ))?", "", text)


def _cfg_text(kind: str, spec: Spec, folder: Path) -> str:
    ctx = spec.context or CONTEXTS.get(kind, Context())
    options = {k: str(folder / v) if v in FILES else v for k, v in spec.options.items()}
    net = {"width": str(SIZE), "height": str(SIZE), "channels": "3"}
    if kind == "net":
        net.update(options)
        body = ""
    else:
        body = f"[{kind}]\n" + "".join(f"{k}={v}\n" for k, v in {**ctx.base, **options}.items()) + "\n"
    return "[net]\n" + "".join(f"{k}={v}\n" for k, v in net.items()) + "\n" + ctx.pre + body + ctx.post


def spec_for(kind: str, key: str) -> Spec:
    found = PROBES.get((kind, key)) or PROBES.get(("*", key))
    return found or Spec({key: CONTEXTS[kind].base.get(key, "1")})


class Prober:
    """Builds probe cfgs in a folder and records what pydarknet does with each."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        for name, text in FILES.items():
            (folder / name).write_text(text)

    def run(self, kind: str, spec: Spec, train: bool = True) -> Probe:
        from pydarknet.errors import CfgError, CfgWarning, DarknetError
        from pydarknet.network import Darknet
        from pydarknet.train.options import check_training_cfg
        from pydarknet.train.step import loss_chain

        self.count += 1
        path = self.folder / f"probe{self.count}.cfg"
        path.write_text(_cfg_text(kind, spec, self.folder))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                net = Darknet(path)
            except CfgError as err:
                return Probe("refused", _short(str(err)))
            except Exception as err:  # noqa: BLE001 - a crash is reported, not hidden
                return Probe("crash", f"{type(err).__name__}: {_short(str(err))}")
        said = [str(w.message) for w in caught if issubclass(w.category, CfgWarning)
                and any(f"'{k}=" in str(w.message) for k in spec.options)]
        probe = Probe("warned", _short(said[0])) if said else Probe("read")
        if train:
            try:
                check_training_cfg(path, detector=not loss_chain(net))  # as `pydarknet train` or its classifier
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # e.g. the batch norm of one value (batch 1, 1x1)
                    _train_step(net)
                probe.train = "ok"
            except DarknetError as err:
                probe.train, probe.train_message = "refused", _short(str(err))
            except Exception as err:  # noqa: BLE001 - a crash is reported, not hidden
                probe.train, probe.train_message = "crash", f"{type(err).__name__}: {_short(str(err))}"
        return probe


def _train_step(net) -> None:  # type: ignore[no-untyped-def]
    """One `train_network` step on random images, with a box (detector) or class 0 (classifier) as truth."""
    import torch

    from pydarknet.train.state import TrainingState
    from pydarknet.train.step import loss_chain, train_network

    x = torch.rand(net.options.mini_batch, *net.input_shape)
    chain = loss_chain(net)
    if chain:
        c, h, w = chain[0].in_shapes[0]
        truth = torch.zeros(x.shape[0], c * h * w)
        truth[:, 0] = 1
    else:
        truth = torch.tensor([[[0.5, 0.5, 0.3, 0.3, 0.0]]]).expand(x.shape[0], 1, 5).contiguous()
    train_network(net, TrainingState(net), x, truth)


def sections() -> tuple[list[str], dict[str, list[str]], list[str]]:
    """(built sections, aliases by canonical name, refused sections): canonical names in LAYER_TYPES order."""
    from pydarknet.cfg.dialect import canonical
    from pydarknet.network import DARKNET_ONLY, LAYER_TYPES

    aliases: dict[str, list[str]] = {}
    found: dict[str, list[str]] = {"built": [], "refused": []}
    for group, names in (("built", LAYER_TYPES), ("refused", DARKNET_ONLY)):
        for name in names:
            kind = canonical(name)
            if kind not in found[group]:
                found[group].append(kind)
            if name != kind:
                aliases.setdefault(kind, []).append(name)
    return found["built"], aliases, found["refused"]


def own_keys(kind: str) -> list[str]:
    """The keys a Darknet reads in `[kind]` itself (not the "*" ones of every layer)."""
    from pydarknet.cfg.dialect import READS_ALEXEYAB, READS_PJREDDIE

    return sorted(READS_PJREDDIE.get(kind, frozenset()) | READS_ALEXEYAB.get(kind, frozenset()), key=str.lower)


def common_keys() -> list[str]:
    from pydarknet.cfg.dialect import READS_ALEXEYAB, READS_PJREDDIE

    return sorted(READS_PJREDDIE["*"] | READS_ALEXEYAB["*"], key=str.lower)


# A refusal about the probe's scaffolding, not its key: the tool stops.
_SCAFFOLD_ERRORS = ("is not an earlier layer", "needs option", "the previous layer gives", "must divide",
                    "does not fit", "is not a valid", "file not found", "needs a 1 x", "divisible by")


def _probe_key(prober: Prober, kind: str, key: str, trains: bool) -> Row:
    from pydarknet.cfg.dialect import key_role, readers

    spec = spec_for(kind, key)
    probe = prober.run(kind, spec, train=trains)
    row = Row(key, readers(kind, key), key_role(kind, key) or "", spec, probe)
    if probe.load == "refused" and any(part in probe.load_message for part in _SCAFFOLD_ERRORS):
        raise RuntimeError(f"the probe of [{kind}] {spec.options} fails for its context, not its key: "
                           f"{probe.load_message} (fix tools/cfg_keys.py CONTEXTS/PROBES)")
    if probe.load in ("refused", "crash") or probe.train in ("refused", "crash"):
        row.zero = prober.run(kind, Spec({**spec.options, key: "0"}, spec.context), train=trains)
    return row


def collect(folder: Path) -> dict:
    """Every probe, by section."""
    from pydarknet.cfg.dialect import ALEXEYAB_ACTIVATIONS, ALEXEYAB_SECTIONS, ALEXEYAB_VALUES

    prober = Prober(folder)
    built, aliases, refused = sections()
    data: dict = {"built": {}, "aliases": aliases, "refused": {}, "values": []}
    for kind in ["net", *built]:
        base = prober.run(kind, Spec({}))
        if base.load != "read":
            raise RuntimeError(f"the probe context of [{kind}] does not build: {base.load_message}")
        trains = base.train == "ok"
        rows = [_probe_key(prober, kind, key, trains) for key in own_keys(kind)]
        if kind != "net":  # the keys of every layer: trained in the reference section, built in every one
            rows += [_probe_key(prober, kind, key, trains and kind == REFERENCE) for key in common_keys()]
        data["built"][kind] = {"rows": rows, "trains": trains, "train_message": base.train_message,
                               "alexeyab": kind in ALEXEYAB_SECTIONS}
    for kind in refused:
        probe = prober.run(kind, Spec({}), train=False)
        data["refused"][kind] = {"message": probe.load_message, "keys": own_keys(kind),
                                 "alexeyab": kind in ALEXEYAB_SECTIONS}
    for kind, table in ALEXEYAB_VALUES.items():
        for key, values in table.items():
            for value in sorted(values):
                alongside = PROBES[(kind, key)].options if (kind, key) in PROBES else {}  # e.g. policy's max_batches
                data["values"].append((kind, key, value, prober.run(kind, Spec({**alongside, key: value}))))
    for name in sorted(ALEXEYAB_ACTIVATIONS):
        data["values"].append(("convolutional", "activation", name,
                               prober.run("convolutional", Spec({"activation": name}))))
    data["probes"] = prober.count
    return data


def probe_all() -> dict:
    """Every probe (`collect`), in a temporary folder, on one thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: more threads only add overhead
    torch.manual_seed(0)  # the random weights and images of the training steps (no outcome depends on them)
    try:
        with tempfile.TemporaryDirectory(prefix="cfg-keys-") as tmp:
            return collect(Path(tmp))
    finally:
        torch.set_num_threads(threads)


def render(data: dict | None = None) -> str:
    """docs/cfg-keys.md as the code makes it now (from `data`, a `probe_all()`, when given)."""
    return _render(probe_all() if data is None else data)


# ---------------------------------------------------------------------------------------------------------------
# The page


def _readers_text(readers: tuple[str, ...]) -> str:
    return {("pjreddie",): "pjreddie", ("alexeyab",): "AlexeyAB"}.get(readers, "both")


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


# pydarknet.train.options' refusal of a training option (the legend quotes it once)
_NOT_IMPLEMENTED = (r"\S+: pydarknet train does not implement training with this option of \S+ Darknet; "
                    r"remove it \(or set it off\) to train here")


def _train_text(probe: Probe, zero: Probe | None) -> str:
    if probe.train == "crash":
        text = f"**`train` crashes** (a bug): {probe.train_message}"
    elif re.fullmatch(_NOT_IMPLEMENTED, probe.train_message):
        text = "`train` refuses it"
    else:
        text = f"`train` refuses it: {probe.train_message}"
    if zero is not None and zero.train == "ok":
        text += " (0 is accepted)"
    return text


def _pydarknet_text(row: Row, trains: bool) -> str:
    p = row.probe
    if p.load == "crash":
        return f"**crashes at load** (a bug): {p.load_message}"
    if p.load == "refused":
        text = f"**refused at load**: {p.load_message}"
        if row.zero is not None and row.zero.load in ("read", "warned"):
            text += " (0 is accepted)"
        return text
    if row.role == "training":
        if not trains:
            return "ignored (the section is not trained)"
        if not p.train:
            return "training only (not trained here: see the keys of every layer section)"
        return "implemented in training" if p.train == "ok" else _train_text(p, row.zero)
    if p.load == "warned" and row.role == "inference":  # network._report_unused refuses these: never seen
        text = f"ignored: {p.load_message}"
    else:
        text = "implemented" if row.role == "inference" else "accepted, no effect"
    if trains and p.train not in ("ok", ""):
        text += "; " + _train_text(p, row.zero)
    return text


def _same(a: Row, b: Row) -> bool:
    """Whether a key of every layer section does at load in a section (`a`) what it does in `b`."""
    def outcome(row: Row) -> tuple:
        return row.readers, row.role, row.probe.load, row.probe.load_message
    return outcome(a) == outcome(b)


def _table(w, rows: list[Row], trains: bool) -> None:  # type: ignore[no-untyped-def]
    w("| key | read by | in Darknet | probe | pydarknet |")
    w("|---|---|---|---|---|")
    for row in rows:
        probe = " ".join(f"`{k}={v}`" for k, v in row.spec.options.items())
        w(f"| `{row.key}` | {_readers_text(row.readers)} | {ROLE_TEXT.get(row.role, row.role)} | {probe} | "
          f"{_escape(_pydarknet_text(row, trains))} |")
    w("")


def _section_message(kind: str, info: dict) -> str:
    message = info["train_message"]
    return f"[{kind}] {message}" if message.startswith("is ") else message


def _refused_who(message: str) -> str:
    if "pjreddie's and AlexeyAB's" in message:
        return "both"
    return "pjreddie" if "pjreddie's" in message else "AlexeyAB"


REFERENCE = "convolutional"  # where the keys of every layer section are shown


def _render(data: dict) -> str:
    from pydarknet.cfg.dialect import key_role

    out: list[str] = []
    w = out.append
    w("# cfg keys: what each Darknet reads, what pydarknet does\n")
    w("Generated by `tools/cfg_keys.py` from the code: do not edit by hand. `python tools/cfg_keys.py` rewrites it;")
    w("`tests/test_cfg_keys_doc.py` fails when it is not current.\n")
    w("Every section pydarknet knows (`pydarknet.network.LAYER_TYPES` and `DARKNET_ONLY`, and `[net]`), and every")
    w("key pjreddie's or AlexeyAB's `src/parser.c` reads in it (`pydarknet.cfg.dialect.READS_PJREDDIE`,")
    w("`READS_ALEXEYAB`). The columns:\n")
    w("- **read by**: which Darknet's parser reads the key (`dialect.readers`). A cfg using a key only AlexeyAB's")
    w("  reads gets AlexeyAB's numbers under `--dialect auto` (`dialect.alexeyab_feature`;")
    w("  [compatibility.md](compatibility.md)).")
    w("- **in Darknet**: what the key does in the C (`dialect.key_role`): *inference* (a layer's output, the")
    w("  boxes or the weights loaded), *training only* (the loss, the update, data loading, the schedule:")
    w("  `dialect.TRAINING_ONLY`), *no effect* (GPU memory, display, video tracking: `dialect.NO_EFFECT`).")
    w("- **probe**: the value the generator set (alongside any option the key needs).")
    w("- **pydarknet**: what pydarknet did with a small cfg holding the section and the probe, built with")
    w("  `Darknet(cfg)` and trained one step as `pydarknet train` does (`pydarknet.train.options.check_training_cfg`,")
    w("  then `pydarknet.train.step.train_network`):")
    w("  - *implemented*: read and used;")
    w("  - ***refused at load***: a one-line CfgError naming file:line:col (quoted without that prefix);")
    w("  - *implemented in training*: a training-only key `train` accepts (pydarknet's trainer reproduces")
    w("    pjreddie's training options; those it refuses, such as `onlyforward` and pjreddie's GPU-only ones,")
    w("    are in [compatibility.md](compatibility.md#not-reproduced)); inference passes it in silence, as")
    w("    Darknet's does;")
    w("  - *`train` refuses it*: a DarknetError before training starts, quoted; where none is quoted it is")
    w("    `pydarknet.train.options`' \"pydarknet train does not implement training with this option of")
    w("    AlexeyAB's Darknet; remove it (or set it off) to train here\". Inference ignores the key with a")
    w("    warning, or implements it;")
    w("  - *accepted, no effect*: a warning at load, nothing else;")
    w("  - *(0 is accepted)*: the key set to 0 is not refused (e.g. `mosaic=0`: AlexeyAB trains as pjreddie then).\n")
    w("A key no Darknet reads in a section is Darknet's \"Unused field\": a warning, an error with")
    w(f"`Darknet(cfg, strict=True)`. The page is made from {data['probes']} probe cfgs.\n")

    w("## Sections\n")
    w("| section | aliases | Darknet | pydarknet | training |")
    w("|---|---|---|---|---|")
    for kind, info in data["built"].items():
        aliases = ", ".join(f"`[{a}]`" for a in data["aliases"].get(kind, []))
        who = "AlexeyAB" if info["alexeyab"] else "both"
        trains = "trained" if info["trains"] else f"`train` refuses it: {_escape(_section_message(kind, info))}"
        w(f"| [`[{kind}]`](#{kind}) | {aliases} | {who} | built | {trains} |")
    for kind, info in data["refused"].items():
        aliases = ", ".join(f"`[{a}]`" for a in data["aliases"].get(kind, []))
        who = "AlexeyAB" if info["alexeyab"] else _refused_who(info["message"])
        w(f"| `[{kind}]` | {aliases} | {who} | **refused at load**: {_escape(info['message'])} | |")
    w("")
    w("*Darknet*: `AlexeyAB` for `dialect.ALEXEYAB_SECTIONS` (a cfg with one gets AlexeyAB's numbers under")
    w("`--dialect auto`); `both` for the sections of pjreddie's `string_to_layer_type`, which AlexeyAB's reads")
    w("too, not always with the same keys. `[net]` may be spelled `[network]`. The keys of the refused sections:\n")
    for kind, info in data["refused"].items():
        w(f"- `[{kind}]`: {', '.join(f'`{k}`' for k in info['keys']) or '(none)'}")
    w("")

    common = {row.key: row for row in data["built"][REFERENCE]["rows"] if row.key in common_keys()}
    w("## Keys of every layer section\n")
    w("`parse_network_cfg` (pjreddie) and `parse_network_cfg_custom` (AlexeyAB) read these in every layer section")
    w("after its own parser (`dialect.READS_*[\"*\"]`; pydarknet reads them in `pydarknet.layers.base.Layer`).")
    w(f"Built in every section and trained in `[{REFERENCE}]`, as shown here; a section where one is read otherwise")
    w("lists it again.\n")
    _table(w, list(common.values()), True)
    for kind, info in data["built"].items():
        w(f"## [{kind}]\n")
        if not info["trains"]:
            w(f"Not trained: {_section_message(kind, info)}\n")
        rows = [row for row in info["rows"]
                if row.key not in common or (kind != REFERENCE and not _same(row, common[row.key]))]
        if rows:
            _table(w, rows, info["trains"])
        else:
            w("No keys of its own.\n")

    w("## Values only AlexeyAB's Darknet knows\n")
    w("Keys both parsers read, with a value only AlexeyAB's accepts (`dialect.ALEXEYAB_VALUES`,")
    w("`dialect.ALEXEYAB_ACTIVATIONS`): a cfg using one gets AlexeyAB's numbers under `--dialect auto`.\n")
    w("| section | value | pydarknet |")
    w("|---|---|---|")
    for kind, key, value, probe in data["values"]:
        row = Row(key, (), key_role(kind, key) or "", Spec({key: value}), probe)
        w(f"| `[{kind}]` | `{key}={value}` | {_escape(_pydarknet_text(row, True))} |")
    return "\n".join(out) + "\n"


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to a temporary file in `path`'s folder, then rename it over `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        print("usage: python tools/cfg_keys.py  (rewrites docs/cfg-keys.md)", file=sys.stderr)
        return 2
    write_atomically(OUT, render())
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
