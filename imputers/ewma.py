"""Exponentially weighted moving average imputation: recent observations count most.

Per field, a `stats.EWMean` (m ← m + α·(x − m), started at the first observation) follows the
observed values; a missing value is filled with its current mean. Unlike a window mean the EWMA
has no hard cut-off, and its state is a few floats per field: O(1) per update, picklable.
Imputed values never update the mean, so an outage cannot feed on itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from stats.ewm import EWMean


class EWMAImputer:
    """Fill missing values with each field's exponentially weighted mean of past observations.

    >>> imp = EWMAImputer(["pm"], alpha=0.5)
    >>> [imp.impute_one({"pm": v})[0]["pm"] for v in (None, 2.0, 4.0, None, 8.0, None)]
    [None, 2.0, 4.0, 3.0, 8.0, 5.5]
    """

    def __init__(self, fields: Sequence[str], alpha: float = 0.3):
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.fields = tuple(fields)
        self.alpha = alpha
        self.means = [EWMean(alpha) for _ in self.fields]

    def impute_one(
        self, values: Mapping[str, float | None]
    ) -> tuple[dict[str, float | None], list[str], list[str]]:
        """Return `(values with gaps filled, imputed field names, still-missing field names)`."""
        out = dict(values)
        imputed: list[str] = []
        missing: list[str] = []
        for j, name in enumerate(self.fields):
            value = values.get(name)
            mean = self.means[j]
            if value is not None:
                mean.update(value)
            elif mean.mean is None:
                missing.append(name)
            else:
                out[name] = mean.mean
                imputed.append(name)
        return out, imputed, missing
