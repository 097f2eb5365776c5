"""Training batches the way Darknet's detector loads them, on a torch DataLoader.

Darknet's `train_detector` loads `batch * subdivisions` images per step with
`load_data_detection`: paths drawn *with replacement* (`get_random_paths`:
`rand() % m`; there are no epochs), each image augmented (see
`pydarknet.data.augment`; for a cfg of AlexeyAB's dialect its own
load_data_detection, `pydarknet.data.sample_alexeyab`, mosaics included), at
the network size of that step (multi-scale).

Here batch `i` is built from its own random stream, seeded by
(seed, rank, i): the same batch comes out whatever the number of workers,
on every run, and a run resumed at batch `i` continues the same sequence.
The workers of a torch DataLoader build whole batches; a batch-index
sampler in the main process names them, with their size from
`size_for_batch(i)` (called ahead of use, so it must depend on `i` only).

An image that cannot be read, or whose label file is missing or has a line
Darknet could not train on (not five numbers, a class the head has no
output or `map=` entry for, see `read_training_labels`), is reported once
with its path and line (a `BadSampleWarning`) and another image is drawn in
its place; Darknet would stop (`file_error`), train on a half-read label
file, or read past its arrays.  Coordinates outside [0, 1] are Darknet's to
clip (`correct_boxes`), as it does.  A data set whose labels are all
unusable fails the run after MAX_BAD_DRAWS unusable draws in a row.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from pydarknet.data.augment import augment_detection
from pydarknet.data.labels import label_path, read_training_labels
from pydarknet.data.sample_alexeyab import AlexeyabAugment, AlexeyabDetection
from pydarknet.errors import DarknetError
from pydarknet.image import load_image

# Give up on a batch after this many unreadable draws in a row (a list of bad files).
MAX_BAD_DRAWS = 1000


class BadSampleWarning(UserWarning):
    """A training image or its label file was unusable and was skipped."""


@dataclass(frozen=True)
class Augmentation:
    """The `load_data_detection` parameters (Darknet's `load_args`)."""

    jitter: float
    hue: float
    saturation: float
    exposure: float
    max_boxes: int
    classes: int | None = None
    class_map: tuple[int, ...] | None = None  # the head's map= (see read_training_labels)
    class_only: bool = False  # the head trains YOLO9000's class-only labels (a [region] with tree=)

    @property
    def truth_shape(self) -> tuple[int, ...]:
        return (self.max_boxes, 5)

    def sample(self, path: Path, width: int, height: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return load_sample(path, width, height, self, rng)


class SampleSource(Protocol):
    """What builds a batch's samples: Augmentation (detection) or ClassificationAugmentation."""

    @property
    def truth_shape(self) -> tuple[int, ...]: ...

    def sample(self, path: Path, width: int, height: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]: ...


def batch_rng(seed: int, rank: int, batch_index: int) -> np.random.Generator:
    """The random stream of one batch: a function of (seed, rank, batch index) only."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, rank, batch_index])))


def load_sample(path: Path, width: int, height: int, aug: Augmentation, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Read one image and its labels and augment them; DarknetError if either is unusable."""
    try:
        boxes = read_training_labels(label_path(path), aug.classes, aug.class_map, aug.class_only)
    except DarknetError as err:
        raise DarknetError(f"{path}: {err}") from None
    image = load_image(path)
    return augment_detection(
        image, boxes, width, height, aug.jitter, aug.hue, aug.saturation, aug.exposure, True, aug.max_boxes, rng
    )


@dataclass
class Batch:
    """What a worker returns: the batch, the problems it skipped, or why it failed."""

    index: int
    images: torch.Tensor | None
    truth: torch.Tensor | None
    skipped: list[str]
    error: str | None = None

    def pin_memory(self) -> Batch:
        """Called by the DataLoader's pinning thread when CUDA is there."""
        if self.images is not None:
            self.images, self.truth = self.images.pin_memory(), self.truth.pin_memory()
        return self


class SampleBatches(Dataset):
    """Batch `(i, w, h)` -> `Batch`: `batch_size` augmented images at w x h, drawn with replacement."""

    def __init__(self, paths: list[Path], batch_size: int, aug: SampleSource, seed: int, rank: int) -> None:
        self.paths = [Path(p) for p in paths]
        self.batch_size = batch_size
        self.aug = aug
        self.seed = seed
        self.rank = rank

    def __getitem__(self, key: tuple[int, int, int]) -> Batch:
        index, width, height = key
        rng = batch_rng(self.seed, self.rank, index)
        images = np.empty((self.batch_size, 3, height, width), dtype=np.float32)
        truth = np.empty((self.batch_size, *self.aug.truth_shape), dtype=np.float32)
        skipped: list[str] = []
        bad_in_a_row = 0
        filled = 0
        while filled < self.batch_size:
            path = self.paths[rng.integers(len(self.paths))]  # Darknet: get_random_paths, rand() % m
            try:
                images[filled], truth[filled] = self.aug.sample(path, width, height, rng)
            except DarknetError as err:
                skipped.append(str(err))
                bad_in_a_row += 1
                if bad_in_a_row >= MAX_BAD_DRAWS:
                    return Batch(index, None, None, skipped, f"{MAX_BAD_DRAWS} unusable images in a row, last: {err}")
                continue
            bad_in_a_row = 0
            filled += 1
        return Batch(index, torch.from_numpy(images), torch.from_numpy(truth), skipped)


class BatchSampler(Sampler):
    """Yields `(i, w, h)` for i = start, start + 1, ...: which batch, at which size."""

    def __init__(self, start: int, size_for_batch: Callable[[int], tuple[int, int]]) -> None:
        self.start = start
        self.size_for_batch = size_for_batch

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        for index in itertools.count(self.start):
            width, height = self.size_for_batch(index)
            yield index, int(width), int(height)


def _leave_stop_signals_to_the_main_process(worker_id: int) -> None:
    """A worker leaves the trainer's process group: the stop signals a whole group receives (Ctrl-C, a
    scheduler's `kill -TERM -PGID`, Slurm's SIGUSR1) reach the trainer alone, which saves its backup and
    then ends the workers itself (with SIGTERM, which they must not ignore)."""
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)


class BatchLoader:
    """Endless `(batch_index, images (B, 3, h, w), truth (B, *aug.truth_shape))` (see the module doc).

    Every `iter()` starts again at `start_batch`; with `workers > 0` the
    worker processes persist between iterations.
    """

    def __init__(
        self,
        paths: list[Path],
        size_for_batch: Callable[[int], tuple[int, int]],
        batch_size: int,
        aug: SampleSource,
        workers: int,
        seed: int,
        start_batch: int = 0,
        rank: int = 0,
    ) -> None:
        if not paths:
            raise DarknetError("no training images (empty list)")
        if batch_size < 1:
            raise DarknetError(f"batch size {batch_size} must be at least 1")
        self.loader = DataLoader(
            SampleBatches(list(paths), batch_size, aug, seed, rank),
            batch_size=None,  # each item is a whole batch
            sampler=BatchSampler(start_batch, size_for_batch),
            num_workers=workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=workers > 0,
            worker_init_fn=_leave_stop_signals_to_the_main_process,
        )
        self.reported: set[str] = set()

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        for batch in self.loader:
            self._report(batch.skipped)
            if batch.error is not None:
                raise DarknetError(batch.error)
            yield batch.index, batch.images, batch.truth

    def _report(self, problems: list[str]) -> None:
        for problem in problems:
            if problem not in self.reported:
                self.reported.add(problem)
                warnings.warn(f"{problem}; skipped", BadSampleWarning, stacklevel=3)


class DetectionLoader(BatchLoader):
    """BatchLoader of load_data_detection samples: truth (B, max_boxes, 5).

    `truth` rows are x, y, w, h, class (Darknet's `d.y`), zero after the last
    box.  `classes`, when given, makes a label with a class out of range a
    bad label file; `class_map` (the head's `map=`) and `class_only` (a
    [region] with `tree=`) are the rest of what the head takes
    (`read_training_labels`).  `alexeyab` (a cfg of AlexeyAB's dialect)
    loads the samples as AlexeyAB's Darknet does (`AlexeyabDetection`;
    `class_only` does not apply: AlexeyAB drops x = y = 0 boxes).
    """

    def __init__(
        self,
        paths: list[Path],
        size_for_batch: Callable[[int], tuple[int, int]],
        batch_size: int,
        jitter: float,
        hue: float,
        saturation: float,
        exposure: float,
        max_boxes: int,
        workers: int,
        seed: int,
        start_batch: int = 0,
        rank: int = 0,
        classes: int | None = None,
        class_map: Sequence[int] | None = None,
        class_only: bool = False,
        alexeyab: AlexeyabAugment | None = None,
    ) -> None:
        if max_boxes < 1:
            raise DarknetError(f"max boxes {max_boxes} must be at least 1")
        mapped = tuple(class_map) if class_map is not None else None
        aug: SampleSource
        if alexeyab is not None:
            aug = AlexeyabDetection(tuple(Path(p) for p in paths), alexeyab, jitter, hue, saturation, exposure,
                                    max_boxes, classes, mapped)
        else:
            aug = Augmentation(jitter, hue, saturation, exposure, max_boxes, classes, mapped, class_only)
        super().__init__(paths, size_for_batch, batch_size, aug, workers, seed, start_batch, rank)
