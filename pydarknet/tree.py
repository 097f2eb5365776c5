"""Darknet's class hierarchy for YOLO9000 (src/tree.c:read_tree).

A tree file has one line per class, `name parent_index`.  Consecutive lines
with the same parent form a group (softmax is taken per group).  Darknet
opens a new group whenever the parent differs from the previous line's, and
its first group starts at line 0 with parent -1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from pydarknet.cfg.files import read_text_file
from pydarknet.errors import CfgError


@dataclass(frozen=True)
class Tree:
    names: list[str]
    parent: list[int]
    child: list[int]  # group index of a node's children, -1 for leaves
    group: list[int]  # group index of each node
    group_offset: list[int]
    group_size: list[int]

    @property
    def n(self) -> int:
        return len(self.names)

    @property
    def groups(self) -> int:
        return len(self.group_size)


def read_tree(path: str | Path) -> Tree:
    """The hierarchy of a tree file (a regular UTF-8 text file); a bad line is a CfgError naming it."""
    names: list[str] = []
    parent: list[int] = []
    group: list[int] = []
    offsets: list[int] = []
    sizes: list[int] = []
    last_parent, group_size = -1, 0
    lines = read_text_file(path, "tree file").splitlines()
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        try:
            p = int(fields[1]) if len(fields) > 1 else -1
        except ValueError:
            raise CfgError(f"{path}:{number}: expected 'name parent_index', found {line!r}") from None
        if not -1 <= p < len(names):
            raise CfgError(f"{path}:{number}: parent {p} is not an earlier line")
        if p != last_parent:
            offsets.append(len(names) - group_size)
            sizes.append(group_size)
            group_size, last_parent = 0, p
        group.append(len(sizes))
        names.append(fields[0])
        parent.append(p)
        group_size += 1
    offsets.append(len(names) - group_size)
    sizes.append(group_size)
    child = [-1] * len(names)
    for i, p in enumerate(parent):
        if p >= 0:
            child[p] = group[i]
    return Tree(names, parent, child, group, offsets, sizes)


def group_softmax(x: torch.Tensor, group: torch.Tensor, groups: int, dim: int) -> torch.Tensor:
    """Softmax of `x` along `dim` within each group (`group[i]` = group of entry i).

    Darknet loops over the groups' contiguous ranges (softmax_cpu per group);
    this is the same computation in a few vectorised scatter operations.
    """

    moved = x.movedim(dim, -1)
    index = group.to(moved.device).expand_as(moved)
    shape = (*moved.shape[:-1], groups)
    peak = torch.full(shape, float("-inf"), dtype=moved.dtype, device=moved.device)
    peak = peak.scatter_reduce(-1, index, moved, reduce="amax", include_self=True)
    e = torch.exp(moved - peak.gather(-1, index))
    total = torch.zeros(shape, dtype=moved.dtype, device=moved.device).scatter_add(-1, index, e)
    return (e / total.gather(-1, index)).movedim(-1, dim)
