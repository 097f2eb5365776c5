"""YOLOv2's recipe at toy scale, end to end: a Darknet-19-like classifier trained at 32x32
on the synthetic shapes, fine-tuned at 64x64 (the paper's high-resolution step: the cfg's
size doubled, the weights carried over, -clear), cut with `partial`, and a detector started
from the cut weights; plus `classifier valid` and `predict` through the console script."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from conftest import CFG, run_cli, set_options
from pydarknet import Darknet
from pydarknet.infer.classify import validate_classifier
from pydarknet.commands.partial import partial
from pydarknet.data import read_list, read_names
from pydarknet.train.classifier import train_classifier
from pydarknet.train.trainer import TrainRun, train_detector
from tools.make_shapes import make_classification_set, make_detection_set

TOP1_FLOOR = 0.4  # 6 classes: chance is 1/6


def top1(cfg: Path, weights: Path, data_dir: Path) -> float:
    net = Darknet(cfg)
    net.load_weights(weights)
    labels = read_names(data_dir / "shapes.labels")
    *_, (accuracy, _) = validate_classifier(net, read_list(data_dir / "valid.list"), labels, 6, 2, batch=30)
    return accuracy.top1_rate


@pytest.mark.slow
def test_recipe_224_448_partial_detector(tmp_path, one_thread):
    data = make_classification_set(tmp_path / "set", seed=0, n_train=300, n_valid=60, size_range=(40, 64))
    low_cfg = tmp_path / "tiny-shapes-classifier.cfg"
    low_cfg.write_text((CFG / "tiny-shapes-classifier.cfg").read_text())
    low = train_classifier(TrainRun(data=data, cfg=low_cfg, workers=0, quiet=True))
    assert low.name == "tiny-shapes-classifier.weights"
    assert (low.parent / "tiny-shapes-classifier_32.weights").is_file()  # epoch 32: 300 x 32 / 300 images
    low_top1 = top1(low_cfg, low, data.parent)
    assert low_top1 > TOP1_FLOOR

    # The paper's high-resolution fine-tune: same net at twice the size, from the low-res weights.
    high_cfg = tmp_path / "tiny-shapes-classifier_64.cfg"
    # 300 iterations: batch-norm rolling statistics move 1% a step (Darknet), and must forget the 32x32 ones.
    high_cfg.write_text(set_options(low_cfg.read_text(), width=64, height=64, min_crop=64, max_crop=80,
                                    learning_rate=0.05, max_batches=300))
    high = train_classifier(TrainRun(data=data, cfg=high_cfg, weights=low, clear=True, workers=0, quiet=True))
    high_top1 = top1(high_cfg, high, data.parent)
    assert high_top1 >= low_top1
    print(f"top-1: {low_top1:.3f} at 32x32, {high_top1:.3f} after the 64x64 fine-tune")

    # Cut (darknet partial ... 23 -> darknet19_448.conv.23) and start a detector from it.
    cut = tmp_path / "tiny-shapes-classifier.conv.11"
    partial(high_cfg, high, cut, 11)
    detector_data = make_detection_set(tmp_path / "det", seed=0, n_train=8, n_valid=2, size_range=(64, 96))
    detector_cfg = CFG / "tiny-shapes-yolo.cfg"
    started = Darknet(detector_cfg)
    started.load_weights(cut, partial=True)
    classifier = Darknet(high_cfg)
    classifier.load_weights(high)
    for i in range(11):
        for ours, theirs in zip(started.layers[i].darknet_tensors(), classifier.layers[i].darknet_tensors()):
            assert torch.equal(ours, theirs)
    final = train_detector(TrainRun(data=detector_data, cfg=detector_cfg, weights=cut, workers=0, quiet=True,
                                    max_batches=2, backup=tmp_path / "det-backup"))
    trained = Darknet(detector_cfg)
    trained.load_weights(final)
    assert trained.seen == 16


def test_cli_valid_and_predict(tmp_path):
    data = make_classification_set(tmp_path / "set", seed=1, n_train=6, n_valid=6, size_range=(40, 48))
    cfg = CFG / "tiny-shapes-classifier.cfg"
    weights = tmp_path / "random.weights"
    net = Darknet(cfg)
    for layer in net.layers:  # Darknet's fresh rolling variance is 0; make the random net's outputs finite
        if getattr(layer, "bn", None) is not None:
            layer.bn.running_var.fill_(1)
    net.save_weights(weights)
    valid = run_cli("classifier", "valid", str(data), str(cfg), str(weights), "--json")
    assert valid.returncode == 0, valid.stderr
    result = json.loads(valid.stdout)
    assert result["images"] == 6 and result["k"] == 2 and 0 <= result["top1"] <= result["topk"] <= 1
    image = read_list(data.parent / "valid.list")[0]
    predict = run_cli("classifier", "predict", str(data), str(cfg), str(weights), str(image), "-top", "3")
    assert predict.returncode == 0, predict.stderr
    lines = predict.stdout.splitlines()
    assert len(lines) == 3 and all(re.fullmatch(r" ?\d{1,3}\.\d\d%: (circle|square|triangle|star|cross|ring)", x) for x in lines)
    missing = run_cli("classifier", "valid", str(tmp_path / "nope.data"), str(cfg), str(weights))
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "nope.data" in missing.stderr
