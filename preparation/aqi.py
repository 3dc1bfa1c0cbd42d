"""The US Air Quality Index of a sensor's corrected PM2.5: NowCast, AQI value and category.

Sources:

- **Breakpoints**: US EPA, "Reconsideration of the National Ambient Air Quality Standards for
  Particulate Matter", final rule, 89 FR 16202 (March 6, 2024), and the EPA's "Technical
  Assistance Document for the Reporting of Daily Air Quality – the Air Quality Index (AQI)"
  (EPA-454/B-24-002, May 2024), table 6, PM2.5 in µg/m³ truncated to 0.1:
  0.0–9.0 → 0–50 Good, 9.1–35.4 → 51–100 Moderate, 35.5–55.4 → 101–150 Unhealthy for Sensitive
  Groups, 55.5–125.4 → 151–200 Unhealthy, 125.5–225.4 → 201–300 Very Unhealthy, 225.5–325.4 →
  301–500 Hazardous. `I = (I_hi − I_lo) / (C_hi − C_lo) × (C − C_lo) + I_lo`, rounded to an
  integer. Above 325.4 the index is "beyond the AQI": reported as 500, Hazardous.
- **NowCast** (the EPA's, as AirNow computes it for PM): the hourly averages c₁ (this hour)
  … c₁₂ (eleven hours before); `w* = c_min / c_max` over the hours with data; `w = max(w*, ½)`;
  `NowCast = Σ wⁱ⁻¹ cᵢ / Σ wⁱ⁻¹` over the hours with data; none unless at least two of the three
  most recent hours have data. Here the current clock hour (UTC) counts with the readings it has
  so far, so the NowCast moves with every reading instead of once an hour. Negative corrected
  values count as 0.

State per sensor: twelve hourly sums and counts; a reading costs O(1) (the weighted sum of the
completed hours is kept for the last weight, recomputed over at most 11 hours when it changes).
"""

from __future__ import annotations

import math

#: (C_lo, C_hi, I_lo, I_hi), PM2.5 µg/m³ (EPA, May 2024).
BREAKPOINTS: tuple[tuple[float, float, int, int], ...] = (
    (0.0, 9.0, 0, 50),
    (9.1, 35.4, 51, 100),
    (35.5, 55.4, 101, 150),
    (55.5, 125.4, 151, 200),
    (125.5, 225.4, 201, 300),
    (225.5, 325.4, 301, 500),
)
CATEGORIES = (
    "Good",
    "Moderate",
    "Unhealthy for Sensitive Groups",
    "Unhealthy",
    "Very Unhealthy",
    "Hazardous",
)
#: The AQI value at which each category starts.
CATEGORY_STARTS = (0, 51, 101, 151, 201, 301)
HOURS = 12
MIN_WEIGHT = 0.5
NOWCAST_FIELD = "pm2.5_nowcast"
AQI_FIELD = "aqi"


def aqi(concentration: float) -> int:
    """The AQI of a PM2.5 concentration (µg/m³), truncated to 0.1 first.

    >>> [aqi(c) for c in (0.0, 9.0, 9.05, 12.0, 35.4, 35.5, 100.0, 325.4, 600.0)]
    [0, 50, 50, 56, 100, 101, 182, 500, 500]
    """
    c = math.floor(max(concentration, 0.0) * 10.0 + 1e-9) / 10.0
    for c_lo, c_hi, i_lo, i_hi in BREAKPOINTS:
        if c <= c_hi:
            return round((i_hi - i_lo) / (c_hi - c_lo) * (c - c_lo) + i_lo)
    return 500


def category(index: float | None) -> str | None:
    """The category name of an AQI value.

    >>> category(50), category(51), category(180), category(500), category(None)
    ('Good', 'Moderate', 'Unhealthy', 'Hazardous', None)
    """
    if index is None:
        return None
    for start, name in zip(CATEGORY_STARTS[::-1], CATEGORIES[::-1], strict=True):
        if index >= start:
            return name
    return CATEGORIES[0]


class NowCast:
    """One sensor's PM2.5 NowCast over the last `hours` clock hours.

    >>> nowcast = NowCast()
    >>> nowcast.update(0, 10.0) is None  # one hour of data: not enough
    True
    >>> round(nowcast.update(3600, 20.0), 3)  # c1 = 20, c2 = 10: w = 0.5, (20 + 5) / 1.5
    16.667
    """

    def __init__(self, hours: int = HOURS, min_weight: float = MIN_WEIGHT):
        if hours < 3 or not 0.0 < min_weight <= 1.0:
            raise ValueError("NowCast needs hours >= 3 and 0 < min_weight <= 1")
        self.hours = hours
        self.min_weight = min_weight
        self.hour = -1  # the current clock hour (epoch hours)
        self.sum = 0.0  # this hour's sum and count
        self.n = 0
        self.past: list[float | None] = [None] * (hours - 1)  # hourly means, 1 and more hours ago
        self._cache: tuple[float, float, float] | None = None  # (w, Σ wᵏ c, Σ wᵏ) over `past`
        self._extremes: tuple[float, float] | None = None  # min and max over `past`

    def copy(self) -> NowCast:
        new = object.__new__(NowCast)
        new.__dict__.update(self.__dict__)
        new.past = list(self.past)
        return new

    def _advance(self, hour: int) -> None:
        """Close the current hour (and any hours without data) before `hour`."""
        steps = hour - self.hour
        mean = self.sum / self.n if self.n else None
        if steps >= self.hours:
            self.past = [None] * (self.hours - 1)
        else:
            # the closed hour is `steps` hours before the new one: index steps - 1
            self.past = [*[None] * (steps - 1), mean, *self.past][: self.hours - 1]
        self.hour, self.sum, self.n = hour, 0.0, 0
        self._cache = None
        known = [c for c in self.past if c is not None]
        self._extremes = (min(known), max(known)) if known else None

    def update(self, time: int, value: float) -> float | None:
        """Add a reading (epoch seconds, µg/m³) and return the NowCast, or None."""
        hour = time // 3600
        if hour > self.hour:  # a late reading (hour < self.hour) counts in the current hour
            self._advance(hour)
        self.sum += max(value, 0.0)
        self.n += 1
        current = self.sum / self.n
        past = self.past
        if past[0] is None and past[1] is None:  # two of the three most recent hours needed
            return None
        extremes = self._extremes
        lo, hi = (current, current) if extremes is None else extremes
        lo, hi = min(lo, current), max(hi, current)
        w = max(lo / hi, self.min_weight) if hi > 0.0 else 1.0
        cache = self._cache
        if cache is None or cache[0] != w:
            num = den = 0.0
            weight = w
            for c in past:
                if c is not None:
                    num += weight * c
                    den += weight
                weight *= w
            cache = self._cache = (w, num, den)
        return (current + cache[1]) / (1.0 + cache[2])
