"""river's `StatImputer` with a running mean per field, as in the original streaming example.

The example filled gaps with `preprocessing.StatImputer((field, stats.Mean()))`: the mean of every
value observed so far, never forgetting. This adapter gives it the project's `impute_one`
interface and one fix: river fills a field it has never observed with `Mean().get() == 0.0`; here
such a field stays missing, as with the other imputers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from river import preprocessing, stats


class RunningMeanImputer:
    """Fill missing values with the running mean of all past observations (river `StatImputer`).

    >>> imp = RunningMeanImputer(["pm"])
    >>> [imp.impute_one({"pm": v})[0]["pm"] for v in (None, 1.0, 8.0, None, 3.0, None)]
    [None, 1.0, 8.0, 4.5, 3.0, 4.0]
    """

    def __init__(self, fields: Sequence[str]):
        self.fields = tuple(fields)
        self.means = {name: stats.Mean() for name in self.fields}
        self.model = preprocessing.StatImputer(*self.means.items())

    def impute_one(
        self, values: Mapping[str, float | None]
    ) -> tuple[dict[str, float | None], list[str], list[str]]:
        """Return `(values with gaps filled, imputed field names, still-missing field names)`."""
        x = {name: values.get(name) for name in self.fields}
        self.model.learn_one(x)  # updates the means with the observed fields only
        filled = self.model.transform_one(x)
        out = dict(values)
        imputed: list[str] = []
        missing: list[str] = []
        for name in self.fields:
            if x[name] is not None:
                continue
            if self.means[name].n == 0:
                missing.append(name)
            else:
                out[name] = float(filled[name])
                imputed.append(name)
        return out, imputed, missing
