"""AlexeyAB's `random` multi-scale rule (src/detector.c train_detector, 59596d7) against its C lines on fixed draws:
tests/golden-alexeyab-extra/multiscale/sizes.json (tools/goldens/alexeyab_net_train: `net_train multiscale`, the
lines after `if (l.random && count++ % 10 == 0)` compiled as Darknet is, -Ofast): resize_step 32, 64, 16, 10;
random 1 (coef 1.4), 1.5, 2, 3; the first resize, the last 100 iterations and the iteration just before them;
draws below 1 that would enlarge a side.  Exact."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ROOT
from pydarknet.cli import main
from pydarknet.errors import DarknetError
from pydarknet.train import trainer
from pydarknet.train.options import check_training_cfg
from pydarknet.train.multiscale import alexeyab_coef, alexeyab_multiscale_size, alexeyab_size, resize_lines
from training_data import make_cfg, make_dataset

GOLDEN = ROOT / "tests" / "golden-alexeyab-extra" / "multiscale" / "sizes.json"
CASES = json.loads(GOLDEN.read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_size_rule_matches_alexeyab(case: dict) -> None:
    for random_val, w, h in case["sizes"]:
        ours = alexeyab_size(np.float32(random_val), tuple(case["init"]), case["resize_step"], case["random"],
                             case["iteration"], case["max_batches"], first=case["avg_loss"] < 0)
        assert ours == (w, h), f"{case['name']} random_val {random_val}: {ours}, Darknet {w}x{h}"


def test_schedule_draws_per_period() -> None:
    """The first 10 iterations at the largest size, then one draw per 10 in [1/1.4, 1.4] times 416, rounded to
    32 plus 32; the last 100 at the largest; random=0 keeps the cfg's size."""
    size = lambda b: alexeyab_multiscale_size(b, 1000, 7, (416, 416), 1.0, 32.0)  # noqa: E731
    assert {size(b) for b in range(10)} == {(608, 608)}
    sizes = [size(b) for b in range(10, 900, 10)]
    assert all(size(b) == size(b - b % 10) for b in range(10, 900))
    assert len(set(sizes)) > 3 and all(320 <= w <= 608 and w % 32 == 0 and w == h for w, h in sizes)
    assert size(900) != (608, 608) or size(905) == size(900)
    assert {size(b) for b in range(910, 1000)} == {(608, 608)}
    assert alexeyab_multiscale_size(123, 1000, 7, (416, 416), 0.0, 32.0) == (416, 416)
    assert alexeyab_coef(1) == np.float32(1.4) and alexeyab_coef(1.5) == np.float32(1.5)


def test_resize_lines_are_train_detectors() -> None:
    """What train_detector prints as it draws a size (pjreddie's examples/detector.c, AlexeyAB's src/detector.c),
    at a run's first batch and where a size is drawn here (every 10 batches)."""
    def size(batch: int) -> tuple[int, int]:
        return 320 + 32 * (batch // 10), 288

    assert resize_lines("pjreddie", 1, size, 3, 3) == ["Resizing", "320"]  # printf("Resizing\n"); printf("%d\n", dim)
    assert [resize_lines("pjreddie", 1, size, 3, b) for b in (4, 9, 11)] == [[], [], []]
    assert resize_lines("pjreddie", 1, size, 3, 10) == ["Resizing", "352"]
    # printf("Resizing, random_coef = %.2f \n", rand_coef); ... printf("\n %d x %d \n", dim_w, dim_h)
    assert resize_lines("alexeyab", 1, size, 0, 20) == ["Resizing, random_coef = 1.40 ", "", " 384 x 288 "]
    assert resize_lines("alexeyab", 1.5, size, 0, 0) == ["Resizing, random_coef = 1.50 ", "", " 320 x 288 "]


def test_trainer_uses_alexeyabs_sizes_and_resize_step(tmp_path, one_thread, monkeypatch, capsys) -> None:
    """`pydarknet detector train` on a cfg in AlexeyAB's dialect with random=1: its first iterations at the largest
    size, round(1.4 * 64 / resize_step + 1) * resize_step (pjreddie's would be 608x608), printed as it prints them."""
    data = make_dataset(tmp_path / "ds")
    cfg = make_cfg(tmp_path, random=1, max_batches=2, alexeyab=True)
    cfg.write_text(cfg.read_text().replace("mosaic=0", "mosaic=0\nresize_step=16"))
    sizes = []
    real = trainer.train_network

    def step(net, state, x, truth, log=None):  # type: ignore[no-untyped-def]
        sizes.append(tuple(x.shape[2:]))
        return real(net, state, x, truth, log)

    monkeypatch.setattr(trainer, "train_network", step)
    assert main(["detector", "train", str(data), str(cfg), "-dont_show", "--workers", "0"]) == 0
    assert sizes == [(112, 112)] * 2  # roundl(1.4 * 64 / 16 + 1) * 16
    out = capsys.readouterr().out.splitlines()
    first = out.index("Resizing, random_coef = 1.40 ")
    assert out[first + 1 : first + 3] == ["", " 112 x 112 "] and out[first + 3].startswith("Loaded: ")
    assert out[first + 4].startswith(" 1: ") and out.count("Resizing, random_coef = 1.40 ") == 1


def test_resize_step_not_above_0_is_refused(tmp_path) -> None:
    cfg = make_cfg(tmp_path, random=1, alexeyab=True)
    cfg.write_text(cfg.read_text().replace("mosaic=0", "mosaic=0\nresize_step=0"))
    with pytest.raises(DarknetError, match=r"t.cfg:1: \[net\] resize_step=0: AlexeyAB's train_detector divides"):
        check_training_cfg(cfg)


def test_negative_random_is_refused_in_alexeyabs_dialect(tmp_path) -> None:
    cfg = make_cfg(tmp_path, alexeyab=True)
    cfg.write_text(cfg.read_text().replace("random=0", "random=-1.5"))
    with pytest.raises(DarknetError, match=r"t.cfg:\d+:\d+: \[yolo\] random=-1.5: AlexeyAB's rand_scale\(-1.5\) draws"):
        check_training_cfg(cfg)
    cfg.write_text(cfg.read_text().replace("mosaic=0\n", ""))  # pjreddie's: atoi(-1.5) = -1, multi-scale on
    check_training_cfg(cfg)
