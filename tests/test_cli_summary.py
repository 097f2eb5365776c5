"""`pydarknet summary` through the real console script."""

from conftest import run_cli


def test_summary_prints_darknet_table():
    out = run_cli("summary", "cfg/yolov2-tiny.cfg")
    assert out.returncode == 0, out.stderr
    assert "Total BFLOPs 5.4" in out.stdout and "region" in out.stdout


def test_summary_bad_input_is_one_line_exit_1(tmp_path):
    bad = tmp_path / "bad.cfg"
    bad.write_text("[net]\nwidth=abc\n")
    for args in (("summary", "nope.cfg"), ("summary", str(bad)), ("summary", "cfg/yolov2-tiny.cfg", "cfg/coco.names")):
        out = run_cli(*args)
        assert out.returncode == 1
        assert out.stderr.startswith("pydarknet: ") and out.stderr.count("\n") == 1, out.stderr
        assert "Traceback" not in out.stderr
