"""The area stage wired into Bytewax: the flow's second keyed stage, one key per area.

The shard step hands it each piece's rows as arrays (`columns.area_rows.AreaPiece`); the router
sends them to their areas (`columns.areas.AreaRouter`) and each area judges its windows
(`columns.areas.AreaColumns`; `preparation.areas` says what it does, one reading at a time).
Out come the alerts (`Placed` readings, with the spatial reasons and event flag), incident
records and the stage's counts.
"""

from __future__ import annotations

from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Stream

from columns.areas import AreaColumns, AreaRouter
from columns.readings import ReadingMaker
from columns.sensor_config import SensorConfig
from config.flow import SpatialConfig
from preparation.areas import AreaWindow, Placed
from preparation.incidents import CLEAR_AFTER, Incident
from preparation.registry import Registry


def split_areas(
    per_area: Stream[tuple[str, Any]], direct: Stream[Placed]
) -> tuple[Stream[Placed], Stream[Incident], Stream[dict]]:
    """The per-area step's items named by their area, as the stage's three outputs."""

    def named(batch: list[tuple[str, Any]]) -> list[Any]:
        for area, item in batch:
            if type(item) is AreaWindow or (type(item) is Incident and item.sensor_index is None):
                item.area = area
                if type(item) is Incident:  # the area's key names its incident
                    item.id = item.id.replace("area::", f"area:{area}:", 1)
        return [item for _area, item in batch]

    out = op.flat_map_batch("area_items", per_area, named)
    placed = op.merge(
        "placed_readings",
        direct,
        op.flat_map_batch("take_placed", out, lambda b: [x for x in b if type(x) is Placed]),
    )
    found = op.flat_map_batch(
        "take_area_incidents", out, lambda b: [x for x in b if type(x) is Incident]
    )
    counts = op.flat_map_batch("take_area_counts", out, lambda b: [x for x in b if type(x) is dict])
    return placed, found, counts


def area_stage(
    per_key: Stream[tuple[str, Any]],
    config: SpatialConfig,
    sensors: SensorConfig,
    offline_after: int,
    registry: Registry | None = None,
    incidents: int | None = None,
    clear: int = CLEAR_AFTER,
) -> tuple[Stream[Placed], Stream[Incident], Stream[dict]]:
    """The area stage over the shard step's output (its `AreaPiece`s): the alerts (placed, with
    spatial reasons), incident records (when `incidents`, the seconds that clear one), and the
    stage's counts (at the end of a finite run). `sensors`: the shard step's configuration
    (the alerts' readings are built as it builds them); `registry`: the members known in
    advance; `clear`: the seconds of quiet that clear a sensor off its neighbours."""
    maker, faults, rule = ReadingMaker(sensors), sensors.report_faults, config.rule()
    router = AreaRouter(config.area_km, config.radius_km, maker)
    routed = op.flat_map_batch("to_areas", per_key, lambda b: router.route([v for _k, v in b]))
    direct = op.flat_map_batch("unplaced", routed, lambda b: [v for k, v in b if k == ""])
    keyed = op.flat_map_batch("placed", routed, lambda b: [kv for kv in b if kv[0] != ""])
    per_area = op.stateful_batch(
        "areas",
        keyed,
        lambda resume: AreaColumns(
            rule,
            maker,
            faults,
            config.window,
            config.grace,
            offline_after,
            resume,
            registry,
            incidents,
            clear,
        ),  # fmt: skip
    )
    return split_areas(per_area, direct)
