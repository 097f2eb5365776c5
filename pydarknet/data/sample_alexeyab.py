"""One training sample as AlexeyAB's Darknet loads it: its load_data_detection (OpenCV build) for one image.

The options come from the cfg as AlexeyAB's `train_detector` passes them (src/detector.c `load_args`):
`[net] flip` (default 1), `mosaic`, `mosaic_bound`, `mixup`, `letter_box`, `blur`, `gaussian_noise`, `hue`,
`saturation`, `exposure` (0 taken as 1, `load_thread`), and the last layer's `jitter` and `resize`; `cutmix`
has no effect on a detector (the C turns it off: "isn't supported for Detector").  With `mosaic=1` a sample is a
mosaic with p = .5 (pydarknet.data.mosaic), its three other images drawn from the list like the first
(`rand() % m`); with `mixup=1` (and neither mosaic nor cutmix) the average of two images with p = .5
(pydarknet.data.mixup); else one image (pydarknet.data.augment_alexeyab).  Labels are found where AlexeyAB
looks for them (`alexeyab_label_path`: beside the image, or `labels` for VOC's `JPEGImages` and COCO's
`images/train2017`...).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pydarknet.cfg.dialect import canonical
from pydarknet.cfg.section import Section
from pydarknet.data.augment_alexeyab import augment_image, crop_of, draw_image, load_rgb
from pydarknet.data.labels import alexeyab_label_path, read_training_labels
from pydarknet.data.mixup import mixup
from pydarknet.data.mosaic import MosaicDraws, draw_cut, mosaic
from pydarknet.errors import DarknetError


@dataclass(frozen=True)
class AlexeyabAugment:
    """The options of AlexeyAB's load_data_detection that pjreddie's has not."""

    flip: bool = True
    mosaic: bool = False
    mosaic_bound: bool = False
    letter_box: bool = False
    resize: float = 1.0
    blur: int = 0
    mixup: bool = False
    gaussian_noise: int = 0

    @classmethod
    def from_sections(cls, sections: list[Section]) -> AlexeyabAugment:
        """Read them as AlexeyAB's parse_net_options and train_detector do (`resize`: the last layer's)."""
        net, last = sections[0], sections[-1]
        use_mixup = _use_mixup(net)
        mosaic = use_mixup == 3
        letter_box = net.get_int("letter_box", 0) != 0
        if mosaic and letter_box:
            raise net.error("letter_box=1 with mosaic=1: AlexeyAB's Darknet stops on this combination "
                            "(\"isn't supported, use only 1 of these parameters\")", "letter_box")
        resize = last.get_float("resize", 1.0) if canonical(last.kind) == "yolo" else 1.0
        if resize <= 0:
            raise last.error(f"resize={resize} must be positive (the crop scale of AlexeyAB's training)", "resize")
        blur = net.get_int("blur", 0)
        if blur < 0:
            raise net.error(f"blur={blur} must be 0 or more (a Gaussian kernel size)", "blur")
        return cls(net.get_int("flip", 1) != 0, mosaic, net.get_int("mosaic_bound", 0) != 0, letter_box, resize, blur,
                   use_mixup == 1, net.get_int("gaussian_noise", 0))


def _use_mixup(net: Section) -> int:
    """load_data_detection's use_mixup from `[net] mixup`, `cutmix`, `mosaic` (parse_net_options: mosaic and
    cutmix override mixup; load_data_detection: cutmix is off for a detector): 0, 1 (mixup) or 3 (mosaic)."""
    use_mixup = net.get_int("mixup", 0)
    mosaic, cutmix = net.get_int("mosaic", 0) != 0, net.get_int("cutmix", 0) != 0
    if cutmix or mosaic:
        use_mixup = 3 if mosaic else 0
    if use_mixup not in (0, 1, 3):  # the C's loop then stores no image: it crashes
        raise net.error(f"mixup={use_mixup}: AlexeyAB's Darknet trains mixup=1 (and 3 as mosaic=1) only", "mixup")
    return use_mixup


@dataclass(frozen=True)
class AlexeyabDetection:
    """A SampleSource (pydarknet.data.loader) of AlexeyAB's load_data_detection: truth (max_boxes, 5)."""

    paths: tuple[Path, ...]
    augment: AlexeyabAugment
    jitter: float
    hue: float
    saturation: float
    exposure: float
    max_boxes: int
    classes: int | None = None
    class_map: tuple[int, ...] | None = None

    @property
    def truth_shape(self) -> tuple[int, ...]:
        return (self.max_boxes, 5)

    def _read(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        try:
            labels = read_training_labels(alexeyab_label_path(path), self.classes, self.class_map)
        except DarknetError as err:
            raise DarknetError(f"{path}: {err}") from None
        return load_rgb(path), labels

    def sample(self, path: Path, width: int, height: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        aug = self.augment
        coin = (aug.mosaic or aug.mixup) and bool(rng.integers(2))  # C: `if (random_gen() % 2 == 0) use_mixup = 0`
        is_mosaic, is_mixup = aug.mosaic and coin, aug.mixup and coin
        cut = draw_cut(rng, width, height) if is_mosaic else None
        others = 3 if is_mosaic else 1 if is_mixup else 0
        chosen = [path] + [self.paths[rng.integers(len(self.paths))] for _ in range(others)]
        images, labels, crops, draws = [], [], [], []
        for slot, chosen_path in enumerate(chosen):
            image, boxes = self._read(chosen_path)
            image_draws = draw_image(rng, aug.flip, self.hue, self.saturation or 1.0, self.exposure or 1.0,
                                     is_mosaic, len(boxes), aug.blur, aug.gaussian_noise)
            if image_draws.noise:
                image_draws = replace(image_draws, noise_seed=int(rng.integers(1 << 63)))
            oh, ow = image.shape[:2]
            crops.append(crop_of(ow, oh, width, height, self.jitter, aug.resize, aug.letter_box, image_draws,
                                 slot if is_mosaic else None))
            images.append(image)
            labels.append(boxes)
            draws.append(image_draws)
        if cut is not None:
            return mosaic(images, labels, crops, width, height, MosaicDraws(*cut, tuple(draws)), self.max_boxes,
                          aug.mosaic_bound)
        passes = [augment_image(image, boxes, crop, width, height, image_draws, self.max_boxes)
                  for image, boxes, crop, image_draws in zip(images, labels, crops, draws)]
        return mixup(*passes) if is_mixup else passes[0]
