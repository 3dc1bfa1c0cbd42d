"""`Work` rows → the `Reading` objects the per-reading path makes of them, for what leaves the flow.

A `Reading` of `dataflows.steps.SensorLogic` is a dict and two lists built stage by stage, so
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

from typing import TYPE_CHECKING

import numpy as np

from columns.batch import STATUS_NAMES, Work
from preparation.aqi import AQI_FIELD, NOWCAST_FIELD
from preparation.channels import FLAG as CHANNELS_FLAG
from preparation.correction import EPA_FIELD
from preparation.scaling import z_name
from sources.payload import Reading

if TYPE_CHECKING:
    from dataflows.steps import SensorConfig


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
        has_nan = np.isnan(selected).any(axis=1).tolist()
        imputed_mask = work.imputed[rows]
        imputed_cols = [(j, n) for n in self.imputed_order if (j := work.column(n)) is not None]
        missing_cols = [(j, n) for n in self.missing_order if (j := work.column(n)) is not None]
        imputed_lists = listed(imputed_mask, imputed_cols)
        missing_lists = listed(work.missing[rows], missing_cols)
        scores = [None if v != v else v for v in work.score[rows].tolist()]
        statuses = [STATUS_NAMES[code] for code in work.status[rows].tolist()]
        text = work.text
        flags, reasons = work.flags, work.reasons
        out = []
        append = out.append
        for n, (i, sensor, time, row, nan, score, status, placeholder) in enumerate(
            zip(
                rows.tolist(),
                work.sensors[rows].tolist(),
                work.times[rows].tolist(),
                values,
                has_nan,
                scores,
                statuses,
                work.placeholder[rows].tolist(),
                strict=True,
            )
        ):
            if conditional:
                fired = channel if CHANNELS_FLAG in flags.get(i, ()) else []
                cols = [*fixed, *fired]
                cols += [j for j in imputer if imputed_mask[n, j] and j not in fired]
                cols += derived
                keys, row = [names[j] for j in cols], [row[j] for j in cols]
            else:
                keys = plain_names
            if nan:
                row_values = {k: (None if v != v else v) for k, v in zip(keys, row, strict=True)}
            else:
                row_values = dict(zip(keys, row, strict=True))
            append(
                Reading(
                    sensor,
                    time,
                    row_values,
                    {} if text is None else text[i],
                    imputed_lists.get(n) or [],
                    missing_lists.get(n) or [],
                    score,
                    status,
                    flags.get(i) or {},
                    placeholder,
                    reasons.get(i) or [],
                )
            )
        return out
