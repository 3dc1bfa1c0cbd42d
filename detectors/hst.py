"""HalfSpaceTrees per sensor with river's exact scores, at a fraction of river's cost.

river's `HalfSpaceTrees` walks 10 trees of 511 node objects twice per reading (score, learn).
Within a window the reference masses are frozen, so a reading's score depends only on the leaf it
reaches in each tree. At each window's end we tabulate the scores: with one feature, the total of
every cell of the line at once (`Forest.cell_totals`: a difference array over the spans of the few
nodes that hold readings), so a reading costs a `bisect` and a lookup; with several, per leaf of
each tree, and a reading costs a short walk. The scores are river's bit for bit (integer masses,
the same final division); the tests check it.

Scored before learnt (no leakage). river scores 0 until a detector has learnt its first window:
those readings are `warming_up`, never normal nor anomalous. A reading whose features are
missing (even after imputation) is `unscored` and is not learnt.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from detectors.forest import Forest, build_forest, leaf_scores

#: The example's configuration: PM1.0 (CF=1), limits 0–1200 µg/m³.
DEFAULT_FEATURES = ("pm1.0_cf_1",)
DEFAULT_LIMITS = {"pm1.0_cf_1": (0.0, 1200.0)}


class HalfSpaceTreesDetector:
    """Score then learn one reading at a time; scores equal river's `HalfSpaceTrees`.

    >>> det = HalfSpaceTreesDetector(window_size=3)
    >>> [det.score_then_learn({"pm1.0_cf_1": v})[1] for v in (5.0, 6.0, 5.0, 900.0)]
    ['warming_up', 'warming_up', 'warming_up', 'scored']
    """

    def __init__(
        self,
        features: Sequence[str] = DEFAULT_FEATURES,
        limits: Mapping[str, tuple[float, float]] | None = None,
        *,
        n_trees: int = 10,
        height: int = 8,
        window_size: int = 72,
        seed: int | None = 11,
    ):
        self.features = tuple(features)
        if not self.features:
            raise ValueError("at least one feature is needed")
        limits = dict(DEFAULT_LIMITS if limits is None else limits)
        lacking = [f for f in self.features if f not in limits]
        if lacking:
            raise ValueError(f"no limits for features {lacking}: give limits={{name: (lo, hi)}}")
        for name in self.features:
            lo, hi = limits[name]
            if not lo < hi:
                raise ValueError(f"limits for {name!r} must have lo < hi, got {(lo, hi)}")
        if window_size < 1 or n_trees < 1 or height < 0:
            raise ValueError("window_size and n_trees must be ≥ 1, height ≥ 0")
        self.limits = {f: (float(limits[f][0]), float(limits[f][1])) for f in self.features}
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.seed = seed
        self.learned = 0
        self._max_score = n_trees * window_size * (2 ** (height + 1) - 1)
        self._window: list[Any] = []  # this window's cells (one feature) or leaf lists
        # from the last full window: one feature, the total score of each cell of the line;
        # several, the score of each leaf of each tree (totals then cached per cell)
        self._scores: np.ndarray | None = None
        self._cache: dict[Any, int] = {}  # several features: cell -> total, for this window
        self._attach()

    def _attach(self) -> None:
        order = sorted(self.features)  # river builds its trees over the sorted feature names
        self._forest: Forest = build_forest(
            tuple(order),
            tuple(self.limits[f] for f in order),
            self.n_trees,
            self.height,
            self.seed,
        )
        self._order = order
        self._trees = np.arange(self.n_trees)
        self._dtype = np.uint32 if self._max_score < 2**32 else np.int64  # fits any total
        # one feature: a reading's cell is one bisect over all the trees' cuts
        self._single = self._order[0] if self._forest.single else None
        self._cuts = self._forest.cuts if self._forest.single else None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for shared in ("_forest", "_trees", "_cache", "_dtype", "_single", "_cuts"):
            del state[shared]  # rebuilt from the configuration on load
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._cache = {}
        self._attach()

    def copy(self) -> HalfSpaceTreesDetector:
        """An independent copy (for snapshots); the score table is never changed in place, so
        it is shared."""
        clone = object.__new__(HalfSpaceTreesDetector)
        clone.__dict__.update(self.__dict__)
        clone._window = self._window.copy()
        clone._cache = {}
        return clone

    @property
    def warming_up(self) -> bool:
        """True until the first window is learnt (river scores 0 until then)."""
        return self.learned < self.window_size

    def features_of(self, values: Mapping[str, float | None]) -> list[float] | None:
        """The feature vector (in river's sorted order), or None when a feature is missing."""
        x = []
        for name in self._order:
            value = values.get(name)
            if value is None:
                return None
            x.append(value)
        return x

    def _cell(self, x: list[float]) -> Any:
        forest = self._forest
        return forest.cell(x[0]) if forest.single else tuple(forest.walk_all(x))

    def _total(self, cell: Any) -> int:
        if self._forest.single:
            return self._scores.item(cell)
        total = self._cache.get(cell)
        if total is None:
            total = int(self._scores[self._trees, list(cell)].sum())
            self._cache[cell] = total
        return total

    def _pivot(self) -> None:
        """The window just learnt becomes the reference: tabulate its scores per cell (one
        feature: then a reading costs one lookup) or per leaf of each tree."""
        forest = self._forest
        if forest.single:
            scores = forest.cell_totals(self._window, 0.1 * self.window_size)
        else:
            leaves = np.array(self._window, dtype=np.intp)
            n_leaves = 2**self.height
            flat = (leaves + self._trees * n_leaves).ravel()
            counts = np.bincount(flat, minlength=self.n_trees * n_leaves)
            counts = counts.reshape(self.n_trees, n_leaves)
            scores = leaf_scores(counts, self.height, 0.1 * self.window_size)
        self._scores = scores.astype(self._dtype)
        self._window = []
        self._cache = {}

    def score_one(self, x: list[float]) -> float:
        """river's score for feature vector `x` (sorted feature order): 0 in the first window."""
        if self._scores is None:
            return 0.0
        return 1 - self._total(self._cell(x)) / self._max_score

    def score_then_learn(self, values: Mapping[str, float | None]) -> tuple[float | None, str]:
        """Return `(score or None, status)` for a reading, then learn it; status is one of
        `warming_up`, `scored`, `unscored`."""
        if self._single is not None:  # the common case: one bisect and one lookup, no calls
            value = values.get(self._single)
            if value is None:
                return None, "unscored"
            cell: Any = bisect_right(self._cuts, value)
            scores = self._scores
            if scores is None:
                score, status = None, "warming_up"
            else:
                score, status = 1 - scores.item(cell) / self._max_score, "scored"
        else:
            x = self.features_of(values)
            if x is None:
                return None, "unscored"
            cell = self._cell(x)
            if self._scores is None:
                score, status = None, "warming_up"
            else:
                score, status = 1 - self._total(cell) / self._max_score, "scored"
        self.learned += 1  # learn: the reading's cell joins this window
        window = self._window
        window.append(cell)
        if len(window) == self.window_size:
            self._pivot()
        return score, status
