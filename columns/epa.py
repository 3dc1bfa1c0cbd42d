"""The US EPA PM2.5 correction on a column batch: the twin of
`preparation.correction.EpaCorrection.apply`, both the 2021 equation and the 2022 extension.

The formulas are the per-reading ones with the same operations in the same order (numpy's float64
`+ - *` round as Python's floats do; there is no power or math function in them), so every value
is bit-equal. Which rows get which formula, which are listed in `imputed` (a value derived from
an imputed `pm2.5_cf_1`, or from an imputed humidity where humidity was used) or `missing` (with
the reason in `flags["pm2.5_epa"]`), and the `epa:<code>` counts follow `EpaCorrection.apply`
case by case. The correction has no state.
"""

from __future__ import annotations

import numpy as np

from columns.batch import Work
from preparation.correction import (
    BLEND_FROM,
    BLEND_TO,
    EPA_FIELD,
    MAX_PM,
    PM_FIELD,
    RH_FIELD,
    SKIPPED,
    EpaCorrection,
)


class EpaColumns:
    """Set column `pm2.5_epa` (added when the batch has none) from `pm2.5_cf_1` and humidity.

    >>> from columns.batch import Columns
    >>> values = np.array([[20.0, 50.0], [300.0, np.nan], [700.0, np.nan]])
    >>> work = Work.of(Columns(np.arange(3), np.zeros(3, int), ("pm2.5_cf_1", "humidity"), values))
    >>> counts = {}
    >>> EpaColumns().apply(work, np.arange(3), counts)
    >>> [round(v, 2) for v in work.values[:, 2].tolist()], work.missing[:, 2].tolist()
    ([11.92, nan, 484.13], [False, True, False])
    >>> work.flags, counts
    ({1: {'pm2.5_epa': 'not applied: humidity missing'}}, {'epa:applied': 2, 'epa:no_humidity': 1})
    """

    #: Takes a slot's several rows in one call, in order (no state).
    ALONG = True

    def __init__(self, max_pm: float = MAX_PM, extended: bool = True):
        rule = EpaCorrection(max_pm, extended)
        self.extended = rule.extended
        self.max_pm = rule.max_pm

    @classmethod
    def of(cls, epa: EpaCorrection) -> EpaColumns:
        """The twin of a configured per-reading `EpaCorrection`."""
        twin = cls(extended=epa.extended)
        twin.max_pm = epa.max_pm
        return twin

    def grow(self, slots: int) -> None:
        """Stateless: nothing to grow."""

    def apply(self, work: Work, slots: np.ndarray, counts: dict[str, int]) -> None:
        """Derive `pm2.5_epa` for every row in place (see the class and `EpaCorrection.apply`)."""
        n = len(work)
        if not n:
            return
        pm_col, rh_col = work.column(PM_FIELD), work.column(RH_FIELD)
        out = work.column(EPA_FIELD)
        if out is None:
            out = work.add_column(EPA_FIELD)
        none = np.zeros(n, bool)
        pm = work.values[:, pm_col] if pm_col is not None else np.full(n, np.nan)
        rh = work.values[:, rh_col] if rh_col is not None else np.full(n, np.nan)
        pm_imputed = work.imputed[:, pm_col] if pm_col is not None else none
        rh_imputed = work.imputed[:, rh_col] if rh_col is not None else none
        has_pm, has_rh = ~np.isnan(pm), ~np.isnan(rh)

        value = 0.524 * pm - 0.0862 * rh + 5.75  # the 2021 equation (NaN where an input is)
        code = np.zeros(n, np.int8)  # 0 applied, 1 no_pm, 2 no_humidity, 3 above_range
        code[~has_pm] = 1
        if self.extended:  # from PA 611 the quadratic (no humidity), blended from 570
            high = has_pm & (pm >= BLEND_TO)
            code[has_pm & ~high & ~has_rh] = 2
            if high.any():
                x = pm[high]
                value[high] = 4.21e-4 * x * x + 0.392 * x + 3.44
            blend = has_pm & has_rh & (pm >= BLEND_FROM) & ~high
            if blend.any():
                x = pm[blend]
                w = 0.0244 * x - 13.9
                value[blend] = w * (4.21e-4 * x * x + 0.392 * x + 3.44) + (1.0 - w) * value[blend]
        else:
            code[has_pm & ~has_rh] = 2
            code[has_pm & has_rh & (pm > self.max_pm)] = 3
        value[code != 0] = np.nan
        work.values[:, out] = value

        applied = code == 0
        # listed as imputed when pm2.5_cf_1 was, or humidity was and was used (PA < 611)
        from_imputed = pm_imputed | (rh_imputed & (pm < BLEND_TO))
        work.imputed[:, out] |= applied & from_imputed
        work.missing[:, out] |= ~applied

        tally = np.bincount(code, minlength=4).tolist()
        for k, tag in enumerate(_CODES):
            if tally[k]:
                counts[tag] = counts.get(tag, 0) + tally[k]
        if not applied.all():
            rows = np.flatnonzero(~applied)
            for row, k in zip(rows.tolist(), code[rows].tolist(), strict=True):
                work.flags_of(row)[EPA_FIELD] = _FLAGS[k]


_NAMES = ("applied", "no_pm", "no_humidity", "above_range")
_CODES = tuple("epa:" + name for name in _NAMES)
_FLAGS = (None, *(SKIPPED[name] for name in _NAMES[1:]))
