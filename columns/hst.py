"""HalfSpaceTrees on one feature for every sensor of a shard at once: the twin of
`detectors.hst.HalfSpaceTreesDetector.score_then_learn` (the example's `hst`).

Every sensor's trees have the same seeded shape (`detectors.forest.Forest`); only the masses of
its reference window differ. With one feature a reading's score depends only on its cell of the
line (`np.searchsorted(cuts, v, side="right")`, `bisect_right`'s answer), and once a window is
learnt the score of every cell follows from it (`Forest.cell_totals`, here for all the slots
whose window filled in a batch at once). That table is piecewise constant: its breakpoints are
the split points of the trees' nodes that hold at least `0.1 * window_size` readings, so there
are at most `1 + n_trees * sum(min(2**d, window_size // ceil(0.1 * window_size)) for d <
height)` pieces (511 for the example) and in practice far fewer (a median of about 87 for
PurpleAir-like PM1.0 streams, 1-3 % of windows above 128: see README).

So a slot keeps its table as pieces, each packed into one unsigned integer (the first cell of
the piece in the high bits, its score total in the low bits), in a row of `capacity` (128)
entries padded with all-ones; a table with more pieces lives in a side table of rows of the
bound above. A batch's scores are one branchless binary search over those rows (the entries
compare as packed integers), its learning one write into each slot's window of cells, and the
pivot of every slot whose window filled one batched `cell_totals`. Scores are river's bit for
bit, as the per-reading detector's (integer totals, the same final division).

Statuses as the per-reading detector gives them: `warming_up` (no score) until a slot has
learnt its first window, `scored` after, `unscored` (not learnt) when the feature is missing;
placeholders are neither scored nor learnt (`unscored`), as the per-sensor chain has it.
"""

from __future__ import annotations

import math

import numpy as np

from columns.batch import SCORED, UNSCORED, WARMING_UP, Work
from columns.rounds import Along
from detectors.forest import Forest, build_forest
from detectors.hst import DEFAULT_FEATURES, DEFAULT_LIMITS, HalfSpaceTreesDetector

#: Pieces a slot's score table holds in the main rows (more: the side table).
CAPACITY = 128
#: Windows turned into tables at a time (their work arrays stay in cache).
PIVOT_CHUNK = 256
#: Up to this many windows at once, `Forest.cell_totals` one by one is the cheaper pivot.
FEW_WINDOWS = 2


class HstColumns:
    """The example's HalfSpaceTrees (one feature) for every slot of a shard, scored then learnt.

    >>> from columns.batch import Columns
    >>> hst = HstColumns(window_size=3)
    >>> hst.grow(1)
    >>> seen = []
    >>> for v in (5.0, 6.0, 5.0, 900.0, np.nan):
    ...     work = Work.of(Columns(np.array([7]), np.array([0]), ("pm1.0_cf_1",), np.array([[v]])))
    ...     hst.apply(work, np.array([0]), {})
    ...     seen.append(STATUS[work.status[0]])
    >>> seen
    ['warming_up', 'warming_up', 'warming_up', 'scored', 'unscored']
    """

    #: Takes a slot's several rows in one call, in order (along time).
    ALONG = True

    def __init__(
        self,
        feature: str = DEFAULT_FEATURES[0],
        limits: tuple[float, float] | None = None,
        *,
        n_trees: int = 10,
        height: int = 8,
        window_size: int = 72,
        seed: int | None = 11,
        capacity: int = CAPACITY,
    ):
        limits = DEFAULT_LIMITS[DEFAULT_FEATURES[0]] if limits is None else limits
        # the per-reading detector checks the options (and is the oracle of the tests)
        HalfSpaceTreesDetector(
            (feature,),
            {feature: limits},
            n_trees=n_trees,
            height=height,
            window_size=window_size,
            seed=seed,
        )
        if seed is None:
            raise ValueError("the column detector needs a seed: every slot's trees are the same")
        if height < 1:
            raise ValueError("the column detector needs height >= 1")
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.feature = feature
        self.limits = (float(limits[0]), float(limits[1]))
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.seed = seed
        self.capacity = capacity
        self.learned = np.zeros(0, np.int64)  # [slot]: readings learnt
        self._attach()
        self.window = np.zeros((0, window_size), self._cell_dtype)  # [slot, k]: cells learnt
        self.table = np.zeros((0, capacity), self._dtype)  # [slot]: packed pieces
        self.big = np.zeros(0, np.int64)  # [slot]: its row of `side`, or -1
        self.side = np.zeros((0, self._side_capacity), self._dtype)  # tables of many pieces
        self.free: list[int] = []  # rows of `side` no slot uses

    @classmethod
    def of(cls, detector: HalfSpaceTreesDetector, capacity: int = CAPACITY) -> HstColumns:
        """The twin of a configured, fresh per-reading detector of one feature (ValueError for
        any other: the shard logic then keeps per-sensor detectors)."""
        if type(detector) is not HalfSpaceTreesDetector or detector.learned:
            raise ValueError("the column detector twins a fresh HalfSpaceTreesDetector")
        if len(detector.features) != 1:
            raise ValueError("the column detector takes one feature")
        feature = detector.features[0]
        return cls(
            feature,
            detector.limits[feature],
            n_trees=detector.n_trees,
            height=detector.height,
            window_size=detector.window_size,
            seed=detector.seed,
            capacity=capacity,
        )

    def _attach(self) -> None:
        """The shared, read-only structure (rebuilt on load): forest, cuts, node arrays."""
        forest: Forest = build_forest(
            (self.feature,), (self.limits,), self.n_trees, self.height, self.seed
        )
        self._forest = forest
        self._cuts = np.asarray(forest.cuts, dtype=np.float64)
        n_cells = forest.n_cells
        self._max_score = self.n_trees * self.window_size * (2 ** (self.height + 1) - 1)
        self._size_limit = 0.1 * self.window_size
        value_bits = self._max_score.bit_length()
        cell_bits = n_cells.bit_length()
        if value_bits + cell_bits <= 32:
            self._dtype = np.uint32
        elif value_bits + cell_bits <= 64:
            self._dtype = np.uint64
        else:
            raise ValueError("this forest's score tables do not pack into 64 bits")
        self._value_bits = value_bits
        self._value_mask = (1 << value_bits) - 1
        self._pad = np.iinfo(self._dtype).max  # above every probe: cells < 2**cell_bits - 1
        self._cell_dtype = np.uint16 if n_cells <= 2**16 else np.uint32
        n_nodes = 2 ** (self.height + 1) - 1
        heap = np.arange(n_nodes)
        parent = np.where(heap > 0, (heap - 1) // 2, -1)
        flat_parent = parent[None, :] + (np.arange(self.n_trees) * n_nodes)[:, None]
        flat_parent[:, 0] = self.n_trees * n_nodes  # the root's "parent": always heavy enough
        self._parent = flat_parent.ravel()
        self._depth = forest.node_depth.astype(np.int64)
        self._start = forest.node_start.astype(np.int64)
        self._end = forest.node_end.astype(np.int64)
        heavy = math.ceil(self._size_limit) if self._size_limit > 0 else 1
        per_level = [min(2**d, self.window_size // heavy) for d in range(self.height)]
        self._side_capacity = min(n_cells, 1 + self.n_trees * sum(per_level))

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for name in [k for k in state if k.startswith("_")]:
            del state[name]  # derived from the configuration: rebuilt on load
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._attach()

    @property
    def slots(self) -> int:
        """Slots allocated."""
        return len(self.learned)

    def grow(self, slots: int) -> None:
        """Room for slots 0..slots-1 (by at least a quarter at a time); new slots start fresh."""
        have = self.slots
        if slots <= have:
            return
        extra = max(slots, have + have // 4) - have
        self.learned = np.concatenate([self.learned, np.zeros(extra, np.int64)])
        self.window = np.concatenate(
            [self.window, np.zeros((extra, self.window_size), self._cell_dtype)]
        )
        self.table = np.concatenate(
            [self.table, np.full((extra, self.capacity), self._pad, self._dtype)]
        )
        self.big = np.concatenate([self.big, np.full(extra, -1, np.int64)])

    def apply(self, work: Work, slots: np.ndarray, counts: dict[str, int]) -> None:
        """Score each row's feature, then learn it (see the class); `work.score`/`.status`."""
        n = len(work)
        if not n:
            return
        col = work.column(self.feature)
        present = ~work.placeholder
        if col is not None:
            value = work.values[:, col]
            present &= ~np.isnan(value)
        else:
            present[:] = False
        work.status[~present] = UNSCORED
        work.score[~present] = np.nan
        rows = np.flatnonzero(present)
        if not len(rows):
            return
        score = self.score_then_learn(np.asarray(slots, dtype=np.intp)[rows], value[rows])
        work.status[rows] = np.where(np.isnan(score), WARMING_UP, SCORED)
        work.score[rows] = score

    def score_then_learn(self, s: np.ndarray, values: np.ndarray) -> np.ndarray:
        """River's score of each `values[i]` (present, finite or not) in slot `s[i]`'s trees (NaN
        while the slot warms up), then learn it; a slot's several rows in order.

        A slot's table changes only when its window fills: its rows are scored in periods, the
        k-th period of every slot together (its rows since its (k-1)-th table, all against one
        table, each learnt into its own place of the window), then the windows that filled
        become tables."""
        cells = np.searchsorted(self._cuts, values, side="right")
        along = Along(s)
        if along.order is None:
            return self._period(s, cells, self.learned[s])
        before = self.learned[s]
        learned = before + along.counter(np.ones(len(s), bool), np.zeros(len(s), np.int64)) - 1
        period = learned // self.window_size - before // self.window_size
        score = np.empty(len(s))
        for k in range(int(period.max()) + 1):
            rows = np.flatnonzero(period == k)
            score[rows] = self._period(s[rows], cells[rows], learned[rows])
        return score

    def _period(self, s: np.ndarray, cells: np.ndarray, learned: np.ndarray) -> np.ndarray:
        """Score the rows (slots `s`, each learnt `learned` readings before its row) against
        their slots' tables, learn them; each slot's window that fills becomes its table."""
        ready = learned >= self.window_size
        score = np.full(len(s), np.nan)
        if ready.any():
            totals = self._lookup(s[ready], cells[ready])
            score[ready] = 1.0 - totals / float(self._max_score)
        # learn: each reading's cell joins its slot's window; a full window becomes the table
        k = learned % self.window_size
        self.window[s, k] = cells
        np.maximum.at(self.learned, s, learned + 1)  # a slot's rows: its count after the last
        full = k == self.window_size - 1
        if full.any():
            self._pivot(s[full])
        return score

    def learn_windows(self, s: np.ndarray, values: np.ndarray) -> None:
        """Slots `s` (fresh, all different) learn a whole window each, `values[i]` in order (as
        `window_size` calls would, unscored): each slot's first table."""
        self.window[s] = np.searchsorted(self._cuts, values, side="right")
        self.learned[s] = self.window_size
        self._pivot(s)

    # --- score tables as packed pieces ------------------------------------------------------

    def _lookup(self, s: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """Score totals of `cells` in the tables of slots `s` (each slot has learnt a window)."""
        probe = (cells.astype(np.uint64) << np.uint64(self._value_bits)) | np.uint64(
            self._value_mask
        )
        probe = probe.astype(self._dtype)
        rows = self.big[s]
        out = np.empty(len(s), np.int64)
        small = rows < 0
        if small.all():
            out[:] = _search(self.table, s, probe) & self._value_mask
            return out
        out[small] = _search(self.table, s[small], probe[small]) & self._value_mask
        out[~small] = _search(self.side, rows[~small], probe[~small]) & self._value_mask
        return out

    def _pivot(self, s: np.ndarray) -> None:
        """The windows of slots `s` (just filled) become their score tables."""
        for first in range(0, len(s), PIVOT_CHUNK):  # chunks keep the work arrays in cache
            part = s[first : first + PIVOT_CHUNK]
            which, cells, totals = self._pieces(self.window[part].astype(np.int64))
            self._store(part, which, cells, totals)

    def _store(
        self, s: np.ndarray, which: np.ndarray, cells: np.ndarray, totals: np.ndarray
    ) -> None:
        """Write the pieces (`which`: index into `s`, in order) as the slots' packed rows."""
        packed = (cells.astype(np.uint64) << np.uint64(self._value_bits)) | totals.astype(
            np.uint64
        )
        packed = packed.astype(self._dtype)
        pieces = np.bincount(which, minlength=len(s))
        first = np.cumsum(pieces) - pieces
        rank = np.arange(len(which)) - first[which]
        fits = pieces <= self.capacity
        self._release(s[fits])
        self.table[s] = self._pad
        keep = fits[which]
        self.table[s[which[keep]], rank[keep]] = packed[keep]
        for i in np.flatnonzero(~fits).tolist():  # rare: a table of many pieces
            row = self._side_row(int(s[i]))
            self.side[row] = self._pad
            mine = which == i
            self.side[row, rank[mine]] = packed[mine]

    def _side_row(self, slot: int) -> int:
        row = int(self.big[slot])
        if row < 0:
            if self.free:
                row = self.free.pop()
            else:
                row = len(self.side)
                self.side = np.concatenate(
                    [self.side, np.full((max(4, row // 4), self._side_capacity), self._pad,
                                        self._dtype)]
                )
                self.free.extend(range(len(self.side) - 1, row, -1))
            self.big[slot] = row
        return row

    def _release(self, s: np.ndarray) -> None:
        """Slots `s` no longer need a side row."""
        rows = self.big[s]
        used = rows >= 0
        if used.any():
            self.free.extend(rows[used].tolist())
            self.big[s[used]] = -1

    def _pieces(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The score table of each row of `windows` (the cells of a learnt window) as pieces,
        in order: `(row, first cell, total)`, consecutive totals of a row all different.

        The table is `Forest.cell_totals`: every node that holds a reading and whose parent
        holds at least the size limit adds mass * 2**depth to its span (river's walk). A
        reading's walk ends at a "frontier" node: one that is not heavy enough to go on, or a
        leaf. The frontier nodes of a tree cut the line into its pieces, each worth the sum
        along the path to it; so a top-down pass over the heavy nodes alone (their masses
        counted by a binary search in the sorted window) gives every tree's pieces, and one
        difference array over all the trees' pieces gives the table's."""
        n, n_cells = len(windows), self._forest.n_cells
        if n <= FEW_WINDOWS:  # the per-reading detector's own pivot is cheaper for one or two
            tables = np.stack([self._forest.cell_totals(w, self._size_limit) for w in windows])
            steps = np.diff(tables, axis=1, prepend=0, append=0).astype(np.float64).ravel()
        else:
            row, node, value = self._frontier(windows)
            value = value.astype(np.float64)  # exact: totals are far below 2**53
            base = row * (n_cells + 1)
            edges = np.concatenate((base + self._start[node], base + self._end[node]))
            steps = np.bincount(edges, np.concatenate((value, -value)), n * (n_cells + 1))
        change = steps != 0
        change[:: n_cells + 1] = True  # every table starts at cell 0
        at = np.flatnonzero(change)
        totals = np.cumsum(steps[at])  # a row's steps add up to 0: one running sum for all
        which, cells = np.divmod(at, n_cells + 1)
        keep = cells < n_cells
        return which[keep], cells[keep], totals[keep].astype(np.int64)

    def _frontier(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every frontier node of every tree for each row of `windows`: `(row, flat node,
        path total)`, from a level-by-level pass over the nodes heavy enough to go on."""
        n, size = windows.shape
        n_cells, n_trees, height = self._forest.n_cells, self.n_trees, self.height
        end, limit = self._end, self._size_limit
        offsets = np.arange(n) * n_cells
        ordered = (np.sort(windows, axis=1) + offsets[:, None]).ravel()
        row = np.repeat(np.arange(n), n_trees)
        node = np.tile(np.arange(n_trees) * (2 ** (height + 1) - 1), n)  # each tree's root
        heap = np.zeros(n * n_trees, np.int64)  # the node's index within its tree
        mass = np.full(n * n_trees, size, np.int64)  # the root holds the whole window
        before = np.zeros(n * n_trees, np.int64)  # readings in cells before the node's span
        path = mass.copy()  # the root's mass * 2**0
        out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for depth in range(1, height + 1):
            heavy = mass >= limit
            if not heavy.all():
                out.append((row[~heavy], node[~heavy], path[~heavy]))
                row, node, heap = row[heavy], node[heavy], heap[heavy]
                mass, before, path = mass[heavy], before[heavy], path[heavy]
            left = node + heap + 1  # flat: tree base + 2 * heap + 1
            below = np.searchsorted(ordered, offsets[row] + end[left]) - row * size
            row, node = np.concatenate((row, row)), np.concatenate((left, left + 1))
            heap = np.concatenate((2 * heap + 1, 2 * heap + 2))
            mass = np.concatenate((below - before, mass - (below - before)))
            before = np.concatenate((before, below))
            path = np.concatenate((path, path)) + (mass << depth)
        out.append((row, node, path))  # the leaves reached
        return tuple(np.concatenate(parts) for parts in zip(*out, strict=True))


def _search(table: np.ndarray, rows: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """For each `rows[i]`, the last entry of `table[rows[i]]` not above `probe[i]` (the row is
    sorted and its first entry is never above a probe): a branchless binary search."""
    width = table.shape[1]
    flat = table.reshape(-1)
    at = rows.astype(np.int64) * width  # the entry's flat index; starts at each row's first
    last = at + (width - 1)
    step = 1 << (width - 1).bit_length() - 1 if width > 1 else 0
    exact = width & (width - 1) == 0  # a power of two: the steps never pass the row's end
    while step:
        ahead = at + step if exact else np.minimum(at + step, last)
        at = np.where(flat[ahead] <= probe, ahead, at)
        step >>= 1
    return flat[at].astype(np.int64)


#: `Work.status` codes by name (for the doctest).
STATUS = {SCORED: "scored", UNSCORED: "unscored", WARMING_UP: "warming_up"}
