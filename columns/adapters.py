"""The per-slot host: a per-sensor stage class run on a column `Work`, one object per slot.

A host keeps the per-sensor object of its stage for every slot (one sensor's detector,
standardiser, ...) and loops over the batch's rows, handing each row to its slot's object as
the dict the per-sensor chain (`tests/sensor_chain.py`) gives it, then writes what the object
changed back into the columns. So it is exact by construction: the per-sensor class *is* the
implementation, called row by row (a Python call and a dict per row). `ShardLogic` hosts:

- every detector but `hst` and `hst_ensemble` (which have vectorised forms, `columns/hst.py`
  and `columns/ensemble.py`) in `DetectorRows`: `ranked`, `zscore` and `knn_cad` are sequential
  by nature (each score depends on the state the reading before left, through ranks, windows or
  neighbour searches), so the per-sensor class is their one implementation; `scaled_hst` and
  `learned_hst` have no vectorised form of their own yet;
- the standardiser (`ScaleRows`), which has no vectorised form yet;
- in global key mode, where every row is one key's (slot 0), the channel rule and the imputer
  (`ChannelRows`, `ImputeRows`): their vectorised forms take each slot once a call, so global
  mode would run one round a row, 35 to 70 times slower on the shipped data.

Each host has the stage interface: `grow(slots)` and `apply(work, slots, counts)`; rows of
one slot are taken in row order, so a host also accepts a batch where a slot repeats (global
key mode: every row is slot 0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from columns.batch import SCORED, UNSCORED, WARMING_UP, Work
from detectors.base import Detector
from detectors.holdoff import TIME, timed
from imputers.window import WindowImputer
from preparation.channels import ChannelAgreement
from preparation.scaling import Standardiser, z_name

#: `Work.status` code of each status string a detector returns.
STATUS_CODES = {"warming_up": WARMING_UP, "scored": SCORED, "unscored": UNSCORED}


def row_dicts(work: Work, width: int | None = None) -> list[dict[str, float | None]]:
    """Each row's values as the per-sensor chain's dict (NaN → None), over the first `width`
    columns (all by default)."""
    names = work.fields if width is None else work.fields[:width]
    values = work.values if width is None else work.values[:, :width]
    return [
        {name: (None if v != v else v) for name, v in zip(names, row, strict=True)}
        for row in values.tolist()
    ]


def column_of(work: Work, name: str) -> int:
    """Field `name`'s column, added (all missing) when the batch has none."""
    j = work.column(name)
    return work.add_column(name) if j is None else j


def write_back(work: Work, row: int, values: dict[str, float | None]) -> None:
    """Store a row's values dict into the columns (adding a column for a new field)."""
    out = work.values
    for name, value in values.items():
        j = work.column(name)
        if j is None:
            j = work.add_column(name)
            out = work.values
        out[row, j] = np.nan if value is None else value


def merge_rule(work: Work, row: int, flags: dict[str, str], reasons: list[str]) -> None:
    """Add what one row's rule wrote into the row's sparse flags and reasons, in order."""
    if flags:
        work.flags_of(row).update(flags)
    if reasons:
        work.reasons_of(row).extend(reasons)


class PerSlot:
    """A list of per-slot objects, one `make()` each (new slots start fresh). Plain
    attributes, so a stage pickles (no lambdas)."""

    #: Takes a slot's several rows in one call, in order (row by row).
    ALONG = True

    def __init__(self) -> None:
        self.objects: list[Any] = []

    def make(self) -> Any:
        raise NotImplementedError

    def grow(self, slots: int) -> None:
        """Fresh objects for the new slots (each is used as soon as it is made)."""
        if slots > len(self.objects):
            self.objects.extend(self.make() for _ in range(slots - len(self.objects)))


class ChannelRows(PerSlot):
    """`preparation.channels.ChannelAgreement` per slot (a copy of the flow's template)."""

    def __init__(self, template: ChannelAgreement):
        super().__init__()
        self.template = template.copy()

    def make(self) -> ChannelAgreement:
        return self.template.copy()

    def apply(self, work: Work, slots: np.ndarray, counts: dict[str, int]) -> None:
        objects, times = self.objects, work.times.tolist()
        for i, (slot, values) in enumerate(zip(slots.tolist(), row_dicts(work), strict=True)):
            flags: dict[str, str] = {}
            reasons: list[str] = []
            out = objects[slot].apply(values, flags, reasons, counts, times[i])
            if out is not values:
                write_back(work, i, out)
            merge_rule(work, i, flags, reasons)


class ImputeRows(PerSlot):
    """`imputers.window.WindowImputer.impute_one` per slot; sets `imputed`/`missing`."""

    def __init__(self, fields: Sequence[str], window: int, strategy: str):
        super().__init__()
        self.fields, self.window, self.strategy = tuple(fields), window, strategy

    def make(self) -> WindowImputer:
        return WindowImputer(self.fields, self.window, self.strategy)

    def apply(self, work: Work, slots: np.ndarray, counts: dict[str, int]) -> None:
        objects = self.objects
        cols = {name: column_of(work, name) for name in self.fields}
        imputed, missing = work.imputed, work.missing
        for i, (slot, values) in enumerate(zip(slots.tolist(), row_dicts(work), strict=True)):
            filled, names, absent = objects[slot].impute_one(values)
            for name in names:
                work.values[i, cols[name]] = filled[name]
                imputed[i, cols[name]] = True
            for name in absent:
                missing[i, cols[name]] = True


def imputed_names(work: Work, row: int) -> list[str]:
    """The fields imputed so far in a row, in column order (stages test membership only)."""
    return [work.fields[j] for j in np.flatnonzero(work.imputed[row]).tolist()]


class ScaleRows(PerSlot):
    """`preparation.scaling.Standardiser.apply` per slot: `<field>_z` columns."""

    def __init__(self, fields: Sequence[str], window: int | None):
        super().__init__()
        self.fields, self.window = tuple(fields), window

    def make(self) -> Standardiser:
        return Standardiser(self.fields, window=self.window)

    def apply(self, work: Work, slots: np.ndarray, counts: dict[str, int]) -> None:
        objects = self.objects
        cols = {z_name(name): column_of(work, z_name(name)) for name in self.fields}
        any_imputed = work.imputed.any(axis=1).tolist()
        for i, (slot, values) in enumerate(zip(slots.tolist(), row_dicts(work), strict=True)):
            imputed = imputed_names(work, i) if any_imputed[i] else []
            objects[slot].apply(values, imputed, counts)
            for name, j in cols.items():
                value = values[name]
                work.values[i, j] = np.nan if value is None else value
                work.imputed[i, j] = name in imputed


class DetectorRows(PerSlot):
    """Any `Detector.score_then_learn` per slot, scored then learnt, row by row; placeholders
    are neither scored nor learnt (`unscored`).

    `features`: the only fields the detector reads (the flow's detectors read their features
    and nothing else), so a row's dict holds those alone; None: every field."""

    def __init__(self, factory: Callable[[], Detector], features: Sequence[str] | None = None):
        super().__init__()
        self.factory = factory
        self.features = None if features is None else tuple(features)
        self.timed = timed(factory())  # its hold-off counts seconds: give it each row's time

    def make(self) -> Detector:
        return self.factory()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["factory"] = None  # a function of the configuration: `attach` gives it back
        return state

    def attach(self, factory: Callable[[], Detector]) -> None:
        """After unpickling: the factory of new slots' detectors, from the configuration."""
        self.factory = factory

    def apply(self, work: Work, slots: np.ndarray, counts: dict[str, int]) -> None:
        objects = self.objects
        if self.features is None:
            rows = row_dicts(work)
        else:
            cols = [(name, work.column(name)) for name in self.features]
            values = work.values
            nan = np.full(len(work), np.nan)
            taken = [(name, (nan if j is None else values[:, j]).tolist()) for name, j in cols]
            rows = [
                {name: (None if column[i] != column[i] else column[i]) for name, column in taken}
                for i in range(len(work))
            ]
        placeholder = work.placeholder.tolist()
        score, status = work.score, work.status
        times = work.times.tolist() if self.timed else None
        for i, slot in enumerate(slots.tolist()):
            if placeholder[i]:
                status[i] = UNSCORED
                continue
            row = rows[i] if times is None else {**rows[i], TIME: times[i]}
            value, state = objects[slot].score_then_learn(row)
            score[i] = np.nan if value is None else value
            status[i] = STATUS_CODES[state]
