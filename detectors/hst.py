"""river's HalfSpaceTrees per sensor, scored before it learns (no leakage), warm-up made explicit.

river scores 0 until a detector has learnt its first `window_size` readings; those readings are
`warming_up`, never normal nor anomalous. A reading whose features are missing (even after
imputation) is `unscored` and is not learnt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from river.anomaly import HalfSpaceTrees

#: The example's configuration: PM1.0 (CF=1), limits 0–1200 µg/m³.
DEFAULT_FEATURES = ("pm1.0_cf_1",)
DEFAULT_LIMITS = {"pm1.0_cf_1": (0.0, 1200.0)}


class HalfSpaceTreesDetector:
    """Score then learn one reading at a time with river's `HalfSpaceTrees`.

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
        seed: int = 11,
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
        self.limits = {f: (float(limits[f][0]), float(limits[f][1])) for f in self.features}
        self.window_size = window_size
        self.model = HalfSpaceTrees(
            n_trees=n_trees,
            height=height,
            window_size=window_size,
            limits=self.limits,
            seed=seed,
        )
        self.learned = 0

    @property
    def warming_up(self) -> bool:
        """True until the first window is learnt (river scores 0 until then)."""
        return self.learned < self.window_size

    def features_of(self, values: Mapping[str, float | None]) -> dict[str, float] | None:
        """The feature vector of a reading, or None when a feature is missing."""
        x = {}
        for name in self.features:
            value = values.get(name)
            if value is None:
                return None
            x[name] = value
        return x

    def score_then_learn(self, values: Mapping[str, float | None]) -> tuple[float | None, str]:
        """Return `(score or None, status)` for a reading, then learn it; status is one of
        `warming_up`, `scored`, `unscored`."""
        x = self.features_of(values)
        if x is None:
            return None, "unscored"
        if self.warming_up:
            score, status = None, "warming_up"
        else:
            score, status = float(self.model.score_one(x)), "scored"
        self.model.learn_one(x)
        self.learned += 1
        return score, status
