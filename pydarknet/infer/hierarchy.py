"""YOLO9000's class hierarchy at detection time (src/tree.c).

`hierarchy_predictions` turns each node's conditional probability into the
absolute one (product along the path to the root), and
`hierarchy_top_prediction` walks the tree from the root group, descending
while the running probability stays above `hier_thresh`.  Both are batched
over rows (one row per anchor and cell); NaN entries (Darknet's CPU tree
output, see pydarknet/layers/region.py) behave as in C, where every
comparison with NaN is false.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from pydarknet.tree import Tree


@dataclass(frozen=True)
class TreeIndex:
    """A Tree as index tensors: nodes by depth, and groups padded to one width."""

    levels: list[Tensor]  # nodes at depth 1, 2, ... (depth 0 has no parent)
    parent: Tensor  # (n,)
    child: Tensor  # (n,) group of a node's children, -1 for leaves
    group_offset: Tensor  # (groups,)
    group_members: Tensor  # (groups, widest) node indices, 0 where padded
    group_valid: Tensor  # (groups, widest) bool

    @classmethod
    def build(cls, tree: Tree, device: torch.device) -> "TreeIndex":
        depth = [0] * tree.n
        for node, parent in enumerate(tree.parent):  # parents precede children in a tree file
            depth[node] = depth[parent] + 1 if parent >= 0 else 0
        depth_t = torch.tensor(depth)
        levels = [torch.nonzero(depth_t == d).flatten().to(device) for d in range(1, max(depth) + 1)]
        size = torch.tensor(tree.group_size)
        offset = torch.tensor(tree.group_offset)
        slot = torch.arange(int(size.max()))
        valid = slot[None, :] < size[:, None]
        members = torch.where(valid, offset[:, None] + slot[None, :], torch.zeros((), dtype=torch.long))
        return cls(levels, torch.tensor(tree.parent, device=device), torch.tensor(tree.child, device=device),
                   offset.to(device), members.to(device), valid.to(device))


_INDEX_CACHE: dict[tuple[int, str], tuple[Tree, TreeIndex]] = {}


def tree_index(tree: Tree, device: torch.device) -> TreeIndex:
    """The (cached) TreeIndex of `tree` on `device`."""
    key = (id(tree), str(device))
    if key not in _INDEX_CACHE or _INDEX_CACHE[key][0] is not tree:
        _INDEX_CACHE[key] = (tree, TreeIndex.build(tree, device))
    return _INDEX_CACHE[key][1]


def hierarchy_predictions(probs: Tensor, index: TreeIndex) -> Tensor:
    """Darknet's hierarchy_predictions (only_leaves=0) on rows of class probabilities.

    Darknet: `predictions[j] *= predictions[parent[j]]` for j ascending, in
    place; a parent is final before its children, so depth by depth gives
    the same products.
    """
    out = probs.clone()
    for nodes in index.levels:
        out[:, nodes] = out[:, nodes] * out[:, index.parent[nodes]]
    return out


def hierarchy_top_prediction(probs: Tensor, index: TreeIndex, thresh: float) -> Tensor:
    """Darknet's hierarchy_top_prediction for every row of `probs` (after hierarchy_predictions).

    From group 0: take the group's largest value (`val > max`, max starting
    at 0 and max_i at 0: first maximum wins, NaN and values <= 0 never do);
    if `p * max > thresh` multiply p by it and descend (a leaf is returned);
    otherwise return max_i in the root group, else the parent of the group.
    """
    rows = probs.shape[0]
    device = probs.device
    group = torch.zeros(rows, dtype=torch.long, device=device)
    p = torch.ones(rows, dtype=probs.dtype, device=device)
    result = torch.zeros(rows, dtype=torch.long, device=device)
    active = torch.ones(rows, dtype=torch.bool, device=device)
    for _ in range(len(index.levels) + 1):
        members = index.group_members[group]
        values = probs.gather(1, members)
        candidate = index.group_valid[group] & (values > 0)  # Darknet: val > max, max = 0 (false for NaN)
        best, slot = torch.where(candidate, values, torch.full_like(values, -1.0)).max(dim=1)
        found = candidate.any(dim=1)
        max_value = torch.where(found, best, torch.zeros_like(best))
        max_i = torch.where(found, members.gather(1, slot[:, None]).squeeze(1), torch.zeros_like(slot))
        product = p * max_value
        descend = product > thresh
        child = index.child[max_i]
        stop_at_max = descend & (child < 0) | ~descend & (group == 0)
        stop_at_parent = ~descend & (group != 0)
        parent_of_group = index.parent[index.group_offset[group]]
        result = torch.where(active & stop_at_max, max_i, result)
        result = torch.where(active & stop_at_parent, parent_of_group, result)
        active = active & descend & (child >= 0)
        if not bool(active.any()):
            break
        p = torch.where(active, product, p)
        group = torch.where(active, child, group)
    return result
