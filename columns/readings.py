"""`Work` rows → the `Reading` objects the per-sensor chain makes of them, for what leaves the flow.

A `Reading` of the per-sensor chain (`tests/sensor_chain.py`) is a dict and two lists built stage
by stage, so
their order is the order the stages ran in. Here it follows from the configuration:

- `values`: the batch's own fields (the payload's, in its order), then the fields a stage added
  to that reading: the channel rule's combined PM fields (when it fired on the reading and the
  payload has both channels but not the mean), the imputer's fields missing from the payload
  (when it filled them), `pm2.5_epa`, `pm2.5_nowcast` and `aqi`, the z-scores; a field the
  payload lacks and no stage filled is not a key (it may still be listed in `missing`);
- `imputed`: the imputed fields in the imputer's order, then `pm2.5_epa`, then the z-scores;
- `missing`: the imputer's order, then `pm2.5_epa`;
- `flags` and `reasons` are the stages' own (`Work.flags`/`reasons`, in the order they ran);
  `score` None where NaN; `status` by name.
"""

from __future__ import annotations

from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np

from columns.batch import STATUS_NAMES, Work
from core.readings import Reading
from preparation.aqi import AQI_FIELD, NOWCAST_FIELD
from preparation.channels import FLAG as CHANNELS_FLAG
from preparation.correction import EPA_FIELD
from preparation.scaling import z_name

if TYPE_CHECKING:
    from columns.sensor_config import SensorConfig


def listed(mask: np.ndarray, cols: list[tuple[int, str]]) -> dict[int, list[str]]:
    """Row → the names (of `(column, name)` in their order) its mask sets, for rows with any."""
    if not cols:
        return {}
    picked = mask[:, [j for j, _name in cols]]
    names = [name for _j, name in cols]
    some = picked.any(axis=1)
    rows = np.flatnonzero(some).tolist()
    return {
        n: [name for name, on in zip(names, row, strict=True) if on]
        for n, row in zip(rows, picked[some].tolist(), strict=True)
    }


class ReadingMaker:
    """Builds `Reading`s from `Work` rows for one configuration (`SensorConfig`)."""

    def __init__(self, config: SensorConfig):
        self.impute_fields = tuple(config.impute_fields)
        self.channel_fields = tuple(config.channels.fields) if config.channels is not None else ()
        derived = []
        if config.epa is not None:
            derived.append(EPA_FIELD)
        if config.nowcast:
            derived += [NOWCAST_FIELD, AQI_FIELD]
        self.z_fields = tuple(z_name(name) for name in config.scale_fields)
        self.derived = (*derived, *self.z_fields)  # present in every reading
        self.imputed_order = (
            *self.impute_fields,
            *((EPA_FIELD,) if config.epa is not None else ()),
            *self.z_fields,
        )
        self.missing_order = (
            *self.impute_fields,
            *((EPA_FIELD,) if config.epa is not None else ()),
        )

    def _keys(self, work: Work, base: int) -> tuple[list[int], list[int], list[int], list[int]]:
        """Columns of the values dict: always first, channel-added, imputer-added, then derived."""
        payload = set(work.fields[:base])
        fixed = list(range(base))
        channel = []
        for name in self.channel_fields:
            j = work.column(name)
            if j is not None and j >= base and {name + "_a", name + "_b"} <= payload:
                channel.append(j)
        imputer = [
            j for name in self.impute_fields if (j := work.column(name)) is not None and j >= base
        ]
        derived = [
            j
            for name in self.derived
            if (j := work.column(name)) is not None and j >= base and j not in channel + imputer
        ]
        return fixed, channel, imputer, derived

    @staticmethod
    def _dict(keys: list[str], row: list[float]) -> dict[str, float | None]:
        return {k: (None if v != v else v) for k, v in zip(keys, row, strict=True)}

    @staticmethod
    def _conditional(
        work: Work,
        rows: np.ndarray,
        values: list[list[float]],
        imputed_mask: np.ndarray,
        fixed: list[int],
        channel: list[int],
        imputer: list[int],
        derived: list[int],
    ) -> list[tuple[list[str], list[float]]]:
        """Each row's keys and values when stages added keys to some rows only: the channel
        means where the rule fired, the imputer's fields where it filled them."""
        names, flags = work.fields, work.flags
        out = []
        for n, i in enumerate(rows.tolist()):
            row = values[n]
            fired = channel if CHANNELS_FLAG in flags.get(i, ()) else []
            cols = [*fixed, *fired]
            cols += [j for j in imputer if imputed_mask[n, j] and j not in fired]
            cols += derived
            out.append(([names[j] for j in cols], [row[j] for j in cols]))
        return out

    def readings(self, work: Work, rows: np.ndarray, base: int) -> list[Reading]:
        """The `Reading` of each row in `rows` (row indexes of `work`), in that order; `base`:
        how many of `work.fields` the batch came with."""
        fixed, channel, imputer, derived = self._keys(work, base)
        names = work.fields
        plain = fixed + derived
        conditional = bool(channel or imputer)
        if conditional:  # the keys differ from row to row: every column, picked per row
            selected, plain_names = work.values[rows], names
        else:  # one set of keys: just those columns, in their order
            plain_names = [names[j] for j in plain]
            if plain == list(range(len(names))):
                selected = work.values[rows]
            else:
                selected = work.values[np.ix_(rows, plain)]
        values = selected.tolist()
        with_nan = np.flatnonzero(np.isnan(selected).any(axis=1)).tolist()
        imputed_mask = work.imputed[rows]
        if conditional:
            pairs = self._conditional(
                work, rows, values, imputed_mask, fixed, channel, imputer, derived
            )
            dicts = [self._dict(keys, row) for keys, row in pairs]
        else:  # C-level passes; the rows with a missing value again, None for NaN
            dicts = list(map(dict, map(zip, repeat(plain_names), values)))
            for n in with_nan:
                dicts[n] = self._dict(plain_names, values[n])
        imputed_cols = [(j, n) for n in self.imputed_order if (j := work.column(n)) is not None]
        missing_cols = [(j, n) for n in self.missing_order if (j := work.column(n)) is not None]
        count = len(rows)
        imputed = [[] for _ in range(count)]
        for n, listed_names in listed(imputed_mask, imputed_cols).items():
            imputed[n] = listed_names
        missing = [[] for _ in range(count)]
        for n, listed_names in listed(work.missing[rows], missing_cols).items():
            missing[n] = listed_names
        flags = [{} for _ in range(count)]
        reasons = [[] for _ in range(count)]
        if work.flags or work.reasons:
            where = {i: n for n, i in enumerate(rows.tolist())}
            for i, row_flags in work.flags.items():
                if i in where:
                    flags[where[i]] = row_flags
            for i, row_reasons in work.reasons.items():
                if i in where:
                    reasons[where[i]] = row_reasons
        if work.text is None:
            text = [{} for _ in range(count)]
        else:
            text = [work.text[i] for i in rows.tolist()]
        out = list(
            map(
                Reading,
                work.sensors[rows].tolist(),
                work.times[rows].tolist(),
                dicts,
                text,
                imputed,
                missing,
                [None if v != v else v for v in work.score[rows].tolist()],
                [STATUS_NAMES[code] for code in work.status[rows].tolist()],
                flags,
                work.placeholder[rows].tolist(),
                reasons,
            )
        )
        return out
