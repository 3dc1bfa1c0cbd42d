"""Channel agreement over a batch: `preparation.channels.ChannelAgreement.apply` for every row.

The rules (see `preparation/channels.py`), first that applies decides: PurpleAir's
`channel_flags` downgrade, a dead counter at 0 (with its run of readings), the EPA's A/B
agreement test, then the channel that still agrees with the sensor's last trusted value. Every
row of a call is a different sensor, so each row depends only on its slot's state (the last
trusted value, NaN = None, and the two zero-run counters): the verdicts are numpy over the
batch, in the same float operations as the per-reading rule (bit-equal), and so are the
rewritten PM values. Only the rows a rule fires on cost Python: their flag text (`repr` of the
two channels), reason and count.
"""

from __future__ import annotations

import numpy as np

from columns.batch import Work
from columns.grow import grown
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

    The rows of one call must be distinct slots (the zero runs and the trusted value are
    sequential per slot): in global key mode, where every row is one slot, the per-slot adapter
    runs the rule instead.

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
        a_zero, b_zero = a == 0.0, b == 0.0
        zeros_a = np.where(a_zero & (b > 0.0), self.zeros_a[slots] + 1, 0)
        zeros_b = np.where(b_zero & (a > 0.0), self.zeros_b[slots] + 1, 0)
        self.zeros_a[slots], self.zeros_b[slots] = zeros_a, zeros_b
        last = self.time[slots]
        before = np.where(last == NEVER, times, last)  # a zero run begun now began here
        self.time[slots] = times
        start_a = np.where(zeros_a == 1, before, self.start_a[slots])
        start_b = np.where(zeros_b == 1, before, self.start_b[slots])
        self.start_a[slots], self.start_b[slots] = start_a, start_b
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
        kept, code = self._verdict(
            a[odd], b[odd], long_a[odd], long_b[odd], self.last[slots[odd]],
            None if flag is None else flag[odd], agree[odd],
        )  # fmt: skip
        if self.history:  # the trusted value: both channels' mean, or the channel kept
            trusted = 0.5 * (a + b)
            if len(odd):
                kept_one = np.where(kept == A, a[odd], b[odd])
                trusted[odd] = np.where(code == 0, trusted[odd], kept_one)
                update = np.ones(len(a), bool)
                update[odd] = (code == 0) | (kept == A) | (kept == B)
                self.last[slots[update]] = trusted[update]
            else:
                self.last[slots] = trusted
        fired = np.flatnonzero(code)
        if len(fired):
            kept, code, fired = kept[fired], code[fired], odd[fired]
            where = fired if rows is None else rows[fired]
            self._explain(work, where, a[fired], b[fired], kept, code, counts)
            self._rewrite(work, where, kept)

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
        a_ok = ~self._disagree(a, ref)  # both True against no reference (NaN): neither kept
        b_ok = ~self._disagree(b, ref)
        kept = np.where(a_ok != b_ok, np.where(a_ok, A, B), NEITHER)
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
