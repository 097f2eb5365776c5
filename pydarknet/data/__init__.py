"""Darknet's training data: `.data` files, list and label files, detection and classification augmentation, batches.

Detection augmentation: pjreddie's (`augment`) and AlexeyAB's OpenCV build's (`augment_alexeyab` for one
image, `mosaic`, `mixup`, `sample_alexeyab` for a sample of a cfg in AlexeyAB's dialect).
"""

from pydarknet.data.augment import augment_detection
from pydarknet.data.classification import ClassificationAugmentation, augment_classification, class_of, fill_truth
from pydarknet.data.datafile import DataFile, read_list, read_names
from pydarknet.data.labels import label_path, read_labels, read_training_labels
from pydarknet.data.loader import BadSampleWarning, BatchLoader, DetectionLoader
from pydarknet.data.sample_alexeyab import AlexeyabAugment

__all__ = [
    "AlexeyabAugment",
    "BadSampleWarning",
    "BatchLoader",
    "ClassificationAugmentation",
    "DataFile",
    "DetectionLoader",
    "augment_classification",
    "augment_detection",
    "class_of",
    "fill_truth",
    "label_path",
    "read_labels",
    "read_list",
    "read_names",
    "read_training_labels",
]
