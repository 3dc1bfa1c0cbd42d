"""Neighbours: a sensor that disagrees with the sensors around it, and an area that rises together.

Both compare a sensor with others at the same moment, so they run after the per-sensor step, in
a second keyed stage by area (`dataflows/areas.py`), over event-time windows. This module holds
the rules and the geometry; they are pure functions of one window's values, so the flow and a
one-moment snapshot (`evaluation/spatial.py`) apply the same code.

- **Areas**: cells of `area_km` (30 km in the flow) on a side: rows of `area_km / 111.2` degrees of
  latitude, each row cut into columns of the same width in km at the row's pole-side edge (one
  cell per row beyond 85°; longitude wraps). A reading belongs to its home cell, and is also
  sent, as a neighbour only, to every other cell that its `radius_km` disc reaches, so each cell
  sees every neighbour of its own sensors.
- **Neighbours** (`above_neighbours`, `below_neighbours`): the sensor's window value `x`
  against the robust centre `c` (median) and spread (1.4826 × MAD, at least `min_spread`) of the
  values of its neighbours within `radius_km` (10 km, great-circle distance; scikit-learn's
  `BallTree` with the haversine metric), when it has at least `min_neighbours` (3). It is off
  when `|x − c|` exceeds the tolerance `max(abs_limit, rel_limit × c, z_limit × spread)`:
  30 µg/m³, 50 % of the level, or twice the neighbours' own spread, whichever is widest. The
  relative term is there because PurpleAir units differ in proportion to the level: the US
  EPA's performance targets for PM2.5 sensors (Duvall et al. 2021, EPA/600/R-20/280) accept
  collocated units within a CV of 30 % or an SD of 5 µg/m³, and in the Cohoes history above
  20 µg/m³ one reading in twenty is more than 17 % from its neighbours' median; so the
  neighbours' MAD alone (a few µg/m³ at 50) called a smoky area's lower-reading units broken.
  The absolute term is the earlier rule's low-level limit (30 µg/m³, six times the EPA's
  5 µg/m³ SD: at low levels a unit a few metres from a grill or a chimney differs by tens of
  µg/m³ for minutes, and the simulator's sensors sit at their own real levels). (The US
  EPA's AirNow Fire and Smoke Map compares a PurpleAir sensor with its neighbours this way,
  with the mean and standard deviation; here the median and MAD, so that one bad neighbour
  does not move them.) Only on
  agreeing channels: a sensor whose channels disagree is a `sensor_fault` already. A sensor is
  reported only once `open_windows` (3) of its last `of_windows` (4) windows were off on the
  same side, until a quiet span clears it (`preparation.incidents.NeighbourTrack`).
- **Calibration drift**: the daily median of `x / c` over the windows with `c` at least
  `drift_level` (5 µg/m³), agreeing channels and no event, when at least `drift_windows` (24)
  were judged that day; a day is off when that ratio is above `1 + drift_ratio` (1.3, the
  EPA's 30 % CV) or below its inverse, and `drift_days` (3) off days in a row make a
  `calibration_drift` finding (`dataflows.areas`).
- **Pollution event** (`pollution_event`): a sensor rises when its window value is more than
  `rise_abs` (10 µg/m³) above its own baseline and more than `rise_ratio` (1.5) times it, on
  agreeing channels (no channel fault in the window). An area is in an event when at least
  `event_share` (half) of its sensors with a baseline rise, and at least `min_rising` (3). The
  baseline is an exponential average of the sensor's window values (weight `baseline_alpha`,
  0.1 a window), learnt only while the sensor is not rising and its area is not in an event
  (a plume's slow edge would otherwise become the baseline), ready after `baseline_windows` (3).
  During an event, a sensor of the area up by more than `join_abs` (5 µg/m³) on its baseline
  (on agreeing channels) is inside it too, however high it sat before; such a sensor is not off its
  neighbours (a plume's edge is pollution), nor is one below them.

These numbers are this project's, except where a source is named, and every one is an option.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EARTH_KM = 6371.0088  # mean Earth radius (IUGG)
KM_PER_DEGREE = math.pi * EARTH_KM / 180.0
POLAR = 85.0  # beyond this latitude, one cell per row


@dataclass(frozen=True)
class NeighbourRule:
    """The rules' numbers (see the module's docstring)."""

    radius_km: float = 10.0
    min_neighbours: int = 3
    abs_limit: float = 30.0
    rel_limit: float = 0.5
    z_limit: float = 2.0
    min_spread: float = 1.0
    rise_abs: float = 10.0
    rise_ratio: float = 1.5
    join_abs: float = 5.0
    event_share: float = 0.5
    min_rising: int = 3
    baseline_alpha: float = 0.1
    baseline_windows: int = 3
    open_windows: int = 3
    of_windows: int = 4
    drift_level: float = 5.0
    drift_ratio: float = 0.3
    drift_windows: int = 24
    drift_days: int = 3

    def __post_init__(self) -> None:
        if self.radius_km <= 0 or self.min_neighbours < 1 or self.min_rising < 1:
            raise ValueError("need radius_km > 0, min_neighbours >= 1 and min_rising >= 1")
        if not 0 < self.event_share <= 1 or not 0 < self.baseline_alpha <= 1:
            raise ValueError("event_share and baseline_alpha must be in (0, 1]")
        if not 1 <= self.open_windows <= self.of_windows <= 60:
            raise ValueError("need 1 <= open_windows <= of_windows <= 60")
        if self.drift_windows < 1 or self.drift_days < 1 or self.drift_ratio <= 0:
            raise ValueError("need drift_windows >= 1, drift_days >= 1 and drift_ratio > 0")

    def tolerance(self, centre: float, spread: float) -> float:
        """How far from the neighbours' centre a unit may read: the widest of `abs_limit`,
        `rel_limit` of the level and `z_limit` spreads.

        >>> rule = NeighbourRule()
        >>> rule.tolerance(10.0, 3.0), rule.tolerance(100.0, 4.0), rule.tolerance(20.0, 20.0)
        (30.0, 50.0, 40.0)
        """
        return max(
            self.abs_limit, self.rel_limit * centre, self.z_limit * max(spread, self.min_spread)
        )

    def side(self, x: float, centre: float, spread: float) -> int:
        """+1 well above the neighbours, -1 well below, 0 within the tolerance.

        >>> rule = NeighbourRule()
        >>> rule.side(55.0, 10.0, 3.0), rule.side(35.0, 10.0, 3.0), rule.side(60.0, 100.0, 5.0)
        (1, 0, 0)
        >>> rule.side(140.0, 80.0, 5.0), rule.side(30.0, 80.0, 5.0)
        (1, -1)
        """
        d = x - centre
        if abs(d) <= self.tolerance(centre, spread):
            return 0
        return 1 if d > 0 else -1

    def disagrees(self, x: float, centre: float, spread: float) -> bool:
        """Off the neighbours, either side."""
        return self.side(x, centre, spread) != 0

    def drifted(self, ratio: float) -> bool:
        """A day's median ratio to the neighbours off by more than `drift_ratio` in proportion.

        >>> rule = NeighbourRule()
        >>> rule.drifted(1.45), rule.drifted(0.8), rule.drifted(0.7)
        (True, False, True)
        """
        high = 1.0 + self.drift_ratio
        return ratio > high or ratio * high < 1.0

    def rises(self, x: float, baseline: float | None) -> bool:
        """More than `rise_abs` above the baseline and more than `rise_ratio` times it.

        >>> NeighbourRule().rises(40.0, 8.0), NeighbourRule().rises(15.0, 8.0)
        (True, False)
        """
        if baseline is None:
            return False
        return x - baseline > self.rise_abs and x > self.rise_ratio * baseline


def robust_centre(values: Sequence[float]) -> tuple[float, float]:
    """Median and 1.4826 × median absolute deviation (the standard deviation, for a normal).
    (Plain Python: neighbourhoods are small, where numpy's per-call cost dominates.)

    >>> robust_centre([1.0, 2.0, 3.0, 4.0, 100.0])
    (3.0, 1.4826)
    """
    centre = statistics.median(values)
    return centre, 1.4826 * statistics.median([abs(v - centre) for v in values])


class Neighbourhood:
    """The sensors of one window: positions (degrees) and values; a BallTree over them."""

    def __init__(self, latitude: Sequence[float], longitude: Sequence[float], radius_km: float):
        points = np.radians(np.column_stack([latitude, longitude]))
        from sklearn.neighbors import BallTree  # here: importing scikit-learn takes a second

        self.tree = BallTree(points, metric="haversine")
        self.points = points
        self.radius = radius_km / EARTH_KM

    def within(self, rows: Sequence[int]) -> list[np.ndarray]:
        """For each row, the other rows within the radius."""
        if not len(rows):
            return []
        found = self.tree.query_radius(self.points[list(rows)], r=self.radius)
        return [ids[ids != row] for row, ids in zip(rows, found, strict=True)]


def disagreements(
    rule: NeighbourRule,
    latitude: Sequence[float],
    longitude: Sequence[float],
    values: Sequence[float],
    rows: Sequence[int],
    tree: Neighbourhood | None = None,
) -> list[tuple[int, int, float, float] | None]:
    """For each row of `rows`: None when it has too few neighbours, else `(neighbours, flagged
    (0/1), centre, spread)` against the other sensors within the radius.

    >>> lat = [37.0, 37.01, 37.02, 37.03, 37.5]
    >>> values = [5.0, 6.0, 5.5, 80.0, 5.0]
    >>> out = disagreements(NeighbourRule(), lat, [-122.0] * 5, values, [0, 3, 4])
    >>> out[0][:2], out[1][:2], out[2]
    ((3, 0), (3, 1), None)
    """
    tree = tree or Neighbourhood(latitude, longitude, rule.radius_km)
    out: list[tuple[int, int, float, float] | None] = []
    for row, ids in zip(rows, tree.within(rows), strict=True):
        if len(ids) < rule.min_neighbours:
            out.append(None)
            continue
        centre, spread = robust_centre([values[i] for i in ids.tolist()])
        out.append((len(ids), int(rule.disagrees(values[row], centre, spread)), centre, spread))
    return out


# --- areas ---------------------------------------------------------------------------------


def _row_width(row: int, cell_deg: float) -> float:
    """Longitude degrees of a cell in `row`: `cell_deg` at the equator, wider towards the poles
    (measured at the row's pole-side edge, so a cell is never narrower than `area_km`)."""
    edge = max(abs(row * cell_deg), abs((row + 1) * cell_deg))
    if edge >= POLAR:
        return 360.0
    raw = cell_deg / math.cos(math.radians(edge))
    return 360.0 / max(math.floor(360.0 / raw), 1)  # whole columns around the globe


def _column(longitude: float, width: float) -> int:
    return int(((longitude + 180.0) % 360.0) // width)


def area_of(latitude: float, longitude: float, area_km: float) -> str:
    """The home cell of a position, as a key `"row:column"`.

    >>> area_of(37.77, -122.42, 20.0), area_of(37.95, -122.42, 20.0)
    ('209:253', '210:252')
    """
    cell = area_km / KM_PER_DEGREE
    row = math.floor(latitude / cell)
    return f"{row}:{_column(longitude, _row_width(row, cell))}"


def areas_near(latitude: float, longitude: float, area_km: float, radius_km: float) -> list[str]:
    """Every cell that the disc of `radius_km` around a position reaches, home cell first."""
    home = area_of(latitude, longitude, area_km)
    cell = area_km / KM_PER_DEGREE
    reach = radius_km / KM_PER_DEGREE
    found = [home]
    lo_row, hi_row = math.floor((latitude - reach) / cell), math.floor((latitude + reach) / cell)
    edge = min(abs(latitude) + reach, 90.0)
    span = 180.0 if edge >= POLAR else min(reach / math.cos(math.radians(edge)), 180.0)
    for row in range(lo_row, hi_row + 1):
        width = _row_width(row, cell)
        columns = round(360.0 / width)
        first, last = _column(longitude - span, width), _column(longitude + span, width)
        count = (last - first) % columns + 1 if span < 180.0 else columns
        for k in range(count):
            key = f"{row}:{(first + k) % columns}"
            if key not in found:
                found.append(key)
    return found
