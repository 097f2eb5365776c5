"""[softmax]: Darknet's softmax layer (src/softmax_layer.c).

Over the flattened input (c*h*w) split into `groups` equal chunks, with
`temperature`; with `tree=` the softmax is taken within each group of the
hierarchy instead (darknet9000-style classifiers).

Training (`loss`): Darknet's forward_softmax_layer with `net.truth` set runs
softmax_x_ent: `delta = truth - output` (whatever the temperature), the
cost is the sum of `-log(output)` where truth is non-zero; backward adds the
delta to the input's delta unchanged.  With a tree, truth groups that hold
no label are filled with SECRET_NUM by fill_hierarchy, and the GPU build
(`forward_softmax_layer_gpu`, mask_gpu) zeroes delta and cost there.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pydarknet.cfg.section import Section
from pydarknet.layers.base import Layer, Shape
from pydarknet.tree import Tree, group_softmax, read_tree

# Darknet: SECRET_NUM (src/darknet.h), the truth value of "no label here".
SECRET_NUM = -1234.0


class Softmax(Layer):
    kind = "softmax"

    def __init__(self, section: Section, index: int, shapes: dict[int, Shape]) -> None:
        super().__init__(section, index)
        self.groups = section.get_int("groups", 1)
        self.temperature = section.get_float("temperature", 1.0)
        self.tree: Tree | None = section.read_file("tree", read_tree)
        if section.get_float("spatial", 0.0):
            raise section.error("spatial softmax is not supported", "spatial")
        self.noloss = section.get_int("noloss", 0)
        c, h, w = shapes[index - 1]
        inputs = c * h * w
        if self.groups < 1 or inputs % self.groups:
            raise section.error(f"groups={self.groups} must divide the {inputs} inputs", "groups")
        if self.temperature == 0:
            raise section.error("temperature must not be 0", "temperature")
        if self.tree is not None and self.tree.n > inputs:
            raise section.error(f"tree has {self.tree.n} classes but the layer has {inputs} inputs", "tree")
        self.register_buffer("group_index", torch.tensor(self.tree.group if self.tree else [], dtype=torch.long), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        flat = x.reshape(x.shape[0], -1)
        if self.temperature != 1.0:
            flat = flat / self.temperature
        if self.tree is not None:
            n = self.tree.n
            head = group_softmax(flat[:, :n], self.group_index, self.tree.groups, dim=1)
            out = torch.cat([head, flat[:, n:]], dim=1)
        else:
            out = torch.softmax(flat.reshape(x.shape[0], self.groups, -1), dim=2)
        return out.reshape(x.shape)

    def loss(self, raw: Tensor, truth: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Darknet's forward with truth: (output, delta, cost), output and delta as `raw`'s shape.

        `truth` is (N, inputs).  With `noloss=1` the delta and cost are 0.
        """
        output = self(raw)
        p = output.reshape(raw.shape[0], -1)
        t = truth.reshape(p.shape).to(p.dtype)
        if self.noloss:
            return output, torch.zeros_like(output), p.new_zeros(())
        delta = t - p  # Darknet: softmax_x_ent_cpu
        error = torch.where(t != 0, -torch.log(p), torch.zeros_like(p))
        if self.tree is not None:  # Darknet: forward_softmax_layer_gpu, mask_gpu(..., SECRET_NUM, truth, 0)
            unlabelled = t == SECRET_NUM
            delta = delta.masked_fill(unlabelled, 0.0)
            error = error.masked_fill(unlabelled, 0.0)
        return output, delta.reshape(raw.shape), error.sum()

    def describe(self) -> str:
        return f"       groups {self.groups}"
