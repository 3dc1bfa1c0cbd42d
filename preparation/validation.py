"""Physical ranges per field: a value outside its range becomes missing, with the reason recorded.

Nothing is clipped: an out-of-range value is removed (so the imputer can fill it from the sensor's
own past) and `flags[field]` says what it was and which range it broke. Bounds are inclusive.

Default ranges (PurpleAir units):

- PM fields (µg/m³): 0–1,000, where the Plantower optical counter is still trustworthy.
- `humidity` (% RH): 0–100.
- `temperature` (°F): −40 to 185, the BME280's operating range (−40 to 85 °C).
- `pressure` (hPa): 300–1,100, the BME280's operating range.
- `latitude` −90 to 90, `longitude` −180 to 180.

Fields without a range pass through unchecked.
"""

from __future__ import annotations

from collections.abc import Mapping

_PM_FIELDS = tuple(
    f"pm{size}{kind}{channel}"
    for size in ("1.0", "2.5", "10.0")
    for kind in ("", "_atm", "_cf_1", "_alt")
    for channel in ("", "_a", "_b")
)

#: `{field: (lo, hi)}`, inclusive, in PurpleAir's units.
DEFAULT_RANGES: dict[str, tuple[float, float]] = {
    **{name: (0.0, 1000.0) for name in _PM_FIELDS},
    **{f"humidity{c}": (0.0, 100.0) for c in ("", "_a", "_b")},
    **{f"temperature{c}": (-40.0, 185.0) for c in ("", "_a", "_b")},
    **{f"pressure{c}": (300.0, 1100.0) for c in ("", "_a", "_b")},
    "latitude": (-90.0, 90.0),
    "longitude": (-180.0, 180.0),
}


class RangeValidator:
    """Remove values outside their field's physical range and say why.

    >>> check = RangeValidator({"humidity": (0, 100), "pm2.5_cf_1": (0, 1000)})
    >>> values, reasons = check.validate({"humidity": 104.0, "pm2.5_cf_1": 12.5, "pressure": 5.0})
    >>> values
    {'humidity': None, 'pm2.5_cf_1': 12.5, 'pressure': 5.0}
    >>> reasons
    {'humidity': '104.0 outside [0, 100]'}
    """

    def __init__(self, ranges: Mapping[str, tuple[float, float]] | None = None):
        ranges = DEFAULT_RANGES if ranges is None else ranges
        for name, (lo, hi) in ranges.items():
            if not lo <= hi:
                raise ValueError(f"range for {name!r} must have lo <= hi, got {(lo, hi)}")
        self.ranges = {name: (lo, hi) for name, (lo, hi) in ranges.items()}

    def validate(
        self, values: Mapping[str, float | None]
    ) -> tuple[dict[str, float | None], dict[str, str]]:
        """Return `(values with out-of-range ones set to None, {field: reason})`."""
        reasons: dict[str, str] = {}
        return dict(self.apply(values, reasons, {})), reasons

    def apply(
        self,
        values: Mapping[str, float | None],
        flags: dict[str, str],
        counts: dict[str, int],
    ) -> Mapping[str, float | None]:
        """In the flow: the values with out-of-range ones removed (`values` itself when all are
        in range); each reason goes into `flags` and counts as `invalid:<field>`.

        >>> flags, counts = {}, {}
        >>> RangeValidator().apply({"humidity": 55.0, "latitude": 91.0}, flags, counts)
        {'humidity': 55.0, 'latitude': None}
        >>> flags, counts
        ({'latitude': '91.0 outside [-90, 90]'}, {'invalid:latitude': 1})
        """
        out = None  # a copy is made only when a value is out of range
        ranges = self.ranges
        for name, value in values.items():
            bounds = ranges.get(name)
            if value is None or bounds is None:
                continue
            lo, hi = bounds
            if not lo <= value <= hi:
                if out is None:
                    out = dict(values)
                out[name] = None
                flags[name] = f"{value!r} outside [{lo:g}, {hi:g}]"
                tag = "invalid:" + name
                counts[tag] = counts.get(tag, 0) + 1
        return values if out is None else out
