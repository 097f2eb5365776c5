"""ONNX export (the optional extra `pip install pydarknet[onnx]`).

The graph is the network up to its raw heads: one output per `[region]` /
`[yolo]` / `[detection]` layer, holding that layer's *input* (the last
conv's raw output, `head_<index>`), or the network's last layer for a
classifier.  The batch dimension is dynamic; the input size is the cfg's or
the one asked for.  With `decode=True` the graph also decodes the boxes of
every `[region]`/`[yolo]` head into one output `detections` of shape
(batch, boxes, 5 + classes): per anchor and cell (anchor-major, Darknet's
[region] order; its [yolo] order is cell-major) x, y, w, h relative to the
network input (box centre and size: `get_region_box` / `get_yolo_box`,
AlexeyAB's `new_coords=1` sizes included), the objectness, then
objectness * class score per class, i.e. Darknet's `prob` before its
thresholds and before `correct_region_boxes` undoes the letterbox.
"""

from __future__ import annotations

import io
import warnings

import torch
from torch import Tensor, nn

from pydarknet.errors import DarknetError
from pydarknet.layers.region import Region
from pydarknet.layers.yolo import Yolo
from pydarknet.network import HEAD_TYPES, Darknet

OPSET = 17


def require_onnx() -> None:
    """A one-line error when the `onnx` extra is not installed."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise DarknetError("ONNX export needs the onnx package: pip install pydarknet[onnx]") from None


def decode_boxes(layer: Region | Yolo, output: Tensor, net_width: int, net_height: int) -> Tensor:
    """(batch, num*h*w, 5 + classes) boxes from a head's activated output (Darknet's `l.output`).

    Sizes are exp(t) * anchor, or with AlexeyAB's `new_coords=1` t * t * 4 * anchor
    (src/yolo_layer.c get_yolo_box).
    """
    b, _, h, w = output.shape
    coords = layer.coords if isinstance(layer, Region) else 4
    v = output.view(b, layer.num, coords + 1 + layer.classes, h, w)
    if isinstance(layer, Region):  # anchors in grid cells (get_region_box)
        anchors = layer.anchors / torch.tensor([w, h], dtype=output.dtype, device=output.device)
    else:  # anchors in pixels, masked (get_yolo_box)
        mask = torch.tensor(layer.mask, device=output.device)
        anchors = layer.anchors[mask] / torch.tensor([net_width, net_height], dtype=output.dtype, device=output.device)
    cols = torch.arange(w, dtype=output.dtype, device=output.device).view(1, 1, 1, w)
    rows = torch.arange(h, dtype=output.dtype, device=output.device).view(1, 1, h, 1)
    x = (v[:, :, 0] + cols) / w
    y = (v[:, :, 1] + rows) / h
    t = v[:, :, 2:4]
    size = t * t * 4 if isinstance(layer, Yolo) and layer.new_coords else torch.exp(t)
    bw = size[:, :, 0] * anchors[:, 0].view(1, -1, 1, 1)
    bh = size[:, :, 1] * anchors[:, 1].view(1, -1, 1, 1)
    obj = v[:, :, coords]
    probs = obj.unsqueeze(2) * v[:, :, coords + 1 :]
    boxes = torch.cat([torch.stack([x, y, bw, bh, obj], dim=2), probs], dim=2)
    return boxes.permute(0, 1, 3, 4, 2).reshape(b, layer.num * h * w, -1)


class HeadGraph(nn.Module):
    """The network up to its raw heads (and, with `decode`, the decoded boxes): what is exported."""

    def __init__(self, net: Darknet, decode: bool = False) -> None:
        super().__init__()
        self.net = net
        self.decode = decode
        self.stop = max(net.output_indices)
        heads = [net.layers[i] for i in net.output_indices]
        if decode:
            bad = [h for h in heads if not isinstance(h, (Region, Yolo)) or (isinstance(h, Region) and h.tree is not None)]
            if bad:
                what = "a tree= hierarchy" if isinstance(bad[0], Region) else f"[{bad[0].kind}]"
                raise DarknetError(f"{net.cfg_path}: --decode handles [region] and [yolo] heads, not layer {bad[0].index} ({what})")

    def output_names(self) -> list[str]:
        names = [f"head_{i}" for i in self.net.output_indices]
        return names + ["detections"] if self.decode else names

    def forward(self, x: Tensor) -> list[Tensor]:
        outputs: list[Tensor] = []
        raw: list[Tensor] = []
        for layer in list(self.net.layers)[: self.stop + 1]:
            inputs = [x if s < 0 else outputs[s] for s in layer.sources]
            if isinstance(layer, HEAD_TYPES):
                raw.append(inputs[0])
                outputs.append(inputs[0])
            else:
                outputs.append(layer(*inputs))
                if layer.index in self.net.output_indices:
                    raw.append(outputs[-1])
        if not self.decode:
            return raw
        heads = [self.net.layers[i] for i in self.net.output_indices]
        boxes = [decode_boxes(head, head(r), self.net.width, self.net.height) for head, r in zip(heads, raw)]
        return [*raw, torch.cat(boxes, dim=1)]


def onnx_bytes(net: Darknet, decode: bool = False) -> bytes:
    """The ONNX model of `net` at its current input size, batch dimension dynamic."""
    require_onnx()
    graph = HeadGraph(net, decode).eval()
    names = graph.output_names()
    example = torch.zeros(1, *net.input_shape)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph, (example,), buffer, dynamo=False, opset_version=OPSET,
            input_names=["input"], output_names=names,
            dynamic_axes={name: {0: "batch"} for name in ["input", *names]},
        )
    return buffer.getvalue()
