"""The cfg grammar and typed sections: Darknet's dialect and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pydarknet import CfgError, Darknet
from pydarknet.cfg import parse_cfg, read_data_file
from pydarknet.errors import CfgWarning

TINY = """[net]
width=32
height=32
channels=3

[convolutional]
filters=8
size=3
stride=1
pad=1
activation=leaky
"""


def write(tmp_path: Path, text: str | bytes, name: str = "t.cfg") -> Path:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def build(tmp_path: Path, text: str, **kw) -> Darknet:
    return Darknet(write(tmp_path, text), **kw)


def test_dialect_comments_spaces_lists_crlf_no_final_newline(tmp_path):
    text = (
        "# leading comment\r\n[net]\r\n; other comment\r\n  width = 64 \r\nheight=32\r\nchannels=3\r\n\r\n"
        "[region]\r\nanchors =  0.57, 0.67 ,1.87,2.06\r\nnum=2\r\nclasses=1\r\ncoords=4"
    )
    _, sections = parse_cfg(text, "x.cfg")
    assert [s.kind for s in sections] == ["net", "region"]
    assert sections[0].options["width"].value == "64"
    assert sections[1].get_floats("anchors") == [0.57, 0.67, 1.87, 2.06]
    assert sections[1].options["coords"].line == 12


def test_darknet_strip_joins_pieces_and_first_key_wins():
    _, (net,) = parse_cfg("[net]\nsaturation = 1 .5\nbatch=64\nbatch=1\n")
    assert net.get_float("saturation") == 1.5
    assert net.get_int("batch") == 64  # Darknet's option_find returns the first
    assert [o.value for o in net.duplicates] == ["1"]


def test_network_alias_and_layer_aliases(tmp_path):
    net = build(tmp_path, TINY.replace("[net]", "[network]").replace("[convolutional]", "[conv]") + "\n[max]\n\n[avg]\n\n[soft]\n")
    assert [layer.kind for layer in net.layers] == ["convolutional", "maxpool", "avgpool", "softmax"]


@pytest.mark.parametrize(
    "text, where, words",
    [
        ("[net]\nwidth=\n", ":2:7:", "no value"),
        ("[net]\nwidth 3\n", ":2:", "'='"),
        ("[net\n", ":1:5:", "']'"),
        ("[net]\nlayers=1,,2\n", ":2:10:", "a value"),
        ("width=3\n[net]\n", ":1:", "outside any section"),
        ("[convolutional]\n", ":1:", "first section must be [net]"),
        ("[net]\nwidth=abc\nheight=3\nchannels=3\n[maxpool]\n", ":2:7:", "not a whole number"),
        ("[net]\nwidth=3\nheight=3\nchannels=3\n[maxpool]\nstride=1.5\n", ":6:8:", "not a whole number"),
    ],
)
def test_errors_name_file_line_column(tmp_path, text, where, words):
    path = write(tmp_path, text)
    with pytest.raises(CfgError) as err:
        Darknet(path)
    message = str(err.value)
    assert message.startswith(str(path) + where), message
    assert words in message
    assert "\n" not in message


def test_unknown_section_names_type_and_line(tmp_path):
    with pytest.raises(CfgError, match=r"t\.cfg:13: section \[wobble\] is not a Darknet layer type"):
        build(tmp_path, TINY + "\n[wobble]\n")
    with pytest.raises(CfgError, match=r"t\.cfg:13: section \[lstm\] \(recurrent\) is in .*Darknet; pydarknet does not implement it"):
        build(tmp_path, TINY + "\n[lstm]\n")


def test_unknown_key_warns_like_darknet_or_fails_strict(tmp_path):
    text = TINY + "colour=blue\n"
    with pytest.warns(CfgWarning, match=r"t\.cfg:12:8: \[convolutional\] 'colour=blue' is not read"):
        build(tmp_path, text)
    with pytest.raises(CfgError, match="colour=blue"):
        build(tmp_path, text, strict=True)


def test_known_defaults_from_parser_c(tmp_path):
    net = build(tmp_path, "[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=6\n[maxpool]\nstride=2\n[region]\nclasses=1\n")
    conv, pool, region = net.layers
    assert (conv.filters - 5, conv.size, conv.stride, conv.padding, conv.activation.name) == (1, 1, 1, 0, "logistic")
    assert (pool.size, pool.padding) == (2, 1)
    assert region.anchors.tolist() == [[0.5, 0.5]] and region.thresh == 0.5 and region.max_boxes == 30
    assert net.options.decay == 0.0001 and net.options.policy == "constant"


def test_pad_means_size_over_two(tmp_path):
    net = build(tmp_path, TINY.replace("size=3", "size=1").replace("pad=1", "pad=1\npadding=5"))
    assert net.layers[0].padding == 0


def test_route_and_shortcut_indices(tmp_path):
    text = TINY + "\n[convolutional]\nfilters=4\nactivation=linear\n[route]\nlayers=-1,0\n[shortcut]\nfrom=-3\n"
    with pytest.raises(CfgError, match="not an earlier layer"):
        build(tmp_path, TINY + "[route]\nlayers=5\n")
    net = build(tmp_path, text.replace("from=-3", "from=-2").replace("filters=4", "filters=4") + "")
    assert net.layers[2].sources == (1, 0)
    assert net.layers[2].out_shape == (12, 32, 32)


def test_route_size_mismatch_is_an_error(tmp_path):
    text = TINY + "[maxpool]\nsize=2\nstride=2\n[route]\nlayers=-1,-2\n"
    with pytest.raises(CfgError, match=r"\[route\] layer 0 is 32x32 but layer 1 is 16x16"):
        build(tmp_path, text)


def test_region_channel_check(tmp_path):
    with pytest.raises(CfgError, match=r"needs num\*\(classes\+coords\+1\) = 5\*\(20\+4\+1\) = 125 input channels; the previous layer gives 8"):
        build(tmp_path, TINY + "[region]\nnum=5\n")


def test_cfg_paths_resolve_cwd_then_cfg_folder_then_parent(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.tree").write_text("a -1\nb -1\n")
    sub = tmp_path / "cfg"
    sub.mkdir()
    text = "[net]\nwidth=1\nheight=1\nchannels=7\n[region]\nclasses=2\nsoftmax=1\ntree=data/t.tree\n"
    monkeypatch.chdir(sub)
    net = build(sub, text)
    assert net.layers[0].tree.n == 2
    with pytest.raises(CfgError, match=r"t\.cfg:8:6: \[region\] tree=data/nope\.tree: file not found \(tried data/nope\.tree"):
        build(sub, text.replace("t.tree", "nope.tree"))


def test_data_file(tmp_path):
    data = read_data_file(write(tmp_path, "classes= 20\ntrain  = /x/train.txt\nnames = data/voc.names\n", "voc.data"))
    assert data.get_int("classes") == 20 and data.get_str("train") == "/x/train.txt"


def test_not_text(tmp_path):
    with pytest.raises(CfgError, match="not a text file"):
        Darknet(write(tmp_path, b"[net]\n\xff\xfe\n"))


def test_unreadable_cfg(tmp_path):
    with pytest.raises(CfgError, match="missing.cfg: no such cfg"):
        Darknet(tmp_path / "missing.cfg")


def test_alexeyab_options(tmp_path):
    text = TINY.replace("leaky", "mish") + "[convolutional]\nfilters=8\nactivation=swish\n[route]\nlayers=-1\ngroups=2\ngroup_id=1\n[shortcut]\nfrom=-3\nactivation=leaky\n"
    net = build(tmp_path, text.replace("channels=3", "channels=3\nletter_box=0"))
    assert net.options.letter_box == 0
    assert net.layers[2].out_shape == (4, 32, 32)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        outs = net.eval().forward_layers(x)
    assert torch.equal(outs[2], outs[1][:, 4:])


def test_resize_recomputes_shapes_and_rolls_back_on_error(tmp_path):
    net = Darknet(cfg_dir() / "yolov2-slim.cfg")
    net.resize(224, 160)
    assert net.layers[-1].out_shape == (125, 5, 7)
    assert net.layers[27].out_shape == (32, 5, 7)  # reorg: 8x10x14 -> 32x5x7
    with pytest.raises(CfgError, match=r"cannot resize to 200x200: .*\[reorg\] stride=2 needs height and width divisible by 2"):
        net.resize(200, 200)
    assert (net.width, net.height) == (224, 160) and net.layers[-1].out_shape == (125, 5, 7)


def cfg_dir() -> Path:
    from conftest import CFG

    return CFG
