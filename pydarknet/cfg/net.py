"""The `[net]` section: input size and training hyper-parameters.

Every option `src/parser.c:parse_net_options` reads, with its default.
`batch` here is the cfg's value (images per iteration); Darknet's
`net->batch` is the mini-batch `batch / subdivisions`, given by
`mini_batch`.  AlexeyAB's `letter_box` is read too: None when the cfg does
not set it, and the detector decides by the dialect (pydarknet.infer.detect
`uses_letterbox`: pjreddie's always letterboxes, AlexeyAB's only with
letter_box=1 or `-letter_box`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydarknet.cfg.dialect import ALEXEYAB_VALUES
from pydarknet.cfg.section import Section

# pjreddie's get_policy; AlexeyAB's adds sgdr (dialect.ALEXEYAB_VALUES; pydarknet.train.policy).
POLICIES = ("constant", "step", "steps", "exp", "poly", "sigmoid", "random")
# Darknet counts the values of an input or a layer output in a C int (net->inputs = h*w*c,
# l.outputs = out_h*out_w*out_c): beyond it Darknet overflows; here it is refused.
MAX_VALUES = 2**31 - 1


def too_many_values(shape: tuple[int, int, int]) -> str | None:
    """What is wrong with a (channels, height, width) holding more than MAX_VALUES values, or None."""
    c, h, w = shape
    if c * h * w <= MAX_VALUES:
        return None
    return f"{w}x{h}x{c} is {c * h * w} values, more than Darknet's int counts ({MAX_VALUES})"


@dataclass
class NetOptions:
    width: int
    height: int
    channels: int
    batch: int = 1
    subdivisions: int = 1
    learning_rate: float = 0.001
    momentum: float = 0.9
    decay: float = 0.0001
    time_steps: int = 1
    random: int = 0
    adam: int = 0
    max_crop: int = 0
    min_crop: int = 0
    max_ratio: float = 0.0
    min_ratio: float = 0.0
    center: int = 0
    clip: float = 0.0
    angle: float = 0.0
    aspect: float = 1.0
    saturation: float = 1.0
    exposure: float = 1.0
    hue: float = 0.0
    letter_box: int | None = None
    policy: str = "constant"
    burn_in: int = 0
    power: float = 4.0
    step: int = 1
    scale: float = 1.0
    steps: list[int] = field(default_factory=list)
    scales: list[float] = field(default_factory=list)
    gamma: float = 1.0
    max_batches: int = 0
    learning_rate_min: float = 0.00001  # AlexeyAB's policy=sgdr: learning_rate_min, sgdr_cycle, sgdr_mult
    sgdr_cycle: int = 0
    sgdr_mult: int = 2
    resize_step: float = 32.0  # AlexeyAB's random multi-scale rounding (pydarknet.train.multiscale)
    ema_alpha: float = 0.0  # AlexeyAB's EMA of the weights (pydarknet.train.ema)

    @property
    def mini_batch(self) -> int:
        """Darknet's net->batch: images per forward pass."""
        return max(1, self.batch // self.subdivisions) * self.time_steps

    @classmethod
    def from_section(cls, s: Section) -> "NetOptions":
        height = s.get_int("height", 0)
        width = s.get_int("width", 0)
        channels = s.get_int("channels", 0)
        inputs = s.get_int("inputs", height * width * channels)
        if not (height > 0 and width > 0 and channels > 0):
            if inputs <= 0:
                raise s.error("needs width, height and channels (Darknet: 'No input parameters supplied')")
            height, width, channels = 1, 1, inputs
        problem = too_many_values((channels, height, width))
        if problem:
            raise s.error(f"input {problem}", "width" if s.has("width") else None)
        o = cls(width=width, height=height, channels=channels)
        o.batch = s.get_int("batch", 1)
        o.learning_rate = s.get_float("learning_rate", 0.001)
        o.momentum = s.get_float("momentum", 0.9)
        o.decay = s.get_float("decay", 0.0001)
        o.subdivisions = s.get_int("subdivisions", 1)
        o.time_steps = s.get_int("time_steps", 1)
        s.get_int("notruth", 0)
        if o.batch < 1 or o.subdivisions < 1 or o.time_steps < 1:
            raise s.error(f"batch={o.batch} subdivisions={o.subdivisions} time_steps={o.time_steps} must be positive")
        o.random = s.get_int("random", 0)
        o.adam = s.get_int("adam", 0)
        if o.adam:
            s.get_float("B1", 0.9)
            s.get_float("B2", 0.999)
            s.get_float("eps", 0.0000001)
        o.max_crop = s.get_int("max_crop", width * 2)
        o.min_crop = s.get_int("min_crop", width)
        o.max_ratio = s.get_float("max_ratio", o.max_crop / width)
        o.min_ratio = s.get_float("min_ratio", o.min_crop / width)
        o.center = s.get_int("center", 0)
        o.clip = s.get_float("clip", 0.0)
        o.angle = s.get_float("angle", 0.0)
        o.aspect = s.get_float("aspect", 1.0)
        o.saturation = s.get_float("saturation", 1.0)
        o.exposure = s.get_float("exposure", 1.0)
        o.hue = s.get_float("hue", 0.0)
        o.letter_box = s.get_int("letter_box") if s.has("letter_box") else None
        o.policy = s.get_str("policy", "constant")  # type: ignore[assignment]
        if o.policy not in POLICIES and o.policy not in ALEXEYAB_VALUES["net"]["policy"]:
            known = ", ".join((*POLICIES, *sorted(ALEXEYAB_VALUES["net"]["policy"])))
            raise s.error(f"unknown policy '{o.policy}' (known: {known})", "policy")
        o.burn_in = s.get_int("burn_in", 0)
        o.power = s.get_float("power", 4.0)
        o.max_batches = s.get_int("max_batches", 0)
        o.resize_step = s.get_float("resize_step", 32.0)
        o.ema_alpha = s.get_float("ema_alpha", 0.0)
        if o.policy == "step":
            o.step = s.get_int("step", 1)
            o.scale = s.get_float("scale", 1.0)
        elif o.policy == "steps":
            if not (s.has("steps") and s.has("scales")):
                raise s.error("policy=steps needs both steps= and scales= (Darknet stops here too)")
            o.steps = s.get_ints("steps")
            o.scales = s.get_floats("scales")
            if len(o.steps) != len(o.scales):
                raise s.error(f"steps has {len(o.steps)} values but scales has {len(o.scales)}", "scales")
        elif o.policy in ("exp", "sigmoid"):
            o.gamma = s.get_float("gamma", 1.0)
            if o.policy == "sigmoid":
                o.step = s.get_int("step", 1)
        elif o.policy == "sgdr":
            o.read_sgdr(s)
        return o

    def read_sgdr(self, s: Section) -> None:
        """AlexeyAB's parse_net_options: learning_rate_min (default .00001), sgdr_cycle (default max_batches),
        sgdr_mult (default 2)."""
        self.learning_rate_min = s.get_float("learning_rate_min", 0.00001)
        self.sgdr_cycle = s.get_int("sgdr_cycle", self.max_batches)
        self.sgdr_mult = s.get_int("sgdr_mult", 2)
