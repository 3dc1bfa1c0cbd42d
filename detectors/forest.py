"""The fixed structure of river's HalfSpaceTrees, flattened into arrays shared by every sensor.

river builds its trees with `river.tree.padded.make_padded_tree` and `random.Random(seed)` on the
first `learn_one`. `_grow` makes the same random draws in the same order (a feature by
`rng.choices` weighted by its range, a split by `rng.uniform` within the padded range; left
subtree, then right), so it gives the same trees without importing `river.tree`, which pulls in
scipy and scikit-learn (seconds of start-up); the tests compare the scores with river's own.
Only the masses differ between sensors, so the structure is built once per configuration (a
pure, memoised function of it) and each sensor keeps just its counts.

A reading's path through a tree is fully given by the leaf it reaches, so everything a detector
needs is "which leaf, in each tree": leaves are numbered left to right, so leaf ℓ's ancestor at
depth d is ℓ >> (height - d). With one feature a tree is a set of intervals: a reading's leaves
in all trees follow from one `bisect` over the union of the trees' thresholds.
"""

from __future__ import annotations

import bisect
import functools
import random
from collections.abc import Sequence

import numpy as np

#: river's HalfSpaceTrees pads each split away from the edges of its range by this fraction.
PADDING = 0.15


class Forest:
    """Thresholds and feature of every split of `n_trees` complete trees, in heap order."""

    def __init__(
        self,
        features: Sequence[str],
        limits: Sequence[tuple[float, float]],
        n_trees: int,
        height: int,
        seed: int | None,
    ):
        self.features = tuple(features)  # sorted, as river sorts the first reading's keys
        self.n_trees = n_trees
        self.height = height
        rng = random.Random(seed)
        n_inner = 2**height - 1
        self.feature = np.zeros((n_trees, max(n_inner, 1)), dtype=np.intp)
        self.threshold = np.zeros((n_trees, max(n_inner, 1)))
        for t in range(n_trees):
            self._grow(t, 0, dict(zip(self.features, limits, strict=True)), height, rng)
        self.feature.setflags(write=False)
        self.threshold.setflags(write=False)
        self.single = len(self.features) == 1
        if self.single:
            self._build_cells()

    def _grow(self, t: int, i: int, limits: dict, height: int, rng: random.Random) -> None:
        """Split node i (heap order) of tree t and its subtrees, drawing as river does."""
        if height == 0:
            return
        on = rng.choices(
            population=list(limits.keys()),
            weights=[limits[f][1] - limits[f][0] for f in limits],
        )[0]
        a, b = limits[on]
        at = rng.uniform(a + PADDING * (b - a), b - PADDING * (b - a))
        self.feature[t, i] = self.features.index(on)
        self.threshold[t, i] = at
        limits[on] = (a, at)
        self._grow(t, 2 * i + 1, limits, height - 1, rng)
        limits[on] = (at, b)
        self._grow(t, 2 * i + 2, limits, height - 1, rng)
        limits[on] = (a, b)

    def _build_cells(self) -> None:
        """Cut the line at every threshold of every tree; map each cell to its leaf per tree."""
        self.cuts = sorted(set(self.threshold.ravel().tolist())) if self.height else []
        # a point of cell e lies in [cuts[e-1], cuts[e]); pick one point per cell to walk
        probes = [self.cuts[0] - 1.0] if self.cuts else [0.0]
        probes += self.cuts
        leaves = np.array([self.walk_all((p,)) for p in probes], dtype=np.intp)
        self.cell_leaves = leaves  # (n_cells, n_trees)
        self.cell_leaves.setflags(write=False)
        self._build_node_spans()

    def _build_node_spans(self) -> None:
        """Every node of every tree as a span of cells [start, end), with its depth and its
        strict ancestors (flat node numbers, tree t's node i is t * n_nodes + i)."""
        h, n_cells = self.height, len(self.cell_leaves)
        n_nodes = 2 ** (h + 1) - 1
        depth = np.repeat(np.arange(h + 1), 2 ** np.arange(h + 1))  # heap order
        first_leaf = (np.arange(n_nodes) - (2**depth - 1)) << (h - depth)
        starts, ends = [], []
        for t in range(self.n_trees):  # a tree's leaves grow along the line: spans by search
            column = self.cell_leaves[:, t]
            starts.append(np.searchsorted(column, first_leaf))
            ends.append(np.searchsorted(column, first_leaf + (1 << (h - depth))))
        self.node_start = np.concatenate(starts)
        self.node_end = np.concatenate(ends)
        self.node_depth = np.tile(depth, self.n_trees)
        ancestors = np.full((n_nodes, max(h, 1)), -1, dtype=np.intp)  # -1 pads short paths
        for i in range(1, n_nodes):
            parent = (i - 1) // 2
            ancestors[i] = np.concatenate(([parent], ancestors[parent][:-1]))
        flat = ancestors[None, :, :] + (np.arange(self.n_trees) * n_nodes)[:, None, None]
        flat[np.broadcast_to(ancestors < 0, flat.shape)] = self.n_trees * n_nodes  # always ok
        self.node_ancestors = flat.reshape(-1, ancestors.shape[1])
        self.n_cells = n_cells

    def cell_totals(self, window_cells: Sequence[int], size_limit: float) -> np.ndarray:
        """Single feature: river's score total (all trees) of a reading in each cell, with the
        reference masses of a window whose readings fell in `window_cells`.

        A node adds mass·2^depth to every cell of its span when all its ancestors hold at least
        `size_limit` (river's walk stops after a lighter node). Only nodes holding a reading
        add anything, so the totals are a difference array over the spans of those few nodes.
        """
        per_cell = np.bincount(window_cells, minlength=self.n_cells)
        below = np.concatenate(([0], np.cumsum(per_cell)))  # readings in cells < c
        mass = below[self.node_end] - below[self.node_start]
        held = np.flatnonzero(mass)
        ok = np.append(mass >= size_limit, True)  # the last entry stands for "no ancestor"
        held = held[ok[self.node_ancestors[held]].all(axis=1)]
        add = (mass[held] << self.node_depth[held]).astype(np.float64)  # exact below 2**53
        edges = np.concatenate((self.node_start[held], self.node_end[held]))
        steps = np.bincount(edges, np.concatenate((add, -add)), minlength=self.n_cells + 1)
        return np.cumsum(steps[:-1]).astype(np.int64)

    def walk_all(self, x: Sequence[float]) -> list[int]:
        """Leaf index (left to right) that point `x` reaches in each tree; `x < t` goes left."""
        leaves = []
        feature, threshold, height = self.feature, self.threshold, self.height
        for t in range(self.n_trees):
            i = 0
            for _ in range(height):
                i = 2 * i + 1 if x[feature[t, i]] < threshold[t, i] else 2 * i + 2
            leaves.append(i - (2**height - 1))
        return leaves

    def cell(self, value: float) -> int:
        """Single feature: the index of the cell holding `value` (`value` equal to a cut goes
        right, as river does)."""
        return bisect.bisect_right(self.cuts, value)


@functools.lru_cache(maxsize=32)
def build_forest(
    features: tuple[str, ...],
    limits: tuple[tuple[float, float], ...],
    n_trees: int,
    height: int,
    seed: int | None,
) -> Forest:
    """The forest for one configuration; built once per process and shared (it is read-only)."""
    return Forest(features, limits, n_trees, height, seed)


def leaf_scores(leaf_counts: np.ndarray, height: int, size_limit: float) -> np.ndarray:
    """Per tree and leaf, river's `_walk_score` total for a reading that reaches that leaf.

    `leaf_counts[t, ℓ]` is how many reference-window readings reached leaf ℓ of tree t; a node's
    mass is the sum over its leaves. The walk adds mass·2^depth and stops after a node whose mass
    is below `size_limit`, as river does. Integers throughout, so sums are exact.
    """
    n_trees = leaf_counts.shape[0]
    levels = [leaf_counts]  # node masses, deepest level first: a node's is its two children's sum
    for _ in range(height):
        levels.append(levels[-1].reshape(n_trees, -1, 2).sum(axis=2))
    score = np.zeros((n_trees, 1), dtype=np.int64)
    alive = np.ones((n_trees, 1), dtype=bool)
    for depth, mass in enumerate(reversed(levels)):  # top down: level d has 2^d nodes
        if depth:
            score, alive = np.repeat(score, 2, axis=1), np.repeat(alive, 2, axis=1)
        score += np.where(alive, mass << depth, 0)
        alive &= mass >= size_limit
    return score
