"""How rare a value is among everything a key has seen: an exact rank in the top tail, bounded.

An alarm rule that one threshold can serve on every series needs each statistic turned into a
rank among that key's own past values: "this change is larger than 99.97 % of the changes this
key has made" means the same on a CPU metric and on a taxi count. Only the top of the ranking
matters for alarms, so `TailRank` keeps the `size` largest values seen (a sorted list) and the
count of all of them: the rank of any value in that top is exact, and a value below it is
reported at the top's lower edge (rank at most 1 − size/n, below any alarm threshold in use). That
edge is the highest rank such a value can have, so a rule that combines ranks (a consensus of
tests) sees it as rarer than it may be, the more so the longer the history: the horizon below
bounds n, and with it how far this goes.
A value above every past one ranks by how far it goes beyond the maximum, relative to the spread
of the top, so the ranks of new extremes keep their order and never reach 1.

History is bounded by `horizon`: two generations learn side by side, the younger one started
half a horizon after the older; when the older has seen `horizon` values it is dropped and the
younger answers. Ranks are thus among the last horizon/2 to horizon values, memory is 2·size
values, and each value costs O(log size) comparisons (a list insertion when it enters the top).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort

#: The share of the rank scale above every past value: new extremes rank in the top 1e-4.
NEW_EXTREME = 1e-4


class TopValues:
    """The `size` largest values seen and the count of all values (one generation).

    >>> t = TopValues(size=3)
    >>> for x in (5.0, 1.0, 4.0, 2.0, 3.0):
    ...     t.update(x)
    >>> t.top, t.n
    ([3.0, 4.0, 5.0], 5)
    """

    def __init__(self, size: int):
        self.top: list[float] = []
        self.n = 0
        self.size = size

    def update(self, x: float) -> None:
        self.n += 1
        top = self.top
        if len(top) < self.size:
            insort(top, x)
        elif x > top[0]:
            insort(top, x)
            del top[0]

    def rank(self, x: float) -> float:
        """The fraction of the values seen below x (ties count half), scaled into
        [0, 1 − NEW_EXTREME]; above the maximum, 1 − NEW_EXTREME plus a share of the last
        NEW_EXTREME that grows with the excess (so a new extreme outranks every past value)."""
        top, n = self.top, self.n
        if not top:
            return 0.0
        high = top[-1]
        if x > high:
            spread = high - top[0]
            excess = x - high
            # scale-free: the excess relative to the spread of the top
            share = excess / (excess + spread) if spread > 0.0 else excess / (excess + 1.0)
            return 1.0 - NEW_EXTREME * (1.0 - share)
        lo = bisect_left(top, x)
        if lo == 0 and n > len(top):  # below the top: all we know is that it is not in it
            return (1.0 - NEW_EXTREME) * (n - len(top)) / n
        hi = bisect_right(top, x, lo)
        return (1.0 - NEW_EXTREME) * (n - len(top) + 0.5 * (lo + hi)) / n


class TailRank:
    """Rank of a value among a key's last horizon/2–horizon values, exact in the top `size`.

    >>> r = TailRank(size=4, horizon=1000)
    >>> for x in range(100):
    ...     r.update(float(x))
    >>> r.rank(98.0), r.rank(10.0), round(r.rank(99.0), 4)
    (0.9849015, 0.959904, 0.9949)
    >>> 0.990 < r.rank(100.0) < r.rank(1000.0) < 1.0
    True
    """

    def __init__(self, size: int = 256, horizon: int = 20_000):
        if size < 2 or horizon < 2:
            raise ValueError("need size ≥ 2 and horizon ≥ 2")
        self.size = size
        self.horizon = horizon
        self.old = TopValues(size)
        self.young: TopValues | None = None

    @property
    def n(self) -> int:
        """How many values the answering generation holds."""
        return self.old.n

    def rank(self, x: float) -> float:
        return self.old.rank(x)

    def update(self, x: float) -> None:
        self.old.update(x)
        if self.young is None and self.old.n > self.horizon // 2:
            self.young = TopValues(self.size)
        if self.young is not None:
            self.young.update(x)
        if self.old.n >= self.horizon:
            self.old, self.young = self.young, None
