"""Never silently different (issue #18 part 3): what happens to a cfg key pydarknet does not read.

- a key some Darknet reads for that section and that changes inference -> CfgError (file:line:col, key, Darknet);
- a training-only key -> read by `pydarknet train` where its trainer implements it (silent at inference), else
  refused by train and a warning at inference;
- a key no Darknet reads -> Darknet's "Unused field" warning (an error with strict=True);
plus the `dialect="auto"` choice on the shipped cfgs.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from conftest import CFG, run_cli

from pydarknet import Darknet
from pydarknet.cfg.dialect import (
    HARMLESS,
    INFERENCE,
    READS_ALEXEYAB,
    READS_PJREDDIE,
    TRAINING,
    TRAINING_ONLY,
    choose_dialect,
    key_role,
)
from pydarknet.cfg.parser import read_cfg
from pydarknet.cfg.section import Option, Section
from pydarknet.errors import CfgError, CfgWarning, DarknetError, TrainingOptionWarning
from pydarknet.network import _report_unused
from pydarknet.cfg.dialect import trainer_implements
from pydarknet.train.options import check_training_cfg

ALEXEYAB_IN_CFG = {"yolov4.cfg", "yolov4-tiny.cfg", "yolov7-tiny.cfg",  # AlexeyAB's cfgs copied into cfg/
                   "yolov4-tiny-shapes.cfg"}  # and ours from yolov4-tiny.cfg

NET = "[net]\nbatch=1\nsubdivisions=1\nwidth=32\nheight=32\nchannels=3\n{net}\n"
BODY = """
[convolutional]
filters=18
size=1
stride=1
pad=1
activation=linear
{conv}
[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58
classes=1
num=3
{yolo}
"""


def write_cfg(tmp_path: Path, net: str = "", conv: str = "", yolo: str = "") -> Path:
    path = tmp_path / "net.cfg"
    path.write_text(NET.format(net=net) + BODY.format(conv=conv, yolo=yolo))
    return path


def line_col(path: Path, text: str) -> str:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith(text + "="):
            return f"{path}:{number}:{len(text) + 2}"
    raise AssertionError(text)


def test_classification_tables() -> None:
    assert key_role("yolo", "scale_x_y") == INFERENCE
    assert key_role("yolo", "new_coords") == INFERENCE
    assert key_role("yolo", "nms_kind") == INFERENCE
    assert key_role("yolo", "beta_nms") == INFERENCE
    assert key_role("net", "letter_box") == INFERENCE
    assert key_role("conv", "dilation") == INFERENCE  # section aliases
    for key in ("iou_loss", "iou_normalizer", "cls_normalizer", "obj_normalizer", "ignore_thresh", "iou_thresh",
                "max_delta", "jitter", "random", "resize"):
        assert key_role("yolo", key) == TRAINING, key
    for key in ("mosaic", "cutmix", "blur", "flip", "mixup", "learning_rate", "burn_in", "steps"):
        assert key_role("net", key) == TRAINING, key
    assert key_role("net", "use_cuda_graph") == HARMLESS
    assert key_role("yolo", "no_such_key") is None
    # every training-only key is read by some Darknet for that section (no typo in the tables)
    for kind, keys in TRAINING_ONLY.items():
        read = READS_PJREDDIE.get(kind, frozenset()) | READS_ALEXEYAB.get(kind, frozenset())
        assert keys <= read, (kind, keys - read)


def test_unimplemented_inference_key_is_refused(tmp_path: Path) -> None:
    # the exact message of network._report_unused, on a key no layer read
    section = Section("yolo", "x.cfg", 3)
    section.add(Option("scale_x_y", "1.05", 7, 11, "1.05"))
    with pytest.raises(CfgError) as err:
        _report_unused(section, strict=False)
    assert str(err.value) == ("x.cfg:7:11: [yolo] 'scale_x_y=1.05': AlexeyAB's Darknet reads this and it changes the "
                              "boxes; pydarknet does not implement it")
    # end to end: a layer refuses what it does not implement itself, with the same parts
    cfg = write_cfg(tmp_path, conv="coordconv=1")
    with pytest.raises(CfgError) as err:
        Darknet(cfg)
    message = str(err.value)
    assert message.startswith(line_col(cfg, "coordconv") + ": [convolutional] ")
    assert "coordconv=1" in message and "AlexeyAB" in message and "pydarknet does not implement it" in message
    assert "\n" not in message


def test_tracking_embeddings_have_no_effect_on_boxes(tmp_path: Path) -> None:
    # [yolo] embedding_layer: get_yolo_detections copies embeddings out for `detector demo`'s tracking only
    cfg = write_cfg(tmp_path, yolo="embedding_layer=-2")
    with pytest.warns(CfgWarning, match=re.escape(f"{line_col(cfg, 'embedding_layer')}: [yolo] 'embedding_layer=-2' "
                                                  "is read by AlexeyAB's Darknet only for GPU memory, display or video")):
        Darknet(cfg)


def test_training_key_warns_at_inference_only_when_train_refuses_it(tmp_path: Path) -> None:
    """yolov4-tiny's iou_loss, mosaic, resize: read by pydarknet train, silent at inference as in Darknet;
    track=1 (AlexeyAB's video training) is refused by train: a warning says so at inference."""
    cfg = write_cfg(tmp_path, net="mosaic=1\ntrack=1", yolo="iou_loss=ciou\nresize=1.5")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Darknet(cfg)
    messages = [str(w.message) for w in caught if issubclass(w.category, CfgWarning)]
    assert messages == [f"{line_col(cfg, 'track')}: [net] 'track=1' is a training option of AlexeyAB's Darknet: "
                        "no effect at inference; pydarknet train refuses it"]
    assert [w.category for w in caught] == [TrainingOptionWarning]
    Darknet(write_cfg(tmp_path, net="mosaic=1", yolo="iou_loss=ciou\nresize=1.5"), strict=True)  # read by train


def test_training_keys_are_judged_as_pydarknet_train_would(tmp_path: Path) -> None:
    """As `pydarknet train` builds the network: in the cfg's own dialect (iou_loss under a forced pjreddie dialect
    is still trained, so not warned), by the trainer of the network's kind (a classifier's refuses mosaic)."""
    cfg = write_cfg(tmp_path, yolo="iou_loss=ciou")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Darknet(cfg, dialect="pjreddie")
    classifier = tmp_path / "classifier.cfg"
    classifier.write_text(NET.format(net="mosaic=1") + "[convolutional]\nfilters=4\nsize=1\nactivation=leaky\n\n[softmax]\n")
    with pytest.warns(TrainingOptionWarning, match=re.escape(f"{line_col(classifier, 'mosaic')}: [net] 'mosaic=1' is a "
                                                             "training option of AlexeyAB's Darknet: no effect at "
                                                             "inference; pydarknet train refuses it")):
        Darknet(classifier)


def test_unknown_key_is_darknets_unused_field(tmp_path: Path) -> None:
    cfg = write_cfg(tmp_path, yolo="no_such_key=3")
    with pytest.warns(CfgWarning, match=re.escape(f"{line_col(cfg, 'no_such_key')}: [yolo] 'no_such_key=3' is not read by Darknet")):
        Darknet(cfg)
    with pytest.raises(CfgError, match="Unused field"):
        Darknet(cfg, strict=True)


def test_trainer_refuses_unimplemented_training_keys(tmp_path: Path) -> None:
    cfg = write_cfg(tmp_path, net="mosaic=1\nblur=1\nmixup=1\ngaussian_noise=1\ntrack=1\ncutmix=1\ndynamic_minibatch=1",
                    yolo="iou_loss=ciou\nresize=1.5\ndelta_normalizer=2")
    with pytest.raises(DarknetError) as err:
        check_training_cfg(cfg)
    message = str(err.value)
    assert message.startswith(f"{line_col(cfg, 'track')}: [net] track=1: pydarknet train does not "
                              "implement training with this option of AlexeyAB's Darknet")
    assert "(and 1 more: dynamic_minibatch=1)" in message  # AlexeyAB's loss and augmentation keys train
    # AlexeyAB's detection augmentation: a detector's, in its dialect; not a classifier's; not with both of
    # mosaic and letter_box (AlexeyAB's Darknet stops)
    check_training_cfg(write_cfg(tmp_path, net="mosaic=1\nmosaic_bound=1\nflip=0\ncutmix=1", yolo="resize=1.5"))
    check_training_cfg(write_cfg(tmp_path, net="letter_box=1\nmixup=1\nblur=3\ngaussian_noise=20", yolo="iou_loss=ciou"))
    with pytest.raises(DarknetError, match=r"\[net\] mixup=2: AlexeyAB's Darknet trains mixup=1"):
        check_training_cfg(write_cfg(tmp_path, net="mixup=2"))
    with pytest.raises(DarknetError, match=r"\[net\] mosaic=1: pydarknet train does not implement"):
        check_training_cfg(write_cfg(tmp_path, net="mosaic=1"), detector=False)
    cfg = write_cfg(tmp_path, net="mosaic=1\nletter_box=1")
    with pytest.raises(DarknetError, match=re.escape(f"{line_col(cfg, 'letter_box')}: [net] letter_box=1 with mosaic=1: "
                                                     "AlexeyAB's Darknet stops on this combination")):
        check_training_cfg(cfg)
    # AlexeyAB's [yolo] loss keys are implemented in its dialect only (pjreddie's loss has none of them)
    assert trainer_implements("yolo", "iou_loss", "ciou", "alexeyab") and not trainer_implements("yolo", "iou_loss", "ciou")
    check_training_cfg(write_cfg(tmp_path, yolo="iou_loss=giou\niou_thresh=.2\nmax_delta=5\nresize=1\ndelta_normalizer=1"))
    # the pjreddie keys it trains with, neutral AlexeyAB values and no-effect keys are accepted
    assert trainer_implements("yolo", "jitter") and trainer_implements("net", "burn_in")
    assert trainer_implements("net", "mosaic", "0") and not trainer_implements("net", "mosaic", "1")
    check_training_cfg(write_cfg(tmp_path, net="mosaic=0\ncutmix=0\nuse_cuda_graph=1", yolo="jitter=.3\nignore_thresh=.7"))


def test_alexeyab_region_loss_is_refused(tmp_path: Path) -> None:
    """A [region] head in AlexeyAB's dialect: its forward_region_layer differs from pjreddie's, which is the
    [region] loss pydarknet trains; without AlexeyAB's keys the same cfg trains (pjreddie's dialect)."""
    conv = BODY.format(conv="", yolo="").split("[yolo]")[0]
    region = "[region]\nanchors=1,1, 2,2, 3,3\nclasses=1\nnum=3\n"
    cfg = tmp_path / "v2.cfg"
    cfg.write_text(NET.format(net="mosaic=1") + conv + region)
    line = cfg.read_text().splitlines().index("[region]") + 1
    with pytest.raises(DarknetError) as err:
        check_training_cfg(cfg)
    assert str(err.value).startswith(f"{cfg}:{line}: [region] in AlexeyAB's dialect: pydarknet train implements "
                                     "pjreddie's [region] loss, not AlexeyAB's")
    assert f"the cfg is AlexeyAB's by {line_col(cfg, 'mosaic')}: [net] mosaic=1;" in str(err.value)
    cfg.write_text(NET.format(net="") + conv + region)
    check_training_cfg(cfg)


def test_train_console_script_refuses(tmp_path: Path) -> None:
    cfg = write_cfg(tmp_path, net="track=1")
    (tmp_path / "train.txt").write_text(str(tmp_path / "a.jpg") + "\n")
    data = tmp_path / "net.data"
    data.write_text(f"classes=1\ntrain={tmp_path / 'train.txt'}\nbackup={tmp_path}\n")
    run = run_cli("train", data, cfg, "--max-batches", "1", "--workers", "0", cwd=tmp_path, timeout=120)
    assert run.returncode != 0
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert any(f"{line_col(cfg, 'track')}: [net] track=1: pydarknet train does not implement training with this "
               "option of AlexeyAB's Darknet" in line
               for line in lines), run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("path", sorted(CFG.glob("*.cfg")), ids=lambda p: p.name)
def test_auto_dialect_of_shipped_cfgs(path: Path) -> None:
    dialect, why = choose_dialect(read_cfg(path), "auto")
    assert dialect == ("alexeyab" if path.name in ALEXEYAB_IN_CFG else "pjreddie"), why
