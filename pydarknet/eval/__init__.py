"""Evaluation: VOC/COCO average precision and Darknet's `detector valid` result files."""

from pydarknet.eval.ap import DetectionTable, Evaluation, TruthTable, average_precision, evaluate, match_detections, precision_recall

__all__ = ["DetectionTable", "Evaluation", "TruthTable", "average_precision", "evaluate", "match_detections", "precision_recall"]
