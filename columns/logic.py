"""The engine's per-shard step: every sensor of a shard cleaned and scored a batch at a time.

`ShardLogic` is the state of one shard key inside Bytewax's `stateful_batch`: it takes the
shard's `Columns`, gives each sensor a slot (the stages keep every slot's state in arrays, or
one object per slot), and runs the stages in the per-sensor chain's order (its reference,
`tests/sensor_chain.py`) on the whole batch:

    gaps → flatline → validation → channels → impute → epa → nowcast → scaling → incidents
    → detector → counts

A sensor seen many times in one batch (its polls of a long history, or a placeholder before
its reading) stays in the one batch, and the stages run one after another over all of it
(they run in a fixed order, none feeds an earlier one): a stage that takes a slot's rows in
order in one call (`ALONG = True`: the stateless rules, the ones computed along time, the
per-slot adapters) gets them all; any other is run round by round (`columns.rounds.by_rounds`:
the k-th rows of every slot together, round after round). Global key mode (every row one key)
runs every stage row by row on slot 0 instead, in file order.

Out of the step come `Reading`s for what leaves the flow (anomalies, unless the area stage
decides them; every row when the flow writes readings or samples them), `AreaPiece`s for the
area stage, `GapEvent`s, `Incident`s, a
`BatchTally` per batch (what the progress line and the Prometheus counters count), and the
shard's counts (the per-sensor chain's tags) at the end of the input. The state pickles
(`snapshot`), and a resumed step goes on exactly where the snapshot was taken.
"""

from __future__ import annotations

import functools
import pickle
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from bytewax.operators import StatefulBatchLogic

from columns.adapters import (
    ChannelRows,
    DetectorRows,
    ImputeRows,
    ScaleRows,
)
from columns.area_rows import area_piece
from columns.batch import SCORED, STATUS_NAMES, UNSCORED, Columns, Work
from columns.channels import ChannelColumns
from columns.ensemble import EnsembleColumns
from columns.epa import EpaColumns
from columns.flatline import FlatlineColumns
from columns.gaps import GapColumns
from columns.hst import HstColumns
from columns.impute import ImputeColumns
from columns.incidents import IncidentColumns
from columns.nowcast import NowCastColumns
from columns.readings import ReadingMaker
from columns.rounds import by_rounds, occurrences, takes_repeats
from columns.sensor_config import SensorConfig
from columns.validate import ValidateColumns
from detectors.base import Detector
from detectors.hst import HalfSpaceTreesDetector
from preparation.aqi import AQI_FIELD, NOWCAST_FIELD
from preparation.channels import FLAG as CHANNELS_FLAG
from preparation.correction import EPA_FIELD
from preparation.flatline import FLAG as FLATLINE_FLAG
from preparation.reasons import kind_of
from preparation.scaling import z_name

#: Version of the snapshot layout (3: `hst_ensemble`'s tails are histograms).
STATE_VERSION = 3
#: Flags that are not a removed field's (as `preparation.metrics` counts them).
_NOT_FIELDS = frozenset({EPA_FIELD, CHANNELS_FLAG, FLATLINE_FLAG})


@dataclass(slots=True)
class BatchTally:
    """What a batch of the shard step did, for the progress line and the Prometheus counters
    (most of its readings never become objects)."""

    received: int = 0  # readings, not placeholders
    placeholders: int = 0
    imputed: Counter = field(default_factory=Counter)  # field -> imputed values
    invalid: Counter = field(default_factory=Counter)  # field -> values out of range
    reasons: Counter = field(default_factory=Counter)  # quality-control code -> readings
    epa: Counter = field(default_factory=Counter)  # "applied" / "not_applied"
    newest: int | None = None  # the time of the newest reading (not placeholder)


class SlotMap:
    """Sensor → slot, as sorted arrays: a batch's slots in one `searchsorted`; new sensors get
    the next slots, in order of first appearance.

    >>> slots = SlotMap()
    >>> slots.lookup(np.array([7, 3, 7, 9])).tolist(), slots.count
    ([0, 1, 0, 2], 3)
    """

    def __init__(self) -> None:
        self.keys = np.zeros(0, np.int64)  # sensor ids, sorted
        self.values = np.zeros(0, np.int64)  # their slots
        self.count = 0

    def lookup(self, sensors: np.ndarray) -> np.ndarray:
        sensors = np.asarray(sensors, np.int64)
        at = np.searchsorted(self.keys, sensors)
        found = at < len(self.keys)
        found[found] = self.keys[at[found]] == sensors[found]
        if not found.all():
            new, first = np.unique(sensors[~found], return_index=True)
            new = new[np.argsort(first, kind="stable")]  # in order of first appearance
            ids = np.arange(self.count, self.count + len(new), dtype=np.int64)
            self.count += len(new)
            keys = np.concatenate([self.keys, new])
            order = np.argsort(keys, kind="stable")
            self.keys, self.values = keys[order], np.concatenate([self.values, ids])[order]
            at = np.searchsorted(self.keys, sensors)
        return self.values[at]


def concat(batches: Sequence[Columns]) -> list[Columns]:
    """Consecutive batches with the same fields (and text or none), as one batch each: fewer,
    longer calls of the stages where polls are partial (a live source's sensors that changed)
    or hold few sensors (a long history: a sensor's many polls are taken along time)."""
    out: list[Columns] = []
    run: list[Columns] = []

    def close() -> None:
        if len(run) == 1:
            out.append(run[0])
        elif run:
            text = None
            if run[0].text is not None:
                text = [t for c in run for t in c.text]
            out.append(
                Columns(
                    np.concatenate([c.sensors for c in run]),
                    np.concatenate([c.times for c in run]),
                    run[0].fields,
                    np.concatenate([c.values for c in run]),
                    text,
                    run[0].origin,
                )
            )
        run.clear()

    for columns in batches:
        if not len(columns):
            continue
        if run and (
            columns.fields != run[0].fields or (columns.text is None) != (run[0].text is None)
        ):
            close()
        run.append(columns)
    close()
    return out


def detector_factory(config: SensorConfig) -> Callable[[], Detector]:
    """`SensorConfig.new_detector` as a picklable factory."""
    if callable(config.detector):
        return config.detector
    return functools.partial(HalfSpaceTreesDetector, **config.detector)


def stages_of(
    config: SensorConfig, features: Sequence[str] | None, per_sensor: bool = True
) -> list[tuple[str, Any]]:
    """The stages, in the per-sensor chain's order, that the configuration turns on:
    the vectorised twins where they exist, else the exact per-slot adapters; all adapters in
    global key mode but for the stateless stages (a twin needs each slot once a call)."""
    stages: list[tuple[str, Any]] = []
    if config.flatline is not None:
        stages.append(("flatline", FlatlineColumns(config.flatline, config.flatline_seconds)))
    if config.validator is not None:
        stages.append(("validate", ValidateColumns.of(config.validator)))
    if config.channels is not None:
        rule = config.channels
        stages.append(("channels", ChannelColumns.of(rule) if per_sensor else ChannelRows(rule)))
    impute = ImputeColumns if per_sensor else ImputeRows
    stages.append(("impute", impute(config.impute_fields, config.window, config.strategy)))
    if config.epa is not None:
        stages.append(("epa", EpaColumns.of(config.epa)))
    if config.nowcast:
        stages.append(("nowcast", NowCastColumns()))
    if config.scale_fields:
        stages.append(("scale", ScaleRows(config.scale_fields, config.scale_window)))
    if config.incidents is not None:
        stages.append(("incidents", IncidentColumns(config.incidents)))
    stages.append(("detector", detector_stage(config, features, per_sensor)))
    return stages


def detector_stage(config: SensorConfig, features: Sequence[str] | None, per_sensor: bool) -> Any:
    """The detector's twin: `columns.hst.HstColumns` for the example's one-feature
    `HalfSpaceTreesDetector`, `columns.ensemble.EnsembleColumns` for `hst_ensemble`; else every
    slot's own detector, row by row (`DetectorRows`: `ranked`, `zscore`, ...)."""
    factory = detector_factory(config)
    if per_sensor:
        for twin in (HstColumns, EnsembleColumns):
            try:
                return twin.of(factory())
            except ValueError:  # not the detector this twin is of
                pass
    return DetectorRows(factory, features)


def derived_fields(config: SensorConfig) -> tuple[str, ...]:
    """Every field a stage may add to a batch, in the order the stages add them."""
    names: list[str] = []
    if config.channels is not None:
        names += config.channels.fields
    names += config.impute_fields
    if config.epa is not None:
        names.append(EPA_FIELD)
    if config.nowcast:
        names += [NOWCAST_FIELD, AQI_FIELD]
    names += [z_name(name) for name in config.scale_fields]
    return tuple(dict.fromkeys(names))


def widen(work: Work, names: Sequence[str], means: Collection[str] = ()) -> None:
    """Add, at once, an all-missing column for each of `names` the batch lacks (a stage that
    adds one then finds it: one copy of the matrices instead of one per stage). A channel mean
    (one of `means`) is added only where the batch has both its channels."""
    have = set(work.fields)
    new = [
        name
        for name in names
        if name not in have and (name not in means or {name + "_a", name + "_b"} <= have)
    ]
    if not new:
        return
    n, k = len(work), len(new)
    work.fields.extend(new)
    work.values = np.concatenate([work.values, np.full((n, k), np.nan)], axis=1)
    work.imputed = np.concatenate([work.imputed, np.zeros((n, k), bool)], axis=1)
    work.missing = np.concatenate([work.missing, np.zeros((n, k), bool)], axis=1)


class ShardLogic(StatefulBatchLogic):
    """One shard's sensors: slots, stages, counts; emits what leaves the flow.

    `per_sensor=False` is global key mode (every row one key, in order). `emit_all`: every row
    leaves as a `Reading` (the flow writes readings or samples them), else only the anomalies
    do. `features`: the detector's fields (None: it sees every field). `areas`: the area
    stage's field, when it runs: each piece leaves as a `columns.area_rows.AreaPiece` too, and
    the area stage makes the alerts' readings.
    """

    def __init__(
        self,
        config: SensorConfig,
        resume: bytes | None = None,
        *,
        per_sensor: bool = True,
        emit_all: bool = False,
        features: Sequence[str] | None = None,
        areas: str | None = None,
    ):
        self.config = config
        self.per_sensor = per_sensor
        self.emit_all = emit_all
        self.areas = areas  # the area stage's field: each piece's rows leave as an AreaPiece
        self.maker = ReadingMaker(config)
        self.derived = derived_fields(config)
        self.means = frozenset(config.channels.fields if config.channels is not None else ())
        if resume is None:
            self.slots = SlotMap()
            self.stages = stages_of(config, features, per_sensor)
            self.gaps = GapColumns(config.gaps) if config.gaps is not None and per_sensor else None
            self.counts: dict[str, int] = {}
            self.grown = 0  # slots the stages have room for
        else:
            version, self.slots, self.stages, self.gaps, self.counts = pickle.loads(resume)
            self.grown = self.slots.count
            if version != STATE_VERSION:
                raise ValueError(f"shard state version {version}, expected {STATE_VERSION}")
            for _name, stage in self.stages:
                if isinstance(stage, DetectorRows):
                    stage.attach(detector_factory(config))
            if self.gaps is not None:
                self.gaps.attach(config.gaps)

    # --- the batch ------------------------------------------------------------------------

    def on_batch(self, values: list[Columns]) -> tuple[list[Any], bool]:
        out: list[Any] = []
        tally = BatchTally()
        for columns in concat(values):
            self._columns(columns, out, tally)
        out.append(tally)
        return out, StatefulBatchLogic.RETAIN

    def _columns(self, columns: Columns, out: list[Any], tally: BatchTally) -> None:
        if self.per_sensor:
            slots = self.slots.lookup(columns.sensors)
        else:
            self.slots.count = 1
            slots = np.zeros(len(columns), np.int64)
        if self.slots.count > self.grown:  # new sensors: every stage makes room for them
            self.grown = self.slots.count
            for _name, stage in self.stages:
                stage.grow(self.grown)
            if self.gaps is not None:
                self.gaps.grow(self.grown)
        placeholders: dict[int, list[tuple[int, tuple[str, ...]]]] = {}
        if self.gaps is not None:
            events, placeholders = self.gaps.expand(
                columns.sensors.tolist(), columns.times.tolist(), columns.fields, slots
            )
            out.extend(events)
        for work, work_slots in self._rounds(columns, slots, placeholders):
            self._run(work, work_slots, out, tally)

    def _rounds(
        self,
        columns: Columns,
        slots: np.ndarray,
        placeholders: dict[int, list[tuple[int, tuple[str, ...]]]],
    ) -> list[tuple[Work, np.ndarray]]:
        """The batch as `(Work, slots)` pieces in processing order: each slot at most once a
        piece, each sensor's rows (placeholders first) in order."""
        if not self.per_sensor:  # one key: every stage takes the rows in order
            return [(Work.of(columns), slots)]
        if placeholders:
            return self._with_placeholders(columns, slots, placeholders)
        return [(Work.of(columns), slots)]  # a sensor's rows, in order, along time

    def _with_placeholders(
        self,
        columns: Columns,
        slots: np.ndarray,
        placeholders: dict[int, list[tuple[int, tuple[str, ...]]]],
    ) -> list[tuple[Work, np.ndarray]]:
        """Fill mode: the placeholder rows go before their sensor's row, in one piece; where a
        placeholder's fields are not the batch's (the sensor's last reading had others), the
        batch is taken in rounds, each round's rows of one layout a piece."""
        source: list[int] = []  # row of `columns`, or -1 - (index into `extra`)
        extra: list[tuple[int, int, tuple[str, ...]]] = []  # (row it precedes, time, fields)
        for i in range(len(columns)):
            for time, fields in placeholders.get(i, ()):
                source.append(-1 - len(extra))
                extra.append((i, time, fields))
            source.append(i)
        src = np.array(source, np.int64)
        real = src >= 0
        owner = np.where(real, src, [extra[-1 - s][0] if s < 0 else 0 for s in source])
        times = columns.times[owner].copy()
        layout = np.zeros(len(src), np.int64)  # 0: the batch's fields, else 1 + index of others
        others: list[tuple[str, ...]] = []
        for n, s in enumerate(source):
            if s < 0:
                _row, time, fields = extra[-1 - s]
                times[n] = time
                if fields != columns.fields:
                    if fields not in others:
                        others.append(fields)
                    layout[n] = 1 + others.index(fields)
        all_slots = slots[owner]
        if not others:  # one layout: the placeholders' values all missing
            values = np.full((len(src), len(columns.fields)), np.nan)
            values[real] = columns.values[src[real]]
            text = None
            if columns.text is not None:
                text = [columns.text[s] if s >= 0 else {} for s in source]
            whole = Columns(columns.sensors[owner], times, columns.fields, values, text,
                            columns.origin)  # fmt: skip
            return [(Work.of(whole, ~real), all_slots)]
        occurrence = occurrences(all_slots)
        pieces = []
        for k in range(int(occurrence.max()) + 1):
            for group in range(len(others) + 1):
                rows = np.flatnonzero((occurrence == k) & (layout == group))
                if not len(rows):
                    continue
                fields = columns.fields if group == 0 else others[group - 1]
                values = np.full((len(rows), len(fields)), np.nan)
                is_real = real[rows]
                if group == 0 and is_real.any():
                    values[is_real] = columns.values[src[rows][is_real]]
                text = None
                if columns.text is not None and group == 0:
                    text = [columns.text[s] if s >= 0 else {} for s in src[rows].tolist()]
                piece = Columns(
                    columns.sensors[owner[rows]], times[rows], fields, values, text, columns.origin
                )
                pieces.append((Work.of(piece, ~is_real), all_slots[rows]))
        return pieces

    def _run(self, work: Work, slots: np.ndarray, out: list[Any], tally: BatchTally) -> None:
        """Every stage on one piece, then its counts and the readings that leave."""
        base = len(work.fields)
        counts = self.counts
        widened = False
        occurrence = occurrences(slots)
        repeats = bool(occurrence.any())
        for name, stage in self.stages:
            if not widened and name != "flatline":  # the rule reads the fields as received
                widen(work, self.derived, self.means)
                widened = True
            if repeats and not takes_repeats(stage):
                made = by_rounds(stage.apply, work, slots, counts, occurrence)
            else:
                made = stage.apply(work, slots, counts)
            if made:
                out.extend(made)
        work.status[work.placeholder] = UNSCORED
        alerts = self._count(work, tally)
        if self.areas is not None:  # the area stage decides the alerts and makes their readings
            piece = area_piece(work, alerts, base, self.areas)
            if piece is not None:
                out.append(piece)
            alerts = np.zeros(0, bool)
        rows = np.arange(len(work)) if self.emit_all else np.flatnonzero(alerts)
        if len(rows):
            out.extend(self.maker.readings(work, rows, base))

    def _count(self, work: Work, tally: BatchTally) -> np.ndarray:
        """The counts of a piece (the per-sensor chain's tags, only those that occur); the rows
        that are alerts."""
        config, counts = self.config, self.counts

        def add(tag: str, n: int) -> None:
            if n:
                counts[tag] = counts.get(tag, 0) + n

        placeholders = int(work.placeholder.sum())
        add("readings", len(work) - placeholders)
        add("placeholders", placeholders)
        for code, n in enumerate(np.bincount(work.status, minlength=4).tolist()):
            if code:
                add("status:" + STATUS_NAMES[code], n)
        alerts = (work.status == SCORED) & (work.score > config.threshold)
        flagged = [i for i, codes in work.reasons.items() if codes]
        if config.report_faults and flagged:
            alerts[flagged] = True
        if config.count_alerts:
            kinds = Counter(kind_of(work.reasons.get(i, ())) for i in np.flatnonzero(alerts))
            add("anomalies", int(alerts.sum()))
            for kind, n in kinds.items():
                add("kind:" + kind, n)
        imputed = work.imputed.sum(axis=0).tolist()
        missing = work.missing.sum(axis=0).tolist()
        for name, n_imputed, n_missing in zip(work.fields, imputed, missing, strict=True):
            add("imputed:" + name, n_imputed)
            add("missing:" + name, n_missing)
            if n_imputed:
                tally.imputed[name] += n_imputed
        tally.received += len(work) - placeholders
        if placeholders < len(work):
            newest = int(work.times[~work.placeholder].max())
            tally.newest = newest if tally.newest is None else max(tally.newest, newest)
        tally.placeholders += placeholders
        for flags in work.flags.values():
            for name in flags:
                if name not in _NOT_FIELDS:
                    tally.invalid[name] += 1
        for i in flagged:
            for code in work.reasons[i]:
                tally.reasons[code] += 1
        epa = work.column(EPA_FIELD)
        if epa is not None:
            none = int(np.isnan(work.values[:, epa]).sum())
            if len(work) - none:
                tally.epa["applied"] += len(work) - none
            if none:
                tally.epa["not_applied"] += none
        return alerts

    # --- the end, the clock, recovery -----------------------------------------------------

    def on_eof(self) -> tuple[list[Any], bool]:
        return [dict(self.counts)], StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        return None if self.gaps is None else self.gaps.notify_at()

    def on_notify(self) -> tuple[list[Any], bool]:
        """`sensor_offline` events of the sensors the system clock says fell silent."""
        if self.gaps is None:
            return [], StatefulBatchLogic.RETAIN
        return self.gaps.on_notify(), StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        """The whole shard's state, pickled (so the snapshot shares nothing with the live
        state)."""
        state = (STATE_VERSION, self.slots, self.stages, self.gaps, self.counts)
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
