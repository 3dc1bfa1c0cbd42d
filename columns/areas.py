"""The area stage on arrays: each window's values of an area's sensors as numpy arrays.

The flow's second keyed stage, one key per area, does what `preparation.areas.AreaLogic` (its
reference, one reading at a time) specifies, with the same windows, rules and records:

- `AreaRouter` (stateless) sends each row of a piece (`columns.area_rows.AreaPiece`) to its home
  area and, as a neighbour only, to the other areas its radius reaches: one `AreaRows` per area
  and piece. A position's areas are found once (`preparation.neighbours.areas_near`).
- `AreaColumns` keeps an area's members in arrays (latest and first time, position, baseline),
  its open windows as the rows that fell in them, and each member's neighbours as one padded
  matrix of member slots, found by a BallTree once per set of members (positions are the ones a
  member joined with), not per window. Closing a window: each sensor's window value (the median
  of its values in it), then for every home sensor at once the median and MAD of its neighbours'
  values (one sort of the matrix of their values), the tolerance, the baselines and the event.
  The per-sensor standing over windows (`NeighbourTrack`), the daily ratio (`DriftTrack`) and
  the incidents stay objects: one per sensor that needs one.

Only alerts become objects: the rows that are alerts already or that the stage reports leave as
`Placed` readings, built from their `Work` rows at the end (`ReadingMaker`); the others only
count. (The reference leaves every reading as a `Placed`; the flow keeps the alerts of them.)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
from bytewax.operators import StatefulBatchLogic

from columns.area_rows import AreaPiece, work_rows
from columns.batch import Work
from columns.logic import SlotMap
from columns.readings import ReadingMaker
from preparation.areas import GRACE, OFFLINE_AFTER, WINDOW, AreaWindow, Placed
from preparation.incidents import CLEAR_AFTER, AreaIncidents, DriftTrack, NeighbourTrack
from preparation.neighbours import Neighbourhood, NeighbourRule, areas_near
from preparation.reasons import ABOVE_NEIGHBOURS, BELOW_NEIGHBOURS, LOCAL_SOURCE
from preparation.registry import Registry


@dataclass(slots=True)
class AreaRows:
    """An area's rows of one batch of pieces, in their order: `home` rows are its own
    sensors' (they leave from here), the others are neighbours only. A home row is row `at` of
    `works[src]` (its piece's home rows in this area), made with `bases[src]` fields."""

    area: str
    sensors: np.ndarray
    times: np.ndarray
    latitude: np.ndarray
    longitude: np.ndarray
    values: np.ndarray
    ok: np.ndarray
    home: np.ndarray
    alert: np.ndarray
    src: np.ndarray  # -1: not home
    at: np.ndarray
    works: list[Work | None]
    bases: list[int]

    def __len__(self) -> int:
        return len(self.sensors)

    def reading(self, maker: ReadingMaker, row: int) -> Any:
        """The `Reading` of home row `row`."""
        src = int(self.src[row])
        return maker.readings(self.works[src], self.at[row : row + 1], self.bases[src])[0]


#: One piece's rows for one area: (piece, its rows, home or not, row in `work`, `work`).
Segment = tuple[AreaPiece, np.ndarray, np.ndarray, np.ndarray, "Work | None"]


def joined(area: str, segments: list[Segment]) -> AreaRows:
    """An area's segments of a batch's pieces as one `AreaRows`."""

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def column(name: str) -> np.ndarray:
        return cat([getattr(piece, name)[idx] for piece, idx, _h, _a, _w in segments])

    src = cat([np.where(home, k, -1) for k, (_p, _i, home, _a, _w) in enumerate(segments)])
    return AreaRows(
        area, column("sensors"), column("times"), column("latitude"), column("longitude"),
        column("values"), column("ok"), cat([home for _p, _i, home, _a, _w in segments]),
        column("alert"), src, cat([at for _p, _i, _h, at, _w in segments]),
        [work for _p, _i, _h, _a, work in segments], [piece.base for piece, *_ in segments],
    )  # fmt: skip


class AreaRouter:
    """Rows to areas; a position's areas memoised (a pure function of it), so it may be shared
    by a worker's batches. Alerts without a position leave at once, as `("", Placed)`."""

    def __init__(self, area_km: float, radius_km: float, maker: ReadingMaker):
        self.area_km, self.radius_km, self.maker = area_km, radius_km, maker
        self.places: dict[tuple[float, float], int] = {}  # position -> its index
        self.reach: list[list[int]] = []  # position index -> its areas' ids, home first
        self.names: list[str] = []  # area id -> key
        self.ids: dict[str, int] = {}
        self._count = np.zeros(0, np.int64)  # per position: its areas, and where they start
        self._start = np.zeros(0, np.int64)
        self._flat = np.zeros(0, np.int64)

    def route(self, batch: list[Any]) -> list[tuple[str, Any]]:
        """A batch's pieces: one `AreaRows` per area they reach; alerts without a position."""
        out: list[tuple[str, Any]] = []
        segments: dict[int, list[Segment]] = {}
        for piece in batch:
            if type(piece) is AreaPiece:
                self._piece(piece, out, segments)
        for area, parts in segments.items():
            name = self.names[area]
            out.append((name, joined(name, parts)))
        return out

    def _positions(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        keys = list(zip(lat.tolist(), lon.tolist(), strict=True))
        found = list(map(self.places.get, keys))
        if None in found:
            for n, key in enumerate(keys):
                if found[n] is None:
                    found[n] = self._place(key)
            count = np.array([len(r) for r in self.reach], np.int64)
            self._count, self._start = count, np.cumsum(count) - count
            self._flat = np.array([a for r in self.reach for a in r], np.int64)
        return np.array(found, np.int64)

    def _place(self, key: tuple[float, float]) -> int:
        known = self.places.get(key)
        if known is not None:
            return known
        ids = []
        for name in areas_near(*key, self.area_km, self.radius_km):
            if name not in self.ids:
                self.ids[name] = len(self.names)
                self.names.append(name)
            ids.append(self.ids[name])
        self.places[key] = len(self.reach)
        self.reach.append(ids)
        return self.places[key]

    def _piece(
        self, piece: AreaPiece, out: list[tuple[str, Any]], segments: dict[int, list[Segment]]
    ) -> None:
        """A piece's rows by area (its `Work` once in home-area order: each area's home rows
        a slice of it)."""
        lat, lon = piece.latitude, piece.longitude
        placed = ~(np.isnan(lat) | np.isnan(lon))
        rows = np.flatnonzero(placed)
        if len(rows) < len(piece):
            gone = np.flatnonzero(~placed & piece.alert)
            if len(gone):
                readings = self.maker.readings(piece.work, gone, piece.base)
                out.extend(("", Placed(r)) for r in readings)
            if not len(rows):
                return
        where = self._positions(lat[rows], lon[rows])
        counts = self._count[where]
        offsets = np.cumsum(counts) - counts
        k = np.arange(int(counts.sum())) - np.repeat(offsets, counts)  # the row's k-th area
        area = self._flat[np.repeat(self._start[where], counts) + k]
        row = np.repeat(rows, counts)
        order = np.argsort(area, kind="stable")  # by area, each area's rows in piece order
        area, row, home = area[order], row[order], k[order] == 0
        by_home = work_rows(piece.work, row[home])
        homes = np.cumsum(home)  # home rows up to each entry
        bounds = np.flatnonzero(np.diff(area)) + 1
        for a, b in zip([0, *bounds.tolist()], [*bounds.tolist(), len(area)], strict=True):
            is_home = home[a:b]
            first, last = int(homes[a] - is_home[0]), int(homes[b - 1])
            at = np.full(b - a, -1, np.int64)
            at[is_home] = np.arange(last - first)
            work = work_rows(by_home, slice(first, last)) if last > first else None
            segments.setdefault(int(area[a]), []).append((piece, row[a:b], is_home, at, work))


#: Before any time (a member's latest time before its first row).
NEVER = -(2**62)
#: Rows of an `AreaRows` that fell in a window: (rows, their indexes, their member slots, the
#: arrival number of row 0 of `rows`).
Chunk = tuple[AreaRows, np.ndarray, np.ndarray, int]


class WindowRows:
    """A window's rows, gathered from its chunks in order of arrival."""

    def __init__(self, chunks: list[Chunk]):
        self.chunks = chunks
        self.order: np.ndarray | None = None  # chunk order -> arrival order, when they differ
        self.chunk = np.repeat(np.arange(len(chunks)), [len(i) for _r, i, _s, _q in chunks])
        self.row = self._cat([i for _r, i, _s, _q in chunks])
        self.slot = self._cat([s for _r, _i, s, _q in chunks])
        seq = self._cat([q + i for _r, i, _s, q in chunks])
        if len(seq) > 1 and not (seq[1:] > seq[:-1]).all():  # rounds of one batch: reorder
            self.order = np.argsort(seq, kind="stable")
            self.chunk, self.row, self.slot = (
                self.chunk[self.order],
                self.row[self.order],
                self.slot[self.order],
            )

    @staticmethod
    def _cat(parts: list[np.ndarray]) -> np.ndarray:
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def take(self, name: str) -> np.ndarray:
        """Column `name` of the `AreaRows` for every row, in order of arrival."""
        out = self._cat([getattr(r, name)[i] for r, i, _s, _q in self.chunks])
        return out if self.order is None else out[self.order]

    def reading(self, maker: ReadingMaker, p: int) -> Any:
        """The `Reading` of row `p` (a home row)."""
        return self.chunks[int(self.chunk[p])][0].reading(maker, int(self.row[p]))


def robust_rows(values: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's median and 1.4826 × MAD (`preparation.neighbours.robust_centre`) over its
    first `counts` values once sorted (NaN, which sorts last, pads the rows).

    >>> values = np.array([[1.0, 2.0, 3.0, 4.0, 100.0], [10.0, 12.0, 11.0, 13.0, np.nan]])
    >>> centre, spread = robust_rows(values, np.array([5, 4]))
    >>> centre.tolist(), spread.tolist()
    ([3.0, 11.5], [1.4826, 1.4826])
    """
    rows = np.arange(len(values))
    lo, hi = (counts - 1) // 2, counts // 2
    ranked = np.sort(values, axis=1)
    centre = (ranked[rows, lo] + ranked[rows, hi]) / 2
    apart = np.sort(np.abs(ranked - centre[:, None]), axis=1)
    return centre, 1.4826 * ((apart[rows, lo] + apart[rows, hi]) / 2)


def group_medians(groups: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """The median of each group's values (`statistics.median`'s), NaN for a group without any.

    >>> group_medians(np.array([2, 0, 2, 2, 0]), np.array([5.0, 1.0, 3.0, 4.0, 2.0]), 3).tolist()
    [1.5, nan, 4.0]
    """
    out = np.full(size, np.nan)
    if not len(groups):
        return out
    order = np.lexsort((values, groups))
    g, v = groups[order], values[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    counts = np.diff(np.r_[starts, len(g)])
    out[g[starts]] = (v[starts + (counts - 1) // 2] + v[starts + counts // 2]) / 2
    return out


class AreaColumns(StatefulBatchLogic):
    """One area's members, open windows and baselines, in arrays (`preparation.areas.AreaLogic`
    on `AreaRows`). `maker` builds the alerts' readings; `faults`: a reported row is an alert."""

    def __init__(
        self,
        rule: NeighbourRule,
        maker: ReadingMaker,
        faults: bool = True,
        window: int = WINDOW,
        grace: int = GRACE,
        offline_after: int = OFFLINE_AFTER,
        resume: dict[str, Any] | None = None,
        registry: Registry | None = None,
        incidents: int | None = None,
        clear: int = CLEAR_AFTER,
    ):
        self.rule, self.maker, self.faults = rule, maker, faults
        self.window, self.grace, self.offline_after = window, grace, offline_after
        self.registry, self.incidents, self.clear = registry, incidents, clear
        state = resume or {}
        self.slots: SlotMap = state.get("slots") or SlotMap()
        self.ids = state.get("ids", np.zeros(0, np.int64))  # member slot -> sensor
        self.latest = state.get("latest", np.zeros(0, np.int64))
        self.first = state.get("first", np.zeros(0, np.int64))
        self.lat = state.get("lat", np.zeros(0))
        self.lon = state.get("lon", np.zeros(0))
        self.base = state.get("base", np.zeros(0))  # baseline value
        self.learnt = state.get("learnt", np.zeros(0, np.int64))  # its windows; -1: none yet
        # window index -> the rows that fell in it: (rows, their indexes, their member slots,
        # the arrival number of the first row of `rows`)
        self.windows: dict[int, list[Chunk]] = state.get("windows", {})
        self.seq: int = state.get("seq", 0)  # rows arrived so far
        self.counts: dict[str, int] = state.get("counts", {})
        self.event_incident: AreaIncidents | None = state.get("event_incident")
        self.tracks: dict[int, NeighbourTrack] = state.get("tracks", {})
        self.drifts: dict[int, DriftTrack] = state.get("drifts", {})
        self.registered = bool(state)
        self._tree: Neighbourhood | None = None  # over the members (rebuilt on resume)
        self._near: np.ndarray | None = None  # home sensors' neighbours' slots, -1 padded
        self._row = np.zeros(0, np.int64)

    def _count(self, tag: str, n: int = 1) -> None:
        if n:
            self.counts[tag] = self.counts.get(tag, 0) + n

    def _grow(self) -> None:
        """Room for every slot the map gave out."""
        size, have = self.slots.count, len(self.ids)
        if size > have:
            more = size - have
            self.ids = np.concatenate([self.ids, np.zeros(more, np.int64)])
            self.latest = np.concatenate([self.latest, np.zeros(more, np.int64)])
            self.first = np.concatenate([self.first, np.zeros(more, np.int64)])
            self.lat = np.concatenate([self.lat, np.zeros(more)])
            self.lon = np.concatenate([self.lon, np.zeros(more)])
            self.base = np.concatenate([self.base, np.zeros(more)])
            self.learnt = np.concatenate([self.learnt, np.full(more, -1, np.int64)])
            self._near = None  # a new member: neighbour sets to be found again

    def _register(self, area: str) -> None:
        """Members known in advance: each will first report at its first time."""
        self.registered = True
        known = (self.registry or {}).get(area, {})
        # an index past int64 is never a row (the parser makes it a dead letter): no member
        known = {k: v for k, v in known.items() if type(k) is int and 0 <= k < 2**63}
        if not known:
            return
        sensors = np.fromiter(known, np.int64, len(known))
        before = self.slots.count
        slots = self.slots.lookup(sensors)
        self._grow()
        new = slots >= before
        if new.any():
            firsts, lats, lons = (np.array(v) for v in zip(*known.values(), strict=True))
            s = slots[new]
            self.ids[s] = sensors[new]
            self.first[s], self.latest[s] = firsts[new], firsts[new] - 1
            self.lat[s], self.lon[s] = lats[new], lons[new]

    def on_batch(self, values: list[AreaRows]) -> tuple[list[Any], bool]:
        out: list[Any] = []
        if not self.registered and values:
            self._register(values[0].area)
        for rows in values:
            gone = self._take(rows)
            out.extend(Placed(rows.reading(self.maker, i)) for i in gone.tolist())
            self.seq += len(rows)
        window = self.window
        while self.windows:
            oldest = min(self.windows)
            if not self._complete(oldest * window):
                break
            out.extend(self._close(oldest))
        return out, StatefulBatchLogic.RETAIN

    def _take(self, rows: AreaRows) -> np.ndarray:
        """Which rows count, by each sensor's own sequence (a sensor's rows of several polls
        at once: the latest time before each is a running maximum), into their windows; the
        others leave at once: the alerts among the home ones, returned (rows of `rows`)."""
        before = self.slots.count
        sensors, times = rows.sensors, rows.times
        slots = self.slots.lookup(sensors)
        self._grow()
        order = np.argsort(slots, kind="stable")  # each sensor's rows together, in order
        slot, t = slots[order], times[order]
        starts = np.r_[True, slot[1:] != slot[:-1]] if len(slot) else np.zeros(0, bool)
        group = np.cumsum(starts) - 1
        low, span = int(t.min()) if len(t) else 0, int(np.ptp(t)) + 1 if len(t) else 1
        running = np.maximum.accumulate(group * span + (t - low)) - group * span + low
        previous = np.empty_like(t)
        previous[1:] = running[:-1]
        previous[starts] = NEVER
        new = slot >= before
        first_t = t[np.flatnonzero(starts)][group]  # the sensor's first time in these rows
        latest = np.maximum(np.where(new, NEVER, self.latest[slot]), previous)
        first = np.where(new, first_t, self.first[slot])
        counted = ~(new & starts) & (latest < t) & (t <= latest + self.offline_after)
        counted &= t >= first + self.grace
        last = np.r_[starts[1:], True] if len(slot) else starts
        self.latest[slot[last]] = np.maximum(latest[last], t[last])
        joined = new & starts
        if joined.any():
            s, first_rows = slot[joined], order[joined]
            self.ids[s], self.first[s] = sensors[first_rows], times[first_rows]
            self.lat[s], self.lon[s] = rows.latitude[first_rows], rows.longitude[first_rows]
        included = np.empty(len(rows), bool)
        included[order] = counted
        leave = ~included & rows.home
        gone = np.flatnonzero(leave & rows.alert)
        if leave.any():
            self._count("spatial:unplaced", int(leave.sum()))
        if included.any():
            kept = np.flatnonzero(included)
            index = times[kept] // self.window
            for w in np.unique(index).tolist():
                part = kept[index == w]
                self.windows.setdefault(w, []).append((rows, part, slots[part], self.seq))
        return gone

    def _complete(self, start: int) -> bool:
        end, silent = start + self.window, start - self.offline_after
        n = self.slots.count
        latest = self.latest[:n]
        return bool(
            np.all((latest >= end) | (latest < silent) | (self.first[:n] + self.grace >= end))
        )

    def _neighbours(self, own: np.ndarray) -> np.ndarray:
        """The neighbours within the radius of the home sensors `own` (member slots), as rows
        of member slots padded with -1. One BallTree over the members, built again only when a
        member joins; the neighbours of the home sensors seen so far found with it, again only
        when a home sensor is new to them (its first window, or after a member joined)."""
        n = self.slots.count
        if self._near is None or len(self._row) != n:
            self._tree = Neighbourhood(self.lat[:n], self.lon[:n], self.rule.radius_km)
            self._row = np.full(n, -1, np.int64)  # member slot -> its row of `_near`
            self._near = np.zeros((0, 0), np.int64)
        missing = own[self._row[own] < 0]
        if len(missing):  # their rows, appended (the matrix widened when they have more)
            found = self._tree.within(missing.tolist())
            sizes = np.array([len(f) for f in found], np.int64)
            width = max(int(sizes.max()), self._near.shape[1])
            near = np.full((len(self._near) + len(missing), width), -1, np.int64)
            near[: len(self._near), : self._near.shape[1]] = self._near
            if sizes.sum():
                rows = len(self._near) + np.repeat(np.arange(len(missing)), sizes)
                cols = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
                near[rows, cols] = np.concatenate(found)
            self._row[missing] = np.arange(len(self._near), len(near))
            self._near = near
        return self._near[self._row[own]]

    def _close(self, index: int) -> list[Any]:
        """The window's verdict: its alerts with their spatial reasons and event flag, the
        area's `AreaWindow` and incident records."""
        rule, n = self.rule, self.slots.count
        self._count("spatial:windows")
        rows = WindowRows(self.windows.pop(index))
        slot, value, home = rows.slot, rows.take("values"), rows.take("home")
        valid = ~np.isnan(value)
        window_value = group_medians(slot[valid], value[valid], n)
        ok = np.ones(n, bool)
        ok[slot[~rows.take("ok")]] = False
        present, first_row = np.unique(slot, return_index=True)
        is_home = np.zeros(n, bool)  # a home sensor: its first row in the window is
        is_home[present[home[first_row]]] = True
        own = np.flatnonzero(is_home & ~np.isnan(window_value))
        own = own[np.argsort(self.ids[own], kind="stable")]  # by sensor, as the reference
        x = window_value[own]
        # the neighbour rule, every home sensor at once
        judged = np.zeros(len(own), bool)
        side = np.zeros(len(own), np.int64)
        centre = np.full(len(own), np.nan)
        if len(own):
            around = np.append(window_value, np.nan)[self._neighbours(own)]
            enough = (~np.isnan(around)).sum(axis=1)
            judged = (enough >= rule.min_neighbours) & ok[own]
            if judged.any():
                c, spread = robust_rows(around[judged], enough[judged])
                tolerance = np.maximum(
                    np.maximum(rule.abs_limit, rule.rel_limit * c),
                    rule.z_limit * np.maximum(spread, rule.min_spread),
                )
                d = x[judged] - c
                side[judged] = np.where(np.abs(d) <= tolerance, 0, np.where(d > 0, 1, -1))
                centre[judged] = c
        # baselines and the event
        learnt, base = self.learnt[own], self.base[own]
        ready = learnt >= rule.baseline_windows
        rises = ready & ok[own] & (x - base > rule.rise_abs) & (x > rule.rise_ratio * base)
        ids = self.ids[own]
        rising = ids[rises].tolist()
        n_ready = int(ready.sum())
        event = len(rising) >= max(rule.min_rising, rule.event_share * n_ready)
        up = rises.copy()
        if event:  # up by more than `join_abs` on agreeing channels, however high they sat
            up |= ok[own] & ready & (x - base > rule.join_abs)
        inside = rising + ids[up & ~rises].tolist()
        if not event:  # baselines learnt by the sensors that did not rise (not during an event)
            learn = ~up
            b = np.where(learnt[learn] >= 0, base[learn], x[learn])
            self.base[own[learn]] = b + rule.baseline_alpha * (x[learn] - b)
            self.learnt[own[learn]] = np.maximum(learnt[learn], 0) + 1
        start = index * self.window
        end = start + self.window
        out: list[Any] = [AreaWindow("", start, end, event, rising, n_ready)]
        if event:
            self._count("spatial:event_windows")
            side[judged & (((side > 0) & up) | (side < 0))] = 0  # the event explains it
        reported = self._judge(start, end, ids, x, judged, side, centre, (event, inside), out)
        self._leave(rows, home, own, up if event else None, reported, out)
        return out

    def _judge(
        self,
        start: int,
        end: int,
        ids: np.ndarray,
        x: np.ndarray,
        judged: np.ndarray,
        side: np.ndarray,
        centre: np.ndarray,
        verdict: tuple[bool, list[int]],
        out: list[Any],
    ) -> dict[int, tuple[str, dict[str, float]]]:
        """`preparation.areas.AreaLogic._judge` over the judged sensors, in sensor order."""
        rule, emit, (event, inside) = self.rule, self.incidents is not None, verdict
        if emit:
            if self.event_incident is None:
                self.event_incident = AreaIncidents(self.incidents)
            out.extend(self.event_incident.observe("", start, end, event, inside))
        reported: dict[int, tuple[str, dict[str, float]]] = {}
        which = np.flatnonzero(judged)
        tracks, drifts = self.tracks, self.drifts
        for sensor, s, v, c in zip(
            ids[which].tolist(),
            side[which].tolist(),
            x[which].tolist(),
            centre[which].tolist(),
            strict=True,
        ):
            track = tracks.get(sensor)
            if track is None and s != 0:
                track = tracks[sensor] = NeighbourTrack(
                    rule.open_windows, rule.of_windows, self.clear
                )
            if track is not None:
                kind = LOCAL_SOURCE if s > 0 or (s == 0 and track.side > 0) else "anomaly"
                shown, records = track.observe(sensor, start, end, s, v, c, kind)
                if shown:
                    detail = {"centre": round(c, 2), "excess": round(v - c, 2)}
                    if c > 0:
                        detail["ratio"] = round(v / c, 3)
                    reported[sensor] = (ABOVE_NEIGHBOURS if s > 0 else BELOW_NEIGHBOURS, detail)
                if emit:
                    out.extend(records)
            ratio = v / c if not event and c >= rule.drift_level else None
            drift = drifts.get(sensor)
            if drift is None:
                drift = drifts[sensor] = DriftTrack()
            found = drift.observe(rule, sensor, start, ratio)
            if found:
                self._count("spatial:calibration_drift", sum(i.state == "open" for i in found))
                if emit:
                    out.extend(found)
        return reported

    def _leave(
        self,
        rows: WindowRows,
        home: np.ndarray,
        own: np.ndarray,
        up: np.ndarray | None,
        reported: dict[int, tuple[str, dict[str, float]]],
        out: list[Any],
    ) -> None:
        """The window's home rows: counted by reason and event; the alerts leave as `Placed`,
        in the reference's order (by each sensor's first row in the window, then in order)."""
        n, slot = self.slots.count, rows.slot
        flagged = np.zeros(n, bool)
        in_event = np.zeros(n, bool)
        if up is not None:
            in_event[own[up]] = True
        codes: dict[int, tuple[str, dict[str, float]]] = {}
        if reported:
            at = dict(zip(self.ids[own].tolist(), own.tolist(), strict=True))
            codes = {at[sensor]: found for sensor, found in reported.items()}
            flagged[list(codes)] = True
        hits = np.bincount(slot[home], minlength=n)
        for s, (code, _detail) in codes.items():
            self._count("spatial:" + code, int(hits[s]))
        if up is not None:
            self._count("spatial:in_event", int(hits[in_event].sum()))
        leaving = home & rows.take("alert")
        if self.faults and codes:
            leaving |= home & flagged[slot]
        if not leaving.any():
            return
        _, first_row = np.unique(slot, return_index=True)
        first = np.zeros(n, np.int64)
        first[slot[first_row]] = first_row
        picked = np.flatnonzero(leaving)
        picked = picked[np.argsort(first[slot[picked]], kind="stable")]
        for p in picked.tolist():
            reading = rows.reading(self.maker, p)
            s = int(slot[p])
            found = codes.get(s)
            reasons = [] if found is None else [found[0]]
            out.append(
                Placed(reading, reasons, bool(in_event[s]), None if found is None else found[1])
            )

    def on_eof(self) -> tuple[list[Any], bool]:
        out: list[Any] = []
        for start in sorted(self.windows):
            out.extend(self._close(start))
        out.append(dict(self.counts))
        self.counts = {}
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self) -> dict[str, Any]:
        return {
            "slots": copy.deepcopy(self.slots),
            "ids": self.ids.copy(),
            "latest": self.latest.copy(),
            "first": self.first.copy(),
            "lat": self.lat.copy(),
            "lon": self.lon.copy(),
            "base": self.base.copy(),
            "learnt": self.learnt.copy(),
            "windows": {w: list(chunks) for w, chunks in self.windows.items()},
            "counts": dict(self.counts),
            "seq": self.seq,
            "event_incident": copy.deepcopy(self.event_incident),
            "tracks": {s: copy.copy(t) for s, t in self.tracks.items()},
            "drifts": {s: copy.copy(t) for s, t in self.drifts.items()},
        }
