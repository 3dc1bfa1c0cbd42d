"""Spatial imputation: fill a sensor's gap from the nearest other sensors' latest observations.

For a cross-section (every sensor once, at one moment) a sensor's own past is empty; its
neighbours are the natural donors. Rows arrive one at a time (any order); each observed row is
filed under its position in a grid of `cell_deg` × `cell_deg` degree cells, keeping per position
the latest observed value of each field. A missing field is filled with the mean of the `k`
nearest positions (by equirectangular distance in km) that have observed it, searched ring by ring
around the row's cell up to `max_rings` rings. Only rows already seen can be donors, so it learns
from the past only, like every streaming imputer here.

Cost is bounded, independent of how many sensors were seen: a cell keeps at most `per_cell`
positions (the oldest is dropped), so a query looks at ≤ (2·max_rings + 1)² · per_cell donors.
With `exclude_self` (default) a row's own position is never its donor, so on a time series this
is a spatial method, not a disguised "last value".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

KM_PER_DEG_LAT = 110.574
KM_PER_DEG_LON = 111.320  # at the equator; times cos(latitude)


class SpatialImputer:
    """Fill missing values with the mean of the k nearest other sensors' latest observations.

    >>> imp = SpatialImputer(["pm"], k=2, lat="lat", lon="lon")
    >>> rows = [(37.0, -122.0, 1.0), (37.01, -122.0, 3.0), (38.0, -122.0, 50.0)]
    >>> _ = [imp.impute_one({"lat": a, "lon": o, "pm": v}) for a, o, v in rows]
    >>> imp.impute_one({"lat": 37.005, "lon": -122.0, "pm": None})[0]["pm"]
    2.0
    """

    def __init__(
        self,
        fields: Sequence[str],
        k: int = 5,
        *,
        cell_deg: float = 0.5,
        max_rings: int = 3,
        per_cell: int = 64,
        exclude_self: bool = True,
        lat: str = "latitude",
        lon: str = "longitude",
    ):
        if k < 1 or max_rings < 0 or per_cell < 1 or cell_deg <= 0:
            raise ValueError("need k >= 1, max_rings >= 0, per_cell >= 1, cell_deg > 0")
        self.fields = tuple(fields)
        self.k = k
        self.cell_deg = cell_deg
        self.max_rings = max_rings
        self.per_cell = per_cell
        self.exclude_self = exclude_self
        self.lat = lat
        self.lon = lon
        # cell -> {(lat, lon): latest observed value per field, NaN where never observed}
        self.cells: dict[tuple[int, int], dict[tuple[float, float], np.ndarray]] = {}

    def _cell(self, lat: float, lon: float) -> tuple[int, int]:
        return math.floor(lat / self.cell_deg), math.floor(lon / self.cell_deg)

    def learn(self, position: tuple[float, float], values: Mapping[str, float | None]) -> None:
        """Record the observed fields of a row at its position (latest value wins)."""
        observed = [(j, values.get(name)) for j, name in enumerate(self.fields)]
        observed = [(j, v) for j, v in observed if v is not None]
        if not observed:
            return
        cell = self.cells.setdefault(self._cell(*position), {})
        latest = cell.pop(position, None)  # re-insert: the dict keeps positions by recency
        if latest is None:
            latest = np.full(len(self.fields), np.nan)
            if len(cell) >= self.per_cell:
                del cell[next(iter(cell))]
        for j, v in observed:
            latest[j] = v
        cell[position] = latest

    def donors(self, position: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        """Distances (km) and latest values (rows × fields) of positions near `position`.

        Rings are added until `k` donors are found, then one more ring (a donor in the next ring
        can be nearer than one in a corner of the last), up to `max_rings`."""
        ci, cj = self._cell(*position)
        found: list[tuple[tuple[float, float], np.ndarray]] = []
        stop = self.max_rings
        for ring in range(self.max_rings + 1):
            if ring > stop:
                break
            for di in range(-ring, ring + 1):
                for dj in range(-ring, ring + 1):
                    if max(abs(di), abs(dj)) != ring:
                        continue
                    for pos, latest in self.cells.get((ci + di, cj + dj), {}).items():
                        if not (self.exclude_self and pos == position):
                            found.append((pos, latest))
            if len(found) >= self.k and stop == self.max_rings:
                stop = ring + 1
        if not found:
            return np.empty(0), np.empty((0, len(self.fields)))
        where = np.array([pos for pos, _ in found])
        lat0 = math.radians(position[0])
        dy = (where[:, 0] - position[0]) * KM_PER_DEG_LAT
        dx = (where[:, 1] - position[1]) * KM_PER_DEG_LON * math.cos(lat0)
        return np.hypot(dx, dy), np.array([latest for _, latest in found])

    def impute_one(
        self, values: Mapping[str, float | None]
    ) -> tuple[dict[str, float | None], list[str], list[str]]:
        """Return `(values with gaps filled, imputed field names, still-missing field names)`.

        A row without a position can neither donate nor be imputed."""
        out = dict(values)
        lat, lon = values.get(self.lat), values.get(self.lon)
        gaps = [j for j, name in enumerate(self.fields) if values.get(name) is None]
        if lat is None or lon is None:
            return out, [], [self.fields[j] for j in gaps]
        position = (float(lat), float(lon))
        imputed: list[str] = []
        missing: list[str] = []
        if gaps:
            distances, latest = self.donors(position)
            for j in gaps:
                has = ~np.isnan(latest[:, j]) if len(distances) else np.zeros(0, bool)
                if not has.any():
                    missing.append(self.fields[j])
                    continue
                d, v = distances[has], latest[has, j]
                nearest = np.argsort(d, kind="stable")[: self.k]
                out[self.fields[j]] = float(np.mean(v[nearest]))
                imputed.append(self.fields[j])
        self.learn(position, values)
        return out, imputed, missing
