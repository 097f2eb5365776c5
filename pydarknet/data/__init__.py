"""Darknet's detection data: `.data` files, list and label files, augmentation, batches."""

from pydarknet.data.augment import augment_detection
from pydarknet.data.datafile import DataFile, read_list, read_names
from pydarknet.data.labels import label_path, read_labels
from pydarknet.data.loader import BadSampleWarning, DetectionLoader

__all__ = [
    "BadSampleWarning",
    "DataFile",
    "DetectionLoader",
    "augment_detection",
    "label_path",
    "read_labels",
    "read_list",
    "read_names",
]
