"""Channel agreement over a batch: `preparation.channels.ChannelAgreement.apply` for every row.

The rules (see `preparation/channels.py`), first that applies decides: PurpleAir's
`channel_flags` downgrade, a dead counter at 0 (with its run of readings), the EPA's A/B
agreement test, then the channel that still agrees with the sensor's last trusted value. Each
row depends on its slot's previous rows (the last trusted value, NaN = None, and the two
zero-run counters): the runs are counted along each sensor's rows (`columns.rounds.Along`) and
the verdicts are numpy over the batch, in the same float operations as the per-reading rule
(bit-equal), and so are the rewritten PM values. Only the rows a rule fires on cost Python:
their flag text (`repr` of the two channels), reason and count, and, for a sensor's second
and later disagreements in one batch, the reference each reads from the one before.
"""

from __future__ import annotations

import numpy as np

from columns.batch import Work
from columns.grow import grown
from columns.rounds import Along
from preparation.channels import (
    CHANNEL_FIELDS,
    FLAG,
    FLAGS_FIELD,
    TEST_FIELD,
    ZERO_RUN,
    ZERO_SECONDS,
    ChannelAgreement,
)
from preparation.flatline import covers
from preparation.reasons import CHANNEL_DISAGREEMENT, CHANNEL_DOWNGRADED, CHANNEL_ZERO

#: Channels kept, as bits: A 1, B 2.
NEITHER, A, B, BOTH = 0, 1, 2, 3
#: `time` of a slot that has had no reading with both channels.
NEVER = np.iinfo(np.int64).min
#: Verdict codes by number (0: the channels agree).
CODES = (None, CHANNEL_DOWNGRADED, CHANNEL_ZERO, CHANNEL_DISAGREEMENT)
_WHICH = {A: "A kept", B: "B kept", NEITHER: "neither kept"}


class ChannelColumns:
    """Every slot's channel check, with `ChannelAgreement`'s options (`of` copies a template).

    A slot's several rows in one call are taken in order. (In global key mode, where every
    row is one slot, the per-slot adapter runs the rule instead.)

    >>> from columns.batch import Columns
    >>> fields = ("pm2.5_cf_1", "pm2.5_cf_1_a", "pm2.5_cf_1_b")
    >>> values = np.array([[10.5, 10.0, 11.0], [30.0, 10.4, 49.6]])
    >>> work = Work.of(Columns(np.array([7, 9]), np.array([0, 0]), fields, values))
    >>> check, counts = ChannelColumns(), {}
    >>> check.grow(2)
    >>> check.apply(work, np.array([0, 1]), counts)
    >>> work.values.tolist()[1], work.reasons
    ([nan, nan, nan], {1: ['channel_disagreement']})
    >>> work.flags
    {1: {'channels': 'A 10.4, B 49.6: neither kept'}}
    >>> check.last.tolist(), counts
    ([10.5, nan], {'channels:channel_disagreement': 1})
    """

    #: Takes a slot's several rows in one call, in order (along time).
    ALONG = True

    def __init__(
        self,
        abs_limit: float = 5.0,
        rel_limit: float = 0.7,
        zero_other: float = 2.0,
        zero_run: int = ZERO_RUN,
        *,
        zero_seconds: int = ZERO_SECONDS,
        test_field: str = TEST_FIELD,
        fields: tuple[str, ...] = CHANNEL_FIELDS,
        use_flags: bool = True,
        history: bool = True,
    ):
        rule = ChannelAgreement(  # the per-reading rule checks the options
            abs_limit, rel_limit, zero_other, zero_run, zero_seconds=zero_seconds,
            test_field=test_field, fields=fields, use_flags=use_flags, history=history,
        )  # fmt: skip
        self.abs_limit, self.rel_limit = rule.abs_limit, rule.rel_limit
        self.zero_other, self.zero_run = rule.zero_other, rule.zero_run
        self.zero_seconds = rule.zero_seconds
        self.test_a, self.test_b = rule.test_a, rule.test_b
        self.fields, self.use_flags, self.history = rule.fields, rule.use_flags, rule.history
        self.last = np.zeros(0)  # per slot: the last trusted value of the test field, NaN = None
        self.zeros_a = np.zeros(0, np.int64)  # per slot: readings in a row, A at 0 and B above
        self.zeros_b = np.zeros(0, np.int64)
        self.time = np.zeros(0, np.int64)  # per slot: its previous reading's time; NEVER: none
        self.start_a = np.zeros(0, np.int64)  # when its A zero run began (the reading before)
        self.start_b = np.zeros(0, np.int64)

    @classmethod
    def of(cls, rule: ChannelAgreement) -> ChannelColumns:
        """The column twin of a (fresh) per-reading rule: its options, no slot's state yet."""
        return cls(
            rule.abs_limit,
            rule.rel_limit,
            rule.zero_other,
            rule.zero_run,
            zero_seconds=rule.zero_seconds,
            test_field=rule.test_a[:-2],
            fields=rule.fields,
            use_flags=rule.use_flags,
            history=rule.history,
        )

    def grow(self, slots: int) -> None:
        """Room for slots 0..slots-1; new slots have no trusted value and no zero run."""
        self.last = grown(self.last, slots, np.nan)
        self.zeros_a = grown(self.zeros_a, slots, 0)
        self.zeros_b = grown(self.zeros_b, slots, 0)
        self.time = grown(self.time, slots, NEVER)
        self.start_a = grown(self.start_a, slots, 0)
        self.start_b = grown(self.start_b, slots, 0)

    def _disagree(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """`preparation.channels.disagree`, elementwise (the same float operations)."""
        diff = np.abs(a - b)
        return (diff > self.abs_limit) & (2.0 * diff > self.rel_limit * (a + b))

    def apply(self, work: Work, slots: np.ndarray, counts: dict[str, int]) -> None:
        """Rows with both test channels: count the zero runs, judge, and where a rule fires put
        the kept channel's values in the combined PM fields (NaN when neither is kept), NaN in
        the untrusted channel's fields, the code in `reasons`, what was seen in
        `flags["channels"]`, and count `channels:<code>`. Run it after validation (it reads
        `work.values` as validation left them)."""
        col_a, col_b = work.column(self.test_a), work.column(self.test_b)
        if col_a is None or col_b is None:
            return
        values = work.values
        a, b = values[:, col_a], values[:, col_b]
        both = ~(np.isnan(a) | np.isnan(b))
        if both.all():
            rows, times = None, work.times
        else:
            rows = np.flatnonzero(both)
            if not len(rows):
                return
            a, b, slots, times = a[rows], b[rows], slots[rows], work.times[rows]
        times = np.asarray(times, np.int64)
        along = Along(slots)
        ends, last_rows = slots[along.last], along.last
        a_zero, b_zero = a == 0.0, b == 0.0
        zeros_a = along.counter(a_zero & (b > 0.0), self.zeros_a[slots])
        zeros_b = along.counter(b_zero & (a > 0.0), self.zeros_b[slots])
        self.zeros_a[ends], self.zeros_b[ends] = zeros_a[last_rows], zeros_b[last_rows]
        last = self.time[slots]
        before = along.previous(times, np.where(last == NEVER, times, last))  # a run begun now
        self.time[ends] = times[last_rows]  # began at the reading before
        start_a = along.carry(zeros_a == 1, before, self.start_a[slots])
        start_b = along.carry(zeros_b == 1, before, self.start_b[slots])
        self.start_a[ends], self.start_b[ends] = start_a[last_rows], start_b[last_rows]
        long_a = (zeros_a >= self.zero_run) & covers(zeros_a, times - start_a, self.zero_seconds)
        long_b = (zeros_b >= self.zero_run) & covers(zeros_b, times - start_b, self.zero_seconds)

        # the usual row: no downgrade, no channel at 0, the channels agree: nothing fires
        agree = ~self._disagree(a, b)
        odd = ~agree | a_zero | b_zero
        flag = None
        col_flags = work.column(FLAGS_FIELD)
        if self.use_flags and col_flags is not None:
            flag = values[:, col_flags] if rows is None else values[rows, col_flags]
            odd |= (flag == 1.0) | (flag == 2.0) | (flag == 3.0)
        odd = np.flatnonzero(odd)
        nowhere = np.full(len(odd), np.nan)  # the reference: only a disagreement reads it
        kept, code = self._verdict(
            a[odd], b[odd], long_a[odd], long_b[odd], nowhere,
            None if flag is None else flag[odd], agree[odd],
        )  # fmt: skip
        if self.history:  # the trusted value: both channels' mean, or the channel kept
            trusted = 0.5 * (a + b)
            update = np.ones(len(a), bool)
            if len(odd):
                self._by_reference(a, b, slots, along, odd, kept, code, trusted)
                kept_one = np.where(kept == A, a[odd], b[odd])
                trusted[odd] = np.where(code == 0, trusted[odd], kept_one)
                update[odd] = (code == 0) | (kept == A) | (kept == B)
            held = along.carry(update, trusted, self.last[slots])
            self.last[ends] = held[last_rows]
        fired = np.flatnonzero(code)
        if len(fired):
            kept, code, fired = kept[fired], code[fired], odd[fired]
            where = fired if rows is None else rows[fired]
            self._explain(work, where, a[fired], b[fired], kept, code, counts)
            self._rewrite(work, where, kept)

    def _by_reference(
        self,
        a: np.ndarray,
        b: np.ndarray,
        slots: np.ndarray,
        along: Along,
        odd: np.ndarray,
        kept: np.ndarray,
        code: np.ndarray,
        mean: np.ndarray,
    ) -> None:
        """The channel kept in each disagreement (code 3) among the `odd` rows, in place in
        `kept`: the one that agrees with the sensor's last trusted value, the reference. Each
        slot's first rows read it from the state; a later row of a slot, from the rows before
        it: the last that updated it (every row but a disagreement updates as its verdict
        says; a disagreement's update depends on its own reference, so they go in order)."""
        three = np.flatnonzero(code == 3)
        if not len(three):
            return
        rows = odd[three]
        if along.order is None:  # each slot once: the state is every row's reference
            kept[three] = self._kept_by(a[rows], b[rows], self.last[slots[rows]])
            return
        n = len(a)
        update = np.ones(n, bool)  # the rows known to update the reference, and to what
        value = mean.copy()
        known = np.ones(len(odd), bool)
        known[three] = False
        sure, sure_kept, sure_code = odd[known], kept[known], code[known]
        update[rows] = False
        update[sure] = (sure_code == 0) | (sure_kept == A) | (sure_kept == B)
        value[sure] = np.where(sure_code == 0, mean[sure], np.where(sure_kept == A, a[sure],
                                                                    b[sure]))  # fmt: skip
        index = np.arange(n)
        last_known = along.previous(along.carry(update, index, np.full(n, -1)), np.full(n, -1))
        state = self.last
        found: dict[int, tuple[int, float]] = {}  # slot -> its last disagreement that updated
        a_rows, b_rows = a[rows].tolist(), b[rows].tolist()
        for k, row in enumerate(rows.tolist()):
            slot = int(slots[row])
            before = int(last_known[row])
            mine = found.get(slot, (-1, 0.0))
            if before < 0 and mine[0] < 0:
                ref = float(state[slot])
            elif before > mine[0]:
                ref = float(value[before])
            else:
                ref = mine[1]
            x, y = a_rows[k], b_rows[k]
            a_ok, b_ok = not self._disagrees(x, ref), not self._disagrees(y, ref)
            channels = (A if a_ok else B) if a_ok != b_ok else NEITHER
            kept[three[k]] = channels
            if channels != NEITHER:
                found[slot] = (row, x if channels == A else y)

    def _disagrees(self, a: float, b: float) -> bool:
        """`_disagree` of two floats (the same float operations)."""
        diff = abs(a - b)
        return diff > self.abs_limit and 2.0 * diff > self.rel_limit * (a + b)

    def _kept_by(self, a: np.ndarray, b: np.ndarray, ref: np.ndarray) -> np.ndarray:
        """The channels kept when they disagree: the one that agrees with the reference
        (neither when both or none do, or there is no reference)."""
        a_ok = ~self._disagree(a, ref)  # both True against no reference (NaN): neither kept
        b_ok = ~self._disagree(b, ref)
        return np.where(a_ok != b_ok, np.where(a_ok, A, B), NEITHER)

    def _verdict(
        self,
        a: np.ndarray,
        b: np.ndarray,
        long_a: np.ndarray,
        long_b: np.ndarray,
        ref: np.ndarray,
        flag: np.ndarray | None,
        agree: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`ChannelAgreement.keep` for each row: (channels kept as bits, code number); the first
        rule that applies decides, so they are filled in reverse order. `long_a`: A's zero run
        is long enough (readings and time) to call it dead."""
        kept = self._kept_by(a, b, ref)
        code = np.full(len(a), 3, np.int8)  # disagreement
        kept[agree], code[agree] = BOTH, 0
        a_zero, b_zero = a == 0.0, b == 0.0
        dead_b = b_zero & ((a > self.zero_other) | ((a > 0.0) & long_b))
        kept[dead_b], code[dead_b] = A, 2
        dead_a = a_zero & ((b > self.zero_other) | ((b > 0.0) & long_a))
        kept[dead_a], code[dead_a] = B, 2
        if flag is not None:
            for value, channels in ((1.0, B), (2.0, A), (3.0, NEITHER)):
                down = flag == value
                kept[down], code[down] = channels, 1
        return kept, code

    def _rewrite(self, work: Work, rows: np.ndarray, kept: np.ndarray) -> None:
        """The fired rows' PM fields: combined from the kept channel, the untrusted ones NaN
        (read from the values as they came in, like the per-reading rule's copy)."""
        names = {name: j for j, name in enumerate(work.fields)}  # the fields as they came in
        seen = work.values[rows]
        keep_a, keep_b = (kept & A) != 0, (kept & B) != 0
        for name in self.fields:
            col_a, col_b = names.get(name + "_a"), names.get(name + "_b")
            if col_a is None or col_b is None:
                continue
            col = work.column(name)
            if col is None:  # the per-reading rule adds the key (to these rows only)
                col = work.add_column(name)
            values = work.values
            seen_a, seen_b = seen[:, col_a], seen[:, col_b]
            values[rows, col] = np.where(kept == A, seen_a, np.where(kept == B, seen_b, np.nan))
            values[rows[~keep_a], col_a] = np.nan
            values[rows[~keep_b], col_b] = np.nan

    @staticmethod
    def _explain(
        work: Work,
        rows: np.ndarray,
        a: np.ndarray,
        b: np.ndarray,
        kept: np.ndarray,
        code: np.ndarray,
        counts: dict[str, int],
    ) -> None:
        """The fired rows' flag text and reason, row by row (the rare part), and the counts."""
        flags, reasons = work.flags, work.reasons
        for row, seen_a, seen_b, channels, number in zip(
            rows.tolist(), a.tolist(), b.tolist(), kept.tolist(), code.tolist(), strict=True
        ):
            text = f"A {seen_a!r}, B {seen_b!r}: {_WHICH[channels]}"
            found = flags.get(row)
            if found is None:
                flags[row] = {FLAG: text}
            else:
                found[FLAG] = text
            found = reasons.get(row)
            if found is None:
                reasons[row] = [CODES[number]]
            else:
                found.append(CODES[number])
        for number, n in enumerate(np.bincount(code, minlength=len(CODES)).tolist()):
            if n and number:
                tag = "channels:" + CODES[number]
                counts[tag] = counts.get(tag, 0) + n
