"""One alarm per episode, re-armed by a clearly larger anomaly: the hold-off every detector shares.

An anomaly is seldom one reading, and in NAB's scoring every further alarm of an episode costs:
after a score above `threshold` the next `span` readings (or `seconds` of time, where readings
carry one) have their scores multiplied by `threshold`, so they stay below it and keep their order.

A hold-off must not hide a larger anomaly behind a smaller one, so it re-arms: a reading whose
rarity, 1 − score, is at most 1/`rearm` of the rarity of the alarm that started (or last
re-armed) the hold-off is "clearly more anomalous" and alarms again, restarting the span from
itself. Scores here are calibrated (1 − score is a p-value-like rarity for `ranked`; on the
ensemble's common scale, 1 − score is proportional to the member's own rarity above its
threshold), so `rearm=10` reads "ten times rarer than the alarm that started the hold-off"
whatever the series' units. `rearm=inf` never re-arms (the former behaviour).
"""

from __future__ import annotations

import math

import numpy as np

#: The field of a reading's values that carries its time in seconds, where the input has one.
TIME = "time"
#: Re-arm on a reading ten times rarer than the alarm that started the hold-off.
REARM = 10.0


class HoldOff:
    """Scores after an alarm held below `threshold` for `span` readings (or `seconds`), unless a
    reading is `rearm` times rarer than the alarm that started the hold-off.

    >>> h = HoldOff(threshold=0.9, span=3)
    >>> [round(h.apply(s), 4) for s in (0.95, 0.96, 0.999, 0.5, 0.5, 0.5, 0.97)]
    [0.95, 0.864, 0.999, 0.45, 0.45, 0.45, 0.97]
    >>> h = HoldOff(threshold=0.9, span=100, seconds=60.0)
    >>> [round(h.apply(s, at=t), 4) for s, t in ((0.95, 0.0), (0.96, 59.0), (0.96, 61.0))]
    [0.95, 0.864, 0.96]
    """

    def __init__(
        self, threshold: float, span: int, seconds: float | None = None, rearm: float = REARM
    ):
        if not 0.0 < threshold < 1.0 or span < 0 or rearm < 1.0:
            raise ValueError("need 0 < threshold < 1, span ≥ 0 and rearm ≥ 1")
        if seconds is not None and not seconds >= 0.0:
            raise ValueError("the hold-off in seconds must be ≥ 0")
        self.threshold = threshold
        self.span = span
        self.seconds = seconds
        self.rearm = rearm
        self.quiet = 0  # readings still held off (when counting readings)
        self.until = -math.inf  # time the hold-off ends (when counting seconds)
        self.rarity = 1.0  # 1 − score of the alarm that started the hold-off

    def held(self, at: float | None = None) -> bool:
        """Whether a reading (at time `at`, if any) falls in the hold-off."""
        if self.seconds is not None and at is not None:
            return at < self.until
        return self.quiet > 0

    def apply(self, score: float, at: float | None = None) -> float:
        """The score as reported: multiplied by the threshold while held off (see the class)."""
        threshold = self.threshold
        if self.held(at):
            if self.quiet:
                self.quiet -= 1
            if (1.0 - score) * self.rearm > self.rarity:
                return score * threshold
        elif score <= threshold:
            if self.quiet:
                self.quiet -= 1
            return score
        self.rarity = 1.0 - score
        self.quiet = self.span
        if self.seconds is not None and at is not None:
            self.until = at + self.seconds
        return score

    def copy(self) -> HoldOff:
        """An independent copy."""
        clone = object.__new__(HoldOff)
        clone.__dict__.update(self.__dict__)
        return clone


def timed(detector: object) -> bool:
    """Whether a detector's hold-off counts seconds, so it must be given each reading's time
    (the `TIME` field of its values)."""
    return getattr(getattr(detector, "hold", None), "seconds", None) is not None


def apply_columns_timed(
    hold: HoldOff,
    score: np.ndarray,
    at: np.ndarray,
    until: np.ndarray,
    quiet: np.ndarray,
    rarity: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`hold.apply(score, at)` for many keys at once, counting `hold.seconds` (the column
    engine's twin, bit for bit): each key's score, time, end of hold-off, readings still held
    off (kept as the per-reading hold-off keeps them) and rarity in; (reported, until, quiet,
    rarity) out."""
    threshold = hold.threshold
    held = at < until
    keep = held & ((1.0 - score) * hold.rearm > rarity)
    alarm = (held & ~keep) | (~held & (score > threshold))
    reported = np.where(keep, score * threshold, score)
    quiet = np.where(alarm, hold.span, np.maximum(quiet - 1, 0))
    until = np.where(alarm, at + hold.seconds, until)
    return reported, until, quiet, np.where(alarm, 1.0 - score, rarity)


def apply_columns(
    hold: HoldOff, score: np.ndarray, quiet: np.ndarray, rarity: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`hold.apply` for many keys at once, counting readings (the column engine's twin, bit for
    bit): each key's score, readings still held off and rarity in; (reported, quiet, rarity)
    out. `hold` gives the threshold, span and re-arm factor (its own state is not used)."""
    threshold = hold.threshold
    held = quiet > 0
    keep = held & ((1.0 - score) * hold.rearm > rarity)
    alarm = (held & ~keep) | (~held & (score > threshold))
    reported = np.where(keep, score * threshold, score)
    quiet = np.where(alarm, hold.span, np.where(held, quiet - 1, quiet))
    return reported, quiet, np.where(alarm, 1.0 - score, rarity)
