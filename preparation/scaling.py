"""A streaming standardiser: each value as a z-score against the sensor's own past.

For each field, `z = (x − mean) / std` with the mean and sample standard deviation of the field's
earlier observed values (the project's `stats.Moments`, a shifted Welford update, or
`stats.RollingMoments` over the last `window` values), computed *before* x is learnt, so no
reading is scaled with its own value or any later one. Imputed values are scaled but never learnt
(like the imputer's window). Until a field has `min_count` observations, or while they are all
equal, its z-score is None.

A detector can use the z-scores (`"<field>_z"`) as features with limits that suit every sensor,
e.g. `(-6, 6)`, instead of fixed physical limits that suit none in particular.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, MutableMapping, Sequence

from stats import Moments, RollingMoments

SUFFIX = "_z"


def z_name(name: str) -> str:
    """The output field of a standardised field: `pm1.0_cf_1` → `pm1.0_cf_1_z`."""
    return name + SUFFIX


class Standardiser:
    """Per-field running mean and variance; transform a reading, then learn its observed values.

    >>> scale = Standardiser(["pm"], min_count=2)
    >>> [scale.transform_then_learn({"pm": v}) for v in (1.0, 3.0, 5.0)]
    [{'pm_z': None}, {'pm_z': None}, {'pm_z': 2.1213203435596424}]

    (5 − 2) / √2: the mean and sample variance of 1 and 3 are 2 and 2.
    """

    def __init__(self, fields: Sequence[str], min_count: int = 2, window: int | None = None):
        if min_count < 2:
            raise ValueError("min_count must be at least 2 (a variance needs two values)")
        if window is not None and window < min_count:
            raise ValueError("window must be at least min_count")
        self.fields = tuple(fields)
        self.min_count = min_count
        self.window = window
        self.moments = {
            name: Moments() if window is None else RollingMoments(window) for name in self.fields
        }

    def transform(self, values: Mapping[str, float | None]) -> dict[str, float | None]:
        """`{"<field>_z": z or None}` from the past only."""
        out: dict[str, float | None] = {}
        for name in self.fields:
            value = values.get(name)
            m = self.moments[name]
            z = None
            if value is not None and m.n >= self.min_count:
                std = m.std
                if std:
                    z = (value - m.mean) / std
            out[z_name(name)] = z
        return out

    def learn(self, values: Mapping[str, float | None], imputed: Collection[str] = ()) -> None:
        """Learn each field's observed (present, not imputed) value."""
        for name in self.fields:
            value = values.get(name)
            if value is not None and name not in imputed:
                self.moments[name].update(value)

    def transform_then_learn(
        self, values: Mapping[str, float | None], imputed: Collection[str] = ()
    ) -> dict[str, float | None]:
        """Scale with the past, then learn: the z-scores of this reading."""
        out = self.transform(values)
        self.learn(values, imputed)
        return out

    def apply(
        self,
        values: MutableMapping[str, float | None],
        imputed: list[str],
        counts: dict[str, int],
    ) -> None:
        """In the flow: add the z-scores to `values`, list those of imputed values in `imputed`,
        and count `scaled:<field>` for each z-score given."""
        for name, z in self.transform_then_learn(values, imputed).items():
            values[name] = z
            if z is None:
                continue
            tag = "scaled:" + name[: -len(SUFFIX)]
            counts[tag] = counts.get(tag, 0) + 1
            if name[: -len(SUFFIX)] in imputed:
                imputed.append(name)

    def copy(self) -> Standardiser:
        """An independent copy (for Bytewax snapshots)."""
        return copy.deepcopy(self)
