"""Channel agreement: a PurpleAir sensor's two laser counters, A and B, must agree.

A PurpleAir PA-II carries two Plantower counters; the API gives each channel's values
(`pm2.5_cf_1_a`, `pm2.5_cf_1_b`, ...) and their mean (`pm2.5_cf_1`). One channel going bad (a
dirty or dead laser, a spider) is the commonest PurpleAir fault, and the mean hides it. Rules, in
order (the first that applies decides):

1. **PurpleAir's downgrade**: when the payload has `channel_flags` (0 normal, 1 channel A
   downgraded, 2 B downgraded, 3 both; PurpleAir API documentation, "channel_flags"), the
   downgraded channel is not trusted. Code `channel_downgraded`.
2. **A dead counter**: one channel reads exactly 0 while the other reads more than `zero_other` (2
   µg/m³ by default), or while the other reads anything above 0 for `zero_seconds` (1800: 30
   minutes, from the reading before the run's first; `preparation.flatline.covers`) and at least
   `zero_run` readings in a row (15). This project's choice: a counter that sees 2 µg/m³ never
   reports 0.0, and in cleaner air a healthy one reports 0.0 now and then, not for half an hour
   while its twin counts. 15 readings are 30 minutes at 2 minutes; at the history's 10-minute
   averages the count decides (150 minutes): on the real 10-minute history
   (`../shared/data/purpleair-ajl`) a channel at 0 while its twin reads (0, 2] µg/m³ comes in over a
   thousand runs of 3 to 14 readings, a clean-air floor more than a dead laser. The other channel is
   kept. Code `channel_zero`.
3. **The EPA rule** (Barkjohn, Gantt & Clements 2021, AMT 14, 4617, section 3.2; applied by the
   AirNow Fire and Smoke Map): on `pm2.5_cf_1`, the channels disagree when
   `|A − B| > abs_limit` (5 µg/m³) **and** `2|A − B| / (A + B) > rel_limit` (70 %). The EPA drops
   such a reading. Here, when the sensor has a last trusted value (the mean of its last agreeing
   reading, or the channel kept since), the channel that still agrees with it by the same test
   is kept when the other does not; otherwise neither. Code `channel_disagreement`.

When a channel is not trusted, the reading's combined PM fields (`pm1.0_cf_1`, `pm2.5_cf_1`, ...,
for each one whose `_a` and `_b` are in the reading) take the kept channel's values, or None
when neither is kept (the imputer then fills them from the sensor's past, flagged as imputed);
the untrusted channel's own fields become None. `flags["channels"]` says what was seen and kept,
and the code goes into the reading's reasons. A reading without both channels (a one-channel
model, or a payload without channel fields) passes unchanged. State: one float per sensor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from preparation.flatline import covers
from preparation.reasons import CHANNEL_DISAGREEMENT, CHANNEL_DOWNGRADED, CHANNEL_ZERO

#: Fields that have an `_a` and a `_b` channel in PurpleAir's API.
CHANNEL_FIELDS: tuple[str, ...] = tuple(
    f"pm{size}_{kind}" for kind in ("cf_1", "atm") for size in ("1.0", "2.5", "10.0")
)
#: The field the agreement rules test.
TEST_FIELD = "pm2.5_cf_1"
FLAG = "channels"
FLAGS_FIELD = "channel_flags"
#: A dead-counter run covers at least this time (seconds) ...
ZERO_SECONDS = 1800
#: ... and this many readings.
ZERO_RUN = 15
#: `channel_flags` value → channels kept.
_DOWNGRADES = {1.0: "b", 2.0: "a", 3.0: ""}


def disagree(a: float, b: float, abs_limit: float = 5.0, rel_limit: float = 0.7) -> bool:
    """The EPA rule: `|a − b| > abs_limit` and `2|a − b| / (a + b) > rel_limit`.

    >>> disagree(10.0, 14.0), disagree(10.0, 40.0), disagree(100.0, 140.0)
    (False, True, False)
    """
    diff = abs(a - b)
    return diff > abs_limit and 2.0 * diff > rel_limit * (a + b)


class ChannelAgreement:
    """One sensor's channel check: keep the trustworthy channel's PM, or none, and say why.

    >>> check = ChannelAgreement()
    >>> values, flags, reasons = {"pm2.5_cf_1_a": 10.0, "pm2.5_cf_1_b": 11.0}, {}, []
    >>> check.apply(values, flags, reasons, {}) is values, reasons
    (True, [])
    >>> values = {"pm2.5_cf_1": 30.0, "pm2.5_cf_1_a": 10.4, "pm2.5_cf_1_b": 49.6}
    >>> check.apply(values, flags, reasons, {})
    {'pm2.5_cf_1': 10.4, 'pm2.5_cf_1_a': 10.4, 'pm2.5_cf_1_b': None}
    >>> reasons, flags
    (['channel_disagreement'], {'channels': 'A 10.4, B 49.6: A kept'})
    """

    # a snapshot from before zero runs in seconds has none of these
    zero_seconds = ZERO_SECONDS
    time: int | None = None
    start_a = 0
    start_b = 0

    def __init__(
        self,
        abs_limit: float = 5.0,
        rel_limit: float = 0.7,
        zero_other: float = 2.0,
        zero_run: int = ZERO_RUN,
        *,
        zero_seconds: int = ZERO_SECONDS,
        test_field: str = TEST_FIELD,
        fields: Sequence[str] = CHANNEL_FIELDS,
        use_flags: bool = True,
        history: bool = True,
    ):
        if abs_limit < 0 or rel_limit < 0 or zero_other < 0:
            raise ValueError("channel limits must be >= 0")
        if zero_run < 1:
            raise ValueError(f"zero_run must be >= 1, got {zero_run}")
        if zero_seconds < 0:
            raise ValueError(f"zero_seconds must be >= 0, got {zero_seconds}")
        self.zero_run = zero_run
        self.zero_seconds = zero_seconds
        self.abs_limit = abs_limit
        self.rel_limit = rel_limit
        self.zero_other = zero_other
        self.test_a, self.test_b = test_field + "_a", test_field + "_b"
        self.fields = tuple(fields)
        self.use_flags = use_flags
        self.history = history  # False in global mode: rows of different sensors
        self.last: float | None = None  # the sensor's last trusted value of `test_field`
        self.zeros_a = 0  # readings in a row with A at 0 while B reads above 0
        self.zeros_b = 0
        self.time: int | None = None  # the previous reading's time (with both channels)
        self.start_a = 0  # when A's zero run began (the reading before its first)
        self.start_b = 0

    def copy(self) -> ChannelAgreement:
        new = object.__new__(ChannelAgreement)
        new.__dict__.update(self.__dict__)
        return new

    def _long(self, zeros: int, start: int, at: int | None) -> bool:
        """Whether a zero run of `zeros` readings, begun at `start`, is long at `at` (None: no
        time, only the readings count)."""
        return zeros >= self.zero_run and (
            at is None or covers(zeros, at - start, self.zero_seconds)
        )

    def keep(
        self, a: float, b: float, channel_flags: float | None = None, at: int | None = None
    ) -> tuple[str, str | None]:
        """`(channels kept, code)`: `"ab"` and None when they agree; `"a"`, `"b"` or `""`."""
        if channel_flags is not None and self.use_flags and channel_flags in _DOWNGRADES:
            return _DOWNGRADES[channel_flags], CHANNEL_DOWNGRADED
        if a == 0.0 and (
            b > self.zero_other or (b > 0.0 and self._long(self.zeros_a, self.start_a, at))
        ):
            return "b", CHANNEL_ZERO
        if b == 0.0 and (
            a > self.zero_other or (a > 0.0 and self._long(self.zeros_b, self.start_b, at))
        ):
            return "a", CHANNEL_ZERO
        if not disagree(a, b, self.abs_limit, self.rel_limit):
            return "ab", None
        ref = self.last
        if ref is None:
            return "", CHANNEL_DISAGREEMENT
        a_ok = not disagree(a, ref, self.abs_limit, self.rel_limit)
        b_ok = not disagree(b, ref, self.abs_limit, self.rel_limit)
        return ("a" if a_ok else "b") if a_ok != b_ok else "", CHANNEL_DISAGREEMENT

    def apply(
        self,
        values: Mapping[str, float | None],
        flags: dict[str, str],
        reasons: list[str],
        counts: dict[str, int],
        at: int | None = None,
    ) -> Mapping[str, float | None]:
        """In the flow: `values` itself when the channels agree (or are not both there), else a
        copy with the combined PM fields from the kept channel; the code goes into `reasons`, what
        was seen into `flags["channels"]`, and `channels:<code>` is counted (`at`: the reading's
        time; None: zero runs count readings only)."""
        a, b = values.get(self.test_a), values.get(self.test_b)
        if a is None or b is None:
            return values
        before = self.time
        self.time = at
        if a == 0.0 or b == 0.0:  # rare: count the run (this reading included)
            self.zeros_a = self.zeros_a + 1 if a == 0.0 and b > 0.0 else 0
            self.zeros_b = self.zeros_b + 1 if b == 0.0 and a > 0.0 else 0
            if at is not None:  # a run begun now began at the reading before
                begun = at if before is None else before
                if self.zeros_a == 1:
                    self.start_a = begun
                if self.zeros_b == 1:
                    self.start_b = begun
        elif self.zeros_a or self.zeros_b:
            self.zeros_a = self.zeros_b = 0
        kept, code = self.keep(a, b, values.get(FLAGS_FIELD), at)
        if code is None:  # the usual case
            if self.history:
                self.last = 0.5 * (a + b)
            return values
        out = dict(values)
        for name in self.fields:
            name_a, name_b = name + "_a", name + "_b"
            if name_a not in values or name_b not in values:
                continue
            out[name] = values[name_a] if kept == "a" else values[name_b] if kept == "b" else None
            if "a" not in kept:
                out[name_a] = None
            if "b" not in kept:
                out[name_b] = None
        if self.history and kept in ("a", "b"):
            self.last = a if kept == "a" else b
        which = {"a": "A kept", "b": "B kept", "": "neither kept"}.get(kept, "both kept")
        flags[FLAG] = f"A {a!r}, B {b!r}: {which}"
        reasons.append(code)
        tag = "channels:" + code
        counts[tag] = counts.get(tag, 0) + 1
        return out
