"""The area stage on arrays (`columns.areas`) against its per-reading reference
(`preparation.areas.AreaLogic`, fed by `preparation.areas.route`): randomised deployments
(clusters of sensors across area edges, sensors without a position, silences, repeated and
out-of-order times, local sources, smoke, channel faults, placeholders, alerts), random rules,
batches and a snapshot taken mid-stream; every alert, window verdict, incident and count the
same, in the same order. And the grouped medians against `statistics.median`, and the
neighbour sets found once per set of members."""

from __future__ import annotations

import dataclasses
import functools
import pickle
import random
import statistics
from typing import Any

import numpy as np
import pytest

import columns.areas as area_columns
from columns.area_rows import area_piece
from columns.areas import AreaColumns, AreaRouter, AreaRows, group_medians, robust_rows
from columns.batch import SCORED, STATUS_NAMES, Columns, Work
from columns.readings import ReadingMaker
from columns.sensor_config import SensorConfig
from dataflows.steps import is_anomaly
from preparation.areas import AreaLogic, AreaWindow, Placed, route
from preparation.incidents import Incident
from preparation.neighbours import NeighbourRule
from preparation.reasons import CHANNEL_DISAGREEMENT, CHANNEL_ZERO, FLATLINE, OUT_OF_RANGE
from preparation.registry import registry_of

FIELD = "pm2.5_cf_1"
FIELDS = ("latitude", "longitude", FIELD)
THRESHOLD = 0.9
CASES = 16


def rows_of(rng: random.Random) -> list[tuple[int, int, float, float, float, list[str], float]]:
    """A deployment's rows in time order: (sensor, time, lat, lon, value, reasons, score)."""
    n = rng.randint(4, 20)
    hours = rng.choice((4, 12, 30))
    clusters = [(37.0 + rng.uniform(-0.2, 0.2), -122.0 + rng.uniform(-0.2, 0.2))
                for _ in range(rng.randint(1, 3))]  # fmt: skip
    smoke = (rng.randrange(hours * 3600), rng.randrange(3600, 5 * 3600))
    rows = []
    for sensor in rng.sample(range(100, 10_000), n):
        clat, clon = rng.choice(clusters)
        lat, lon = clat + rng.gauss(0, 0.04), clon + rng.gauss(0, 0.05)
        if rng.random() < 0.1:
            lat = float("nan")
        level = rng.uniform(2, 30)
        source = rng.random() < 0.2
        cadence = rng.choice((60, 120, 300, 600) if hours < 30 else (300, 600))
        t = rng.randrange(4 * 3600)
        p_bad = rng.choice((0.0, 0.05, 0.3))
        while t < hours * 3600:
            value = level * rng.uniform(0.8, 1.2)
            if source and t // 3600 % 6 < 3:
                value += rng.uniform(40, 90)
            if smoke[0] <= t < smoke[0] + smoke[1]:
                value += 80.0
            reasons: list[str] = []
            if rng.random() < p_bad:
                reasons = [rng.choice((CHANNEL_DISAGREEMENT, CHANNEL_ZERO, FLATLINE, OUT_OF_RANGE))]
            if rng.random() < 0.05:
                value = float("nan")
            score = rng.random()
            rows.append((sensor, t, lat, lon, round(value, 1), reasons, score))
            step = cadence + rng.randrange(-cadence // 4, cadence // 4 + 1)
            if rng.random() < 0.01:
                step += rng.randrange(3600, 3 * 3600)  # silent, then back
            if rng.random() < 0.02:
                step = rng.choice((0, -cadence))  # a repeat, or a reading not after the last
            t += step
    rows.sort(key=lambda r: r[1])
    return rows


def pieces_of(rng: random.Random, rows: list) -> list[list]:
    """The rows cut into pieces that hold each sensor once, in order."""
    pieces, piece, seen = [], [], set()
    for row in rows:
        if row[0] in seen or rng.random() < 0.05:
            pieces.append(piece)
            piece, seen = [], set()
        piece.append(row)
        seen.add(row[0])
    pieces.append(piece)
    return [p for p in pieces if p]


def work_of(rng: random.Random, piece: list) -> Work:
    """A piece as the shard step leaves it: values, reasons, scores and statuses, and now and
    then a placeholder row."""
    values = np.array([[r[2], r[3], r[4]] for r in piece])
    columns = Columns(np.array([r[0] for r in piece]), np.array([r[1] for r in piece]), FIELDS,
                      values)  # fmt: skip
    work = Work.of(columns, np.array([rng.random() < 0.03 for _ in piece]))
    work.score = np.array([r[6] for r in piece])
    work.status = np.array([rng.choice((SCORED, SCORED, 1)) for _ in piece], np.uint8)
    for i, r in enumerate(piece):
        if r[5]:
            work.reasons[i] = list(r[5])
    return work


def normal(item: Any) -> tuple:
    if type(item) is Placed:
        r = item.reading
        return ("placed", r.sensor_index, r.time, tuple(item.reasons), item.event, item.neighbours)
    if type(item) is AreaWindow:
        return ("window", *dataclasses.astuple(item))
    if type(item) is Incident:
        return ("incident", *dataclasses.astuple(item))
    return ("counts", tuple(sorted(item.items())))


@functools.cache
def run_both(seed: int) -> tuple[list, list]:
    """Every output of the reference and of the array form, by area, in order."""
    rng = random.Random(seed)
    rows = rows_of(rng)
    rule = NeighbourRule(
        radius_km=rng.choice((3.0, 10.0)),
        min_neighbours=rng.randint(1, 4),
        abs_limit=rng.choice((5.0, 15.0, 30.0)),
        rel_limit=rng.choice((0.2, 0.5)),
        open_windows=rng.randint(1, 3),
        of_windows=rng.randint(3, 5),
        drift_windows=rng.choice((2, 24)),
        drift_days=rng.randint(1, 2),
        drift_ratio=rng.choice((0.1, 0.3)),
        baseline_windows=rng.randint(1, 3),
        min_rising=rng.randint(1, 3),
    )
    area_km = rng.choice((5.0, 10.0, 30.0))
    window, grace = rng.choice((300, 600)), rng.choice((0, 600, 1800))
    offline_after = rng.choice((1800, 3600))
    faults = rng.random() < 0.8
    incidents = rng.choice((None, 1800))
    registry = None
    if rng.random() < 0.5:
        first: dict[int, tuple[int, float, float]] = {}
        for sensor, t, lat, lon, *_ in rows:
            if lat == lat and sensor not in first:
                first[sensor] = (t, lat, lon)
        registry = registry_of(first, area_km, rule.radius_km)
    config = SensorConfig((), 1, "mean", THRESHOLD, {})
    maker = ReadingMaker(config)
    router = AreaRouter(area_km, rule.radius_km, maker)
    places: dict = {}
    reference: dict[str, AreaLogic] = {}
    arrays: dict[str, AreaColumns] = {}
    want: list[tuple] = []
    got: list[tuple] = []

    def new_reference(resume: Any = None) -> AreaLogic:
        return AreaLogic(rule, window, grace, offline_after, resume, registry, incidents, 1200)

    def new_arrays(resume: Any = None) -> AreaColumns:
        return AreaColumns(rule, maker, faults, window, grace, offline_after, resume, registry,
                           incidents, 1200)  # fmt: skip

    def alert(item: Any) -> bool:
        return type(item) is not Placed or bool(
            (faults and item.reasons) or is_anomaly(item.reading, THRESHOLD, faults)
        )

    pieces = pieces_of(rng, rows)
    snapshot_at = rng.randrange(len(pieces))
    k = 0
    while k < len(pieces):
        group = pieces[k : k + rng.randint(1, 3)]
        readings, found_pieces = [], []
        for piece in group:
            work = work_of(rng, piece)
            made = maker.readings(work, np.arange(len(work)), len(FIELDS))
            alerts = np.array([is_anomaly(r, THRESHOLD, faults) for r in made], bool)
            readings += made
            found = area_piece(work, alerts, len(FIELDS), FIELD)
            if found is not None:
                found_pieces.append(found)
        routed_arrays = router.route(found_pieces)  # one AreaRows per area for the group
        by_area: dict[str, list] = {}
        for area, item in route(readings, FIELD, area_km, rule.radius_km, places):
            if area == "":
                want += [("", normal(item))] if alert(item) else []
            else:
                by_area.setdefault(area, []).append(item)
        for area, items in by_area.items():
            logic = reference.setdefault(area, new_reference())
            want += [(area, normal(x)) for x in logic.on_batch(items)[0] if alert(x)]
        by_area = {}
        for area, item in routed_arrays:
            if area == "":
                got.append(("", normal(item)))
            else:
                assert type(item) is AreaRows
                by_area.setdefault(area, []).append(item)
        for area, items in by_area.items():
            logic = arrays.setdefault(area, new_arrays())
            got += [(area, normal(x)) for x in logic.on_batch(items)[0]]
        if k <= snapshot_at < k + len(group):  # resume both from pickled snapshots
            reference = {a: new_reference(pickle.loads(pickle.dumps(x.snapshot())))
                         for a, x in reference.items()}  # fmt: skip
            arrays = {a: new_arrays(pickle.loads(pickle.dumps(x.snapshot())))
                      for a, x in arrays.items()}  # fmt: skip
        k += len(group)
    for area, logic in reference.items():
        want += [(area, normal(x)) for x in logic.on_eof()[0] if alert(x)]
    for area, logic in arrays.items():
        got += [(area, normal(x)) for x in logic.on_eof()[0]]
    return want, got


def by_area(items: list[tuple]) -> dict[str, list[tuple]]:
    """Each area's outputs in their order (areas are separate keys: their order means nothing)."""
    out: dict[str, list[tuple]] = {}
    for area, item in items:
        out.setdefault(area, []).append(item)
    return out


@pytest.mark.parametrize("case", range(CASES))
def test_the_array_form_gives_what_the_reference_gives(case):
    want, got = run_both(9100 + case)
    assert by_area(got) == by_area(want)


def test_the_deployments_exercise_every_verdict():
    """The drawn cases hold alerts with each spatial reason, events and incidents of each kind."""
    seen: set = set()
    for case in range(CASES):
        want, _got = run_both(9100 + case)
        for _area, item in want:
            if item[0] == "placed":
                seen.update(item[3])
                seen.add("event" if item[4] else "no event")
            elif item[0] == "incident":
                seen.add(item[3])  # its kind
    wanted = {"above_neighbours", "below_neighbours", "event", "no event", "local_source",
              "pollution_event"}  # fmt: skip
    assert wanted <= seen, wanted - seen


def test_grouped_medians_are_statistics_medians():
    rng = np.random.default_rng(3)
    for _ in range(30):
        size = int(rng.integers(1, 12))
        groups = rng.integers(0, size, int(rng.integers(0, 60)))
        values = np.round(rng.normal(20, 10, len(groups)), 1)
        got = group_medians(groups, values, size)
        for g in range(size):
            mine = values[groups == g].tolist()
            assert (got[g] != got[g]) if not mine else got[g] == statistics.median(mine)
        counts = rng.integers(1, 9, 5)
        rows = np.full((5, 8), np.nan)
        for r, c in enumerate(counts.tolist()):
            rows[r, :c] = np.round(rng.normal(20, 10, c), 1)
        centre, spread = robust_rows(rows, counts)
        for r, c in enumerate(counts.tolist()):
            v = rows[r, :c].tolist()
            m = statistics.median(v)
            mad = statistics.median([abs(x - m) for x in v])
            assert (centre[r], spread[r]) == (m, 1.4826 * mad)


def test_neighbour_sets_are_found_once_per_set_of_members(monkeypatch):
    """With the members known in advance, each area builds its BallTree once, however many
    windows close; a sensor that joins later makes it build again, once."""
    built = []
    real = area_columns.Neighbourhood

    def counting(*args: Any) -> Any:
        built.append(len(args[0]))
        return real(*args)

    monkeypatch.setattr(area_columns, "Neighbourhood", counting)
    rule = NeighbourRule(min_neighbours=1)
    sensors = list(range(1, 6))
    registry = {"a": {s: (0, 37.0 + s / 200, -122.0) for s in sensors}}
    logic = AreaColumns(rule, ReadingMaker(SensorConfig((), 1, "mean", 0.5, {})), True, 600, 0,
                        3600, None, registry)  # fmt: skip

    def rows(ids: list[int], t: int) -> AreaRows:
        n = len(ids)
        work = Work.of(Columns(np.array(ids), np.full(n, t), FIELDS, np.full((n, 3), 5.0)))
        return AreaRows("a", np.array(ids), np.full(n, t), np.array([37.0 + s / 200 for s in ids]),
                        np.full(n, -122.0), np.full(n, 5.0), np.ones(n, bool), np.ones(n, bool),
                        np.zeros(n, bool), np.zeros(n, np.int64), np.arange(n), [work],
                        [3])  # fmt: skip

    for t in range(0, 6 * 600, 120):
        logic.on_batch([rows(sensors, t)])
    assert logic.counts["spatial:windows"] == 5 and built == [5]
    logic.on_batch([rows([*sensors, 9], 6 * 600)])  # a sensor the registry did not know
    for t in range(7 * 600, 10 * 600, 120):
        logic.on_batch([rows([*sensors, 9], t)])
    assert built == [5, 6]
    assert STATUS_NAMES[SCORED] == "scored"
